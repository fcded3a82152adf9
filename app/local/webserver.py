"""Serve a WSGI app on loopback from a background thread (werkzeug, threaded, quiet).

:func:`serve_web` serves the Flask web app behind exactly one trusted proxy
hop, the local edge: werkzeug's ``ProxyFix`` takes the client address, scheme
and host from the last ``X-Forwarded-For`` / ``-Proto`` / ``-Host`` entry the
edge sets (docs/local-edge.md#front-door). :func:`show_app_logs` makes the
app's own log lines (the grant and refusal audit lines among them) visible,
as CloudWatch Logs shows a Lambda function's.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass
from typing import Any, TextIO

from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from app.local.ports import LOOPBACK


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Per-request logging is off: the app logs what matters itself."""


@dataclass
class ServerHandle:
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def serve_wsgi(app: Any, port: int, *, name: str = "wsgi") -> ServerHandle:
    """Start ``app`` on ``127.0.0.1:port`` (0 = any free port) in a daemon thread."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server(LOOPBACK, port, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name=f"vidgate-{name}", daemon=True)
    thread.start()
    return ServerHandle(server, thread)


TRUSTED_PROXY_HOPS = 1
"""The local edge, and nothing else, stands in front of the web app."""


def behind_edge(app: Any) -> Any:
    """``app`` trusting the forwarding headers of exactly one proxy hop (the edge)."""
    hops = TRUSTED_PROXY_HOPS
    return ProxyFix(app, x_for=hops, x_proto=hops, x_host=hops)


def serve_web(port: int) -> ServerHandle:
    """The Flask web app, configured from the environment like in AWS, behind the edge."""
    from app.web import create_app

    return serve_wsgi(behind_edge(create_app()), port, name="web")


APP_LOGGER = "vidgate"
"""The app's loggers all sit under this one (``vidgate.playback``, ``vidgate.web.auth``, ...)."""
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class _AppLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler :func:`show_app_logs` adds (so calling it twice adds nothing)."""


def show_app_logs(stream: TextIO | None = None, level: int = logging.INFO) -> logging.Handler:
    """Print the app's log lines at ``level`` and above to ``stream`` (default stderr).

    Python shows nothing below WARNING without a handler, so without this the
    ``vidgate.playback`` audit line of every grant and refusal (one JSON object,
    the same line the Lambda function writes to CloudWatch Logs) never appeared.
    """
    logger = logging.getLogger(APP_LOGGER)
    for handler in logger.handlers:
        if isinstance(handler, _AppLogHandler):
            return handler
    handler = _AppLogHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(level)
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    return handler
