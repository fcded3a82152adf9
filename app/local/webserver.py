"""Serve a WSGI app on loopback from a background thread (werkzeug, threaded, quiet)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

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


def serve_web(port: int) -> ServerHandle:
    """The Flask web app, configured from the environment like in AWS."""
    from app.web import create_app

    return serve_wsgi(create_app(), port, name="web")
