"""``vidgate dev``: the whole product on loopback, in one command.

Starts the AWS emulator (its own process), bootstraps it, starts the web app
and the local CloudFront edge in front of it (threads of this process), writes
``<state-dir>/dev-stack.json`` (the contract in the README), prints the one
URL to open (the edge: the site, as one CloudFront distribution is in AWS) and
the demo accounts, says "ready", and on SIGINT/SIGTERM stops everything it
started. The app's audit lines (grants, refusals, sign-ins) go to stderr.

The stack is for loopback only: the emulator accepts any credentials and any
confirmation or reset code, and hands out the signing key. The files it writes
that hold secrets (``dev.env``, ``dev-stack.json``, ``web-secret-key``) are
created readable by their owner only (0600) from the first byte.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from app.keys import DEFAULT_KEY_ALGORITHM, KeyAlgorithm
from app.local.bootstrap import Bootstrap, StackState
from app.local.emulator import EMULATOR_ENV, Emulator
from app.local.ports import LOOPBACK, PortBusyError, ensure_free
from app.ratelimits import RATE_RULES, RateRule

if TYPE_CHECKING:
    from app.local.stripe_local import LocalStripe

log = logging.getLogger("vidgate.dev")


@dataclass(frozen=True)
class DevOptions:
    port: int = 5000
    aws_port: int = 5001
    edge_port: int = 5002
    state_dir: Path = Path(".vidgate")
    key_algorithm: KeyAlgorithm = DEFAULT_KEY_ALGORITHM
    url_ttl_seconds: int | None = None
    stream_settings: Mapping[str, str] = field(default_factory=dict)
    """Playback-session variables (stream limits, heartbeat) for the app, as given."""
    auth_rate_limit: int | None = None
    """The edge's sign-in limit per client address (None: the web ACL's, app.ratelimits);
    raised only by test stacks whose many browser sign-ins all come from 127.0.0.1."""


def edge_rules(auth_limit: int | None) -> tuple[RateRule, ...]:
    """The web ACL's rate rules, with the sign-in limit replaced when one is given."""
    if auth_limit is None:
        return RATE_RULES
    return tuple(
        dataclasses.replace(rule, limit=auth_limit) if rule.name == "auth" else rule
        for rule in RATE_RULES
    )


def check_ports(options: DevOptions) -> None:
    """Fail at once, naming every busy port."""
    busy: list[str] = []
    wanted = {"web": options.port, "AWS emulator": options.aws_port, "edge": options.edge_port}
    if len(set(wanted.values())) != len(wanted):
        raise PortBusyError(options.port, "the web, emulator and edge ports must differ")
    for what, port in wanted.items():
        try:
            ensure_free(port, what)
        except PortBusyError as exc:
            busy.append(str(exc))
    if busy:
        raise PortBusyError(options.port, "; ".join(busy))


PRIVATE_FILE_MODE = 0o600


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in a file that is 0600 from its creation on.

    The text goes into a new file that ``os.open`` creates with that mode, which
    then replaces ``path`` in one rename: no reader sees a partly written file, and
    the secret never sits in a file others may read, whatever the mode of an
    older ``path`` (the umask can only narrow the mode further).
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _secret_key(state_dir: Path) -> str:
    """The web app's secret key, made once per state folder."""
    path = state_dir / "web-secret-key"
    existing = path.read_text(encoding="utf-8").strip() if path.exists() else ""
    if not existing:
        existing = secrets.token_urlsafe(48)
        write_private(path, existing + "\n")
    return existing


