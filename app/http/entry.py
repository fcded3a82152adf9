"""The Lambda entry point wrapper: build the API on the first event, once per process."""

from __future__ import annotations

import gc
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from app.http.router import internal_error_response, to_result

Handler = Callable[[object, object], dict[str, Any]]


def _without_gc(build: Callable[[], Handler]) -> Handler:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return build()
    finally:
        if was_enabled:
            gc.enable()


class LambdaEntry:
    """A Lambda entry point that builds its API on the first event, once per process.

    ``build`` reads the settings and makes the Services (clients, verifier,
    key); it runs once per execution environment, under a lock, with the
    cyclic garbage collector paused: it allocates the SDK's service models and
    creates next to no garbage, so collections then would only walk the new
    heap (tens of milliseconds of the cold start). If it fails
    (a ConfigurationError naming every bad variable, an SDK that cannot
    start), the detail goes to the log, the client gets a 500 JSON error, and
    the next event tries again.
    """

    def __init__(self, build: Callable[[], Handler], *, log: logging.Logger) -> None:
        self._build = build
        self._log = log
        self._lock = threading.Lock()
        self.api: Handler | None = None

    def _get(self) -> Handler:
        if self.api is None:
            with self._lock:
                if self.api is None:
                    self.api = _without_gc(self._build)
        return self.api

    def reset(self) -> None:
        """Forget the built API (tests; a new environment)."""
        self.api = None

    def __call__(self, event: object, context: object = None) -> dict[str, Any]:
        try:
            api = self._get()
        except Exception:
            self._log.exception(json.dumps({"event": "bootstrap_failed"}))
            return to_result(internal_error_response())
        return api(event, context)
