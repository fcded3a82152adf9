"""Serve a WSGI app on loopback from a background thread (werkzeug, threaded, quiet).

:func:`serve_web` serves the Flask web app behind exactly one trusted proxy
hop, the local edge: werkzeug's ``ProxyFix`` takes the client address, scheme
and host from the last ``X-Forwarded-For`` / ``-Proto`` / ``-Host`` entry the
edge sets (docs/local-edge.md#front-door).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

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