def app_environment(
    state: StackState,
    *,
    endpoint: str,
    site_url: str,
    secret_key: str,
    url_ttl_seconds: int | None,
    stream_settings: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment the app reads (app.config), as the SAM template would set it.

    ``site_url`` is the front door: media and pages share its host, so it is both
    the CDN URL and the web app's public base URL.
    """
    env = {
        **EMULATOR_ENV,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": state.region,
        "VIDGATE_USER_POOL_ID": state.user_pool_id,
        "VIDGATE_CLIENT_ID": state.client_id,
        "VIDGATE_JWKS_URL": state.jwks_url,
        "VIDGATE_USERS_TABLE": state.tables["users"],
        "VIDGATE_VIDEOS_TABLE": state.tables["videos"],
        "VIDGATE_AUDIT_TABLE": state.tables["audit"],
        "VIDGATE_SESSIONS_TABLE": state.tables["sessions"],
        "VIDGATE_SESSION_KEY_ID": state.session_key_id,
        "VIDGATE_BUCKET": state.bucket,
        "VIDGATE_CDN_URL": site_url,
        "VIDGATE_SIGNING_KEY_SECRET": state.signing_secret_id,
        "VIDGATE_KEY_PAIR_ID": state.key_pair_id,
        "VIDGATE_SECRET_KEY": secret_key,
        "VIDGATE_BASE_URL": site_url,
        # The emulator fires no Cognito triggers: the web app runs the same
        # PostConfirmation handler itself after ConfirmSignUp.
        "VIDGATE_LOCAL_TRIGGERS": "1",
        "VIDGATE_EVENTS_STREAM": state.events_stream,
        "VIDGATE_EVENTS_KEY_SECRET": state.events_key_secret,
    }
    if state.queues.get("ingest"):
        env["VIDGATE_INGEST_QUEUE_URL"] = state.queues["ingest"]
    if url_ttl_seconds is not None:
        env["VIDGATE_URL_TTL_SECONDS"] = str(url_ttl_seconds)
    env.update(stream_settings or {})
    return env


def stack_document(
    state: StackState, *, endpoint: str, site_url: str, web_url: str, edge_url: str
) -> dict[str, Any]:
    """``dev-stack.json``: the README's contract (keys may grow, never change).

    ``site_url`` is the one URL a person opens; ``web_url`` is the web app's own
    origin (for tools); ``edge_url`` the edge's.
    """
    return {
        "region": state.region,
        "aws_endpoint": endpoint,
        "site_url": site_url,
        "web_url": web_url,
        "edge_url": edge_url,
        "cognito": {
            "user_pool_id": state.user_pool_id,
            "client_id": state.client_id,
            "issuer": state.issuer,
            "jwks_url": state.jwks_url,
        },
        "tables": {k: state.tables[k] for k in ("users", "videos", "audit", "sessions", "billing")},
        "session_key": {"key_id": state.session_key_id, "alias": state.session_key_alias},
        "bucket": state.bucket,
        "signing": {
            "key_pair_id": state.key_pair_id,
            "algorithm": state.key_algorithm,
            "public_key_pem": state.public_key_pem,
            "secret_id": state.signing_secret_id,
        },
        "users": state.users,
        "analytics": {
            "events_stream": state.events_stream,
            "events_key_secret": state.events_key_secret,
            "events_prefix": f"s3://{state.bucket}/analytics/events/",
        },
        "queues": dict(state.queues),
    }


class StopRequested(Exception):
    """A stop was asked for while the stack was starting: what had started is stopped."""


class DevStack:
    """Everything ``vidgate dev`` runs; ``start()`` then ``stop()`` (also a context manager).

    ``stop_requested`` is polled between the steps of ``start()``: when it turns
    true the start unwinds (:class:`StopRequested`) instead of running on.
    """

    def __init__(
        self,
        options: DevOptions,
        *,
        say: Callable[[str], None] = print,
        stop_requested: Callable[[], bool] = lambda: False,
    ) -> None:
        self.options = options
        self.say = say
        self._stop_requested = stop_requested
        self.emulator: Emulator | None = None
        self._stoppers: list[Callable[[], None]] = []
        self._media_quarter = -1
        self.document: dict[str, Any] = {}
        self.environment: dict[str, str] = {}
        self.stripe: LocalStripe | None = None

    @property
    def web_url(self) -> str:
        return f"http://{LOOPBACK}:{self.options.port}"

    @property
    def edge_url(self) -> str:
        return f"http://{LOOPBACK}:{self.options.edge_port}"

    @property
    def site_url(self) -> str:
        """The front door: the edge serves the media and proxies everything else to the web app."""
        return self.edge_url

    def start(self) -> DevStack:
        opts = self.options
        check_ports(opts)
        state_dir = opts.state_dir.resolve()
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self._step()
            self.emulator = Emulator(
                opts.aws_port, log_path=str(state_dir / "emulator.log")
            ).start()
            self._stoppers.append(self.emulator.stop)
            self._step()
            endpoint = self.emulator.endpoint
            os.environ.update({**EMULATOR_ENV, "AWS_ENDPOINT_URL": endpoint})
            self.say("AWS emulator started; bootstrapping (first run generates demo media)...")
            session = boto3.Session(region_name=EMULATOR_ENV["AWS_REGION"])
            state = Bootstrap(
                session,
                endpoint=endpoint,
                key_algorithm=opts.key_algorithm,
                media_dir=state_dir / "media",
                media_progress=self._media_progress,
                site_url=self.site_url,
            ).run()
            self.environment = app_environment(
                state,
                endpoint=endpoint,
                site_url=self.site_url,
                secret_key=_secret_key(state_dir),
                url_ttl_seconds=opts.url_ttl_seconds,
                stream_settings=opts.stream_settings,
            )
            self._start_stripe(session, state)
            os.environ.update(self.environment)
            self._step()
            self._start_web()
            self._start_edge(session, state)
            self._start_transcoder(state_dir)
            self.document = stack_document(
                state,
                endpoint=endpoint,
                site_url=self.site_url,
                web_url=self.web_url,
                edge_url=self.edge_url,
            )
            if self.stripe is not None:
                self.document["stripe"] = self.stripe.document()
            # Both hold secrets (the demo passwords; the web app's secret key).
            write_private(state_dir / "dev-stack.json", json.dumps(self.document, indent=2) + "\n")
            write_private(
                state_dir / "dev.env",
                "".join(f"{k}={v}\n" for k, v in sorted(self.environment.items())),
            )
            self._step()
        except BaseException:
            self.stop()
            raise
        return self

    def _step(self) -> None:
        if self._stop_requested():
            raise StopRequested("stopped while starting")

    def _media_progress(self, percent: float) -> None:
        """Demo media generation: a line every quarter, and a stop between ffmpeg's reports."""
        self._step()  # raising here kills the encoder and removes its half-written folder
        quarter = int(percent // 25)
        if quarter != self._media_quarter:
            self._media_quarter = quarter
            self.say(f"  demo media: {min(quarter * 25, 100)}%")

    def _start_edge(self, session: boto3.Session, state: StackState) -> None:
        from app.local.edge import EdgeApp, serve_edge
        from app.local.proxy import OriginProxy
        from app.local.ratelimiter import RateLimiter

        edge = EdgeApp(
            s3_client=session.client("s3"),
            bucket=state.bucket,
            trusted_keys={state.key_pair_id: state.public_key_pem.encode()},
            origin=OriginProxy(self.web_url),
            rate_limiter=RateLimiter(edge_rules(self.options.auth_rate_limit)),
        )
        handle = serve_edge(edge, self.options.edge_port)
        self._stoppers.append(handle.stop)

    def _start_transcoder(self, state_dir: Path) -> None:
        """The transcoder worker, in its own process (ffmpeg's progress parsing and the
        uploads stay off the web app's GIL); its log is ``transcoder.log``."""
        from app.local.processes import die_with_parent, terminate

        log_file = open(state_dir / "transcoder.log", "ab")  # noqa: SIM115 - the child's
        process = subprocess.Popen(  # noqa: S603 - fixed argv, our own module
            [
                sys.executable,
                "-m",
                "app.local.transcoder",
                "--work-dir",
                str(state_dir / "transcoder"),
            ],
            env={**os.environ, **self.environment},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        log_file.close()

        def stop() -> None:
            terminate(process, timeout=15)

        self._stoppers.append(stop)

    def _start_stripe(self, session: boto3.Session, state: StackState) -> None:
        """The Stripe stand-in (docs/selling.md#local) and the app's selling variables."""
        from app.local.stripe_local import start_local_stripe

        self.stripe = start_local_stripe(
            session.client("secretsmanager"),
            session.client("dynamodb"),
            state.tables,
            site_url=self.site_url,
        )
        self._stoppers.append(self.stripe.stop)
        self.environment.update(
            {
                "VIDGATE_BILLING_TABLE": state.tables["billing"],
                "VIDGATE_STRIPE_KEY_SECRET": self.stripe.key_secret_id,
                "VIDGATE_STRIPE_WEBHOOK_SECRET": self.stripe.webhook_secret_id,
                "VIDGATE_STRIPE_API_BASE": self.stripe.url,
            }
        )

    def _start_web(self) -> None:
        from app.local.webserver import serve_web, show_app_logs

        show_app_logs()
        handle = serve_web(self.options.port)
        self._stoppers.append(handle.stop)

    def stop(self) -> None:
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception:
                log.exception("while stopping the dev stack")

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def banner(self) -> str:
        doc = self.document
        lines = [
            "",
            "vidgate dev stack",
            "",
            f"  Open {doc['site_url']}",
            "",
            "  demo accounts:",
        ]
        for user in doc["users"]:
            role = (
                "admin" if "admin" in user["groups"] else ("premium" if user["premium"] else "free")
            )
            lines.append(f"    {user['username']:<6} {user['password']:<24} ({role})")
        if "stripe" in doc:
            lines += [
                "",
                # One URL to open: the stand-in's address is in dev-stack.json ("stripe").
                "  payments: a local Stripe stand-in (test payments only; see the file below)",
            ]
        state_file = self.options.state_dir.resolve() / "dev-stack.json"
        lines += ["", f"  every endpoint, for tools: {state_file}", "", "ready"]
        return "\n".join(lines)


class SignalFlag:
    """Set by SIGINT/SIGTERM; the handler only records the signal.

    A handler runs in the main thread between two bytecodes, possibly while that
    thread holds a lock: taking a lock there (``threading.Event.set`` does) can
    deadlock when a second signal arrives at the wrong moment, so the handler
    touches nothing but an int and the main thread polls it.
    """

    def __init__(self) -> None:
        self.received = 0

    def handler(self, signum: int, frame: object) -> None:
        self.received += 1

    def __bool__(self) -> bool:
        return self.received > 0

    def install(self) -> None:
        signal.signal(signal.SIGINT, self.handler)
        signal.signal(signal.SIGTERM, self.handler)


POLL_SECONDS = 0.2
"""How often the main thread looks at the signal flag while the stack runs."""


def run_dev(options: DevOptions) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code."""
    flag = SignalFlag()
    flag.install()
    stack = DevStack(options, stop_requested=flag.__bool__)
    try:
        stack.start()
    except StopRequested:
        print("stopped before the stack was ready", flush=True)
        return 0
    except Exception as exc:
        if not flag:
            raise
        # Ctrl-C reaches the whole process group: a step's own child (ffmpeg) may have died of it.
        print(f"stopped before the stack was ready ({type(exc).__name__} on the way)", flush=True)
        return 0
    try:
        print(stack.banner(), flush=True)
        while not flag:
            time.sleep(POLL_SECONDS)
        print("stopping...", flush=True)
    finally:
        stack.stop()
    return 0
