"""Lambda entry point of the web app: the Flask app behind the HTTP API's ``$default`` route.

apig-wsgi turns each API Gateway event (payload 2.0 from the HTTP API, or 1.0)
into a WSGI request and the Flask response back into a Lambda result. The app
is built once per execution environment, at import, during Lambda's init
phase: :func:`app.web.create_app` reads the environment through
:mod:`app.config`, so a missing variable fails the cold start with every
missing name in the log rather than failing each request. Only the web
artifact (``web-<arch>.zip``) contains this module and Flask; the handler
artifact has neither.
"""

from __future__ import annotations

from apig_wsgi import make_lambda_handler

from app.web import create_app

app = create_app()
handler = make_lambda_handler(app)
