"""Loopback port helpers for the local stack: fail fast on a busy port, find free ones."""

from __future__ import annotations

import socket
import time

LOOPBACK = "127.0.0.1"


class PortBusyError(RuntimeError):
    """A port the local stack was asked to use is already taken."""

    def __init__(self, port: int, what: str) -> None:
        super().__init__(f"port {port} ({what}) is already in use on {LOOPBACK}; pick another")
        self.port = port
        self.what = what


def ensure_free(port: int, what: str) -> None:
    """Raise :class:`PortBusyError` naming ``port`` if it cannot be bound on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            raise PortBusyError(port, what) from exc


def free_port() -> int:
    """A currently free loopback port (for tests and ``--port 0``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 30.0, host: str = LOOPBACK) -> None:
    """Block until something accepts connections on ``port``, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listens on {host}:{port} after {timeout:.0f}s"
                ) from None
            time.sleep(0.05)
