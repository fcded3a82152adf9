"""The Flask app as a Lambda handler behind the HTTP API (payload 2.0), through apig-wsgi.

apig-wsgi turns each API Gateway event into a WSGI request and the Flask
response back into a Lambda result. It trusts the event's shape; an event
that is not an API Gateway request (a misrouted invoke, a test event) gets a
400 JSON answer here instead of an exception out of the handler. The entry
modules (:mod:`app.web.lambda_entry`, :mod:`app.web.lambda_admin_entry`) build
their app at import and wrap it with :func:`lambda_handler`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from apig_wsgi import make_lambda_handler
from flask import Flask

log = logging.getLogger("vidgate.web.lambda")

LambdaHandler = Callable[[Any, Any], dict[str, Any]]

_BAD_EVENT = {
    "statusCode": 400,
    "headers": {"Content-Type": "application/json"},
    "body": json.dumps({"error": "bad_request", "message": "not an API Gateway request"}),
    "isBase64Encoded": False,
}


def lambda_handler(app: Flask) -> LambdaHandler:
    """The Lambda handler answering API Gateway events with ``app``."""
    wsgi = make_lambda_handler(app)

    def handler(event: Any, context: Any = None) -> dict[str, Any]:
        if not isinstance(event, dict) or not isinstance(event.get("requestContext"), dict):
            return dict(_BAD_EVENT)
        try:
            result: dict[str, Any] = wsgi(event, context)
        except (KeyError, TypeError, AttributeError, ValueError, UnicodeError) as exc:
            # Raised while apig-wsgi reads a malformed event; the app itself turns
            # its own errors into pages, so nothing of the request was served.
            log.warning(json.dumps({"event": "malformed_event", "error": type(exc).__name__}))
            return dict(_BAD_EVENT)
        return result

    return handler
