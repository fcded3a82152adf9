"""The AWS API emulator (moto in server mode) as a child process.

It runs in its own process so it does not compete with the app for the GIL,
with per-request logging off. The app reaches it only through boto3's
standard ``AWS_ENDPOINT_URL`` variable; nothing else in the app knows it is
there. ``python -m app.local.emulator --port N`` is the child's entry point.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from types import TracebackType
from typing import Any

from app.local.ports import LOOPBACK, ensure_free, wait_for_port
from app.local.processes import die_with_parent, terminate

# Credentials the emulator accepts; never real ones.
EMULATOR_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


class Emulator:
    """A running moto server on loopback; a context manager that stops it."""

    def __init__(self, port: int, *, log_path: str | None = None) -> None:
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, *, timeout: float = 60.0) -> Emulator:
        ensure_free(self.port, "AWS emulator")
        env = {**os.environ, **EMULATOR_ENV}
        # The emulator itself must not try to reach "AWS" through an inherited endpoint.
        for key in [k for k in env if k.startswith("AWS_ENDPOINT_URL")]:
            env.pop(key)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv, our own module
            [sys.executable, "-m", "app.local.emulator", "--port", str(self.port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        try:
            wait_for_port(self.port, timeout=timeout)
        except TimeoutError:
            self.stop()
            raise
        if self.process.poll() is not None:
            raise RuntimeError(f"AWS emulator exited with code {self.process.returncode}")
        return self

    def stop(self) -> None:
        proc, self.process = self.process, None
        terminate(proc)

    def __enter__(self) -> Emulator:
        return self.start() if self.process is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _serialised_dynamodb(app: Any) -> Any:
    """Run DynamoDB requests one at a time.

    moto's DynamoDB backend takes no locks, so two concurrent conditional
    writes can both pass their condition (two writers winning the same
    version). Real DynamoDB serialises writes per item; one lock around
    DynamoDB requests gives the emulator the same guarantee. Other services
    stay concurrent (S3 bodies stream without holding the lock).
    """
    lock = threading.Lock()

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with lock:
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wsgi


def _serve(port: int) -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class QuietHandler(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            """Per-request logging off: each emulated call already costs milliseconds."""

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = _serialised_dynamodb(DomainDispatcherApplication(create_backend_app))
    server = make_server(LOOPBACK, port, app, threaded=True, request_handler=QuietHandler)

    def _stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.serve_forever()
    server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the AWS API emulator on loopback.")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    _serve(args.port)


if __name__ == "__main__":
    main()
