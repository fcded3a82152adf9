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
import re
import signal
import subprocess
import sys
import threading
import uuid
from datetime import datetime
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


_JAVA_DATE_PARTS = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
_PREFIX_EXPRESSION = re.compile(r"!\{timestamp:([^}]*)\}")


def evaluate_firehose_prefix(prefix: str, moment: datetime) -> str | None:
    """A Firehose S3 prefix with its ``!{timestamp:…}`` expressions evaluated, as AWS does.

    ``None`` when the prefix has no expression: then Firehose appends its default
    ``YYYY/MM/dd/HH/`` (docs/analytics.md#an-4). Only the date and time letters above
    and quoted literals are supported; anything else is refused rather than guessed.
    """
    if "!{" not in prefix:
        return None

    def one(match: re.Match[str]) -> str:
        pattern, out = match.group(1), []
        tokens = re.findall(r"'[^']*'|yyyy|MM|dd|HH|mm|ss|[^A-Za-z']", pattern)
        if "".join(tokens) != pattern:
            raise ValueError(f"unsupported timestamp pattern {pattern!r}")
        for token in tokens:
            if token.startswith("'"):
                out.append(token[1:-1])
            elif token in _JAVA_DATE_PARTS:
                out.append(moment.strftime(_JAVA_DATE_PARTS[token]))
            else:
                out.append(token)
        return "".join(out)

    evaluated = _PREFIX_EXPRESSION.sub(one, prefix)
    if "!{" in evaluated:
        raise ValueError(f"unsupported prefix expression in {prefix!r}")
    return evaluated


def _firehose_prefixes_like_aws() -> None:
    """moto writes every object under ``<prefix>YYYY/MM/DD/HH/`` and leaves ``!{timestamp:…}``
    as text; AWS evaluates the expressions and then adds no default time folders."""
    from moto.core.utils import utcnow
    from moto.firehose import models

    original = models.FirehoseBackend._format_s3_object_path

    def format_path(delivery_stream_name: str, version_id: str, prefix: str) -> str:
        now = utcnow()
        evaluated = evaluate_firehose_prefix(prefix, now)
        if evaluated is None:
            return str(original(delivery_stream_name, version_id, prefix))
        return (
            f"{evaluated}{delivery_stream_name}-{version_id}-"
            f"{now.strftime('%Y-%m-%d-%H-%M-%S')}-{uuid.uuid4()}"
        )

    models.FirehoseBackend._format_s3_object_path = staticmethod(format_path)  # type: ignore[method-assign]


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
    _firehose_prefixes_like_aws()
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
