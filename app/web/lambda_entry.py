"""Lambda entry point of the viewer web app: the HTTP API's ``$default`` route.

Every page but ``/admin`` (catalog, watch and grant, sign-in, account), and
``/api`` paths no API route claims (answered by the viewer API). The app is
built once per execution environment, at import, during Lambda's init phase:
:func:`app.web.create_app` reads the environment through :mod:`app.config`,
so a missing variable fails the cold start with every missing name in the log
rather than failing each request. Only the web artifact (``web-<arch>.zip``)
contains this module and Flask; the handler artifact has neither. The admin
pages are another function: :mod:`app.web.lambda_admin_entry`.
"""

from __future__ import annotations

import os

from app.metrics import PROCESS as METRICS
from app.web import create_app
from app.web.lambda_adapter import lambda_handler

METRICS.enable_in_lambda(os.environ)  # the watch page's grants are counted like the API's (EMF)
app = create_app(pages="viewer")
handler = lambda_handler(app)
