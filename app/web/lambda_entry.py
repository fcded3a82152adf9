"""Lambda entry point of the web app: the Flask app behind the HTTP API's ``$default`` route.

apig-wsgi turns each API Gateway event (payload 2.0 from the HTTP API)
into a WSGI request and the Flask response back into a Lambda result. The app
is built once per execution environment, at import, during Lambda's init
phase: :func:`app.web.create_app` reads the environment through
:mod:`app.config`, so a missing variable fails the cold start with every
missing name in the log rather than failing each request. Only the web
artifact (``web-<arch>.zip``) contains this module and Flask; the handler
artifact has neither.

apig-wsgi trusts the event's shape; an event that is not an API Gateway
request (a misrouted invoke, a test event) gets a 400 JSON answer here
instead of an exception out of the handler.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from apig_wsgi import make_lambda_handler

from app.web import create_app

log = logging.getLogger("vidgate.web.lambda")

app = create_app()
_wsgi = make_lambda_handler(app)

_BAD_EVENT = {
    "statusCode": 400,
    "headers": {"Content-Type": "application/json"},
    "body": json.dumps({"error": "bad_request", "message": "not an API Gateway request"}),
    "isBase64Encoded": False,
}


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    """Answer one API Gateway event with the Flask app."""
    if not isinstance(event, dict) or not isinstance(event.get("requestContext"), dict):
        return dict(_BAD_EVENT)
    try:
        result: dict[str, Any] = _wsgi(event, context)
    except (KeyError, TypeError, AttributeError, ValueError, UnicodeError) as exc:
        # Raised while apig-wsgi reads a malformed event; the app itself turns
        # its own errors into pages, so nothing of the request was served.
        log.warning(json.dumps({"event": "malformed_event", "error": type(exc).__name__}))
        return dict(_BAD_EVENT)
    return result
