"""``make bench`` part "sessions": a grant with session bookkeeping vs the grant without.

Against one AWS emulator, in one process, interleaved round by round so both
see the same noise: the playback decision for alice and a premium video
(:meth:`app.playback.Playback.authorize`, token already verified)

* **today**: read the entitlement (and the video), sign — no session;
* **open**: the same read, which also brings the stream slots, sign, and one
  conditional UpdateItem that opens the stream (ended again outside the timing);
* **renew**: a heartbeat of an open stream: sign, and one conditional update that checks
  the slot and the entitlement (no read).

On the AWS emulator, then on DynamoDB Local (the emulator's nested-map writes are slow).

It prints p50/p99 and the ratios open/today and renew/today (goal <= 1.3).
Timings are printed, never asserted.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import boto3

from app.auth import Principal
from app.config import load_settings
from app.local.bootstrap import Bootstrap
from app.local.emulator import EMULATOR_ENV, Emulator
from app.local.ports import free_port
from app.local.stack import app_environment
from app.playback import Grant, Playback, StreamRequest
from app.streams import Heartbeat, StreamStore

VIDEO = "premium-aurora"
ROOT = Path(__file__).resolve().parents[2]


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_sessions(rounds: int) -> list[str]:
    """The figures, as printable lines."""
    from app.http.viewer import NEEDS
    from app.local.bench import sign_in
    from app.services import Services

    with tempfile.TemporaryDirectory() as tmp, Emulator(free_port()) as emulator:
        os.environ.update({**EMULATOR_ENV, "AWS_ENDPOINT_URL": emulator.endpoint})
        media = ROOT / ".cache" / "test-media"
        session = boto3.Session(region_name=EMULATOR_ENV["AWS_REGION"])
        state = Bootstrap(
            session,
            endpoint=emulator.endpoint,
            media_dir=media if media.exists() else Path(tmp) / "media",
        ).run()
        env = app_environment(
            state,
            endpoint=emulator.endpoint,
            site_url="http://127.0.0.1:9",
            secret_key="b" * 48,
            url_ttl_seconds=None,
        )
        services = Services(load_settings(env, NEEDS))
        with_sessions = services.playback
        today = Playback(
            services.entitlements,
            services.catalog,
            services.signer,
            ttl_seconds=services.settings.url_ttl_seconds,
        )
        principal = services.access_verifier.verify(sign_in(services.cognito_idp, state))
        times = _measure(today, with_sessions, services.streams, principal, rounds)
    lines = _lines(times, rounds, "AWS emulator (moto server)")
    return lines + _dynamodb_local(rounds)


def _measure(
    today: Playback,
    with_sessions: Playback,
    streams: StreamStore,
    principal: Principal,
    rounds: int,
) -> dict[str, list[float]]:
    """Seconds per grant of each kind, interleaved round by round (after 20 warm-up rounds)."""
    # One stream kept open for the renewals (the viewer is premium: two at a time).
    kept = with_sessions.authorize(principal, VIDEO, stream=StreamRequest(device="bench"))
    assert kept.session_id is not None
    times: dict[str, list[float]] = {"today": [], "open": [], "renew": []}

    def timed(name: str, call: Callable[[], Grant]) -> Grant:
        t0 = time.perf_counter()
        result = call()
        times[name].append(time.perf_counter() - t0)
        return result

    for warm_up in (True, False):
        for _ in range(20 if warm_up else rounds):
            timed("today", lambda: today.authorize(principal, VIDEO))
            opened = timed(
                "open",
                lambda: with_sessions.authorize(
                    principal, VIDEO, stream=StreamRequest(device="bench")
                ),
            )
            timed(
                "renew",
                lambda: with_sessions.authorize(
                    principal,
                    VIDEO,
                    stream=StreamRequest(session_id=kept.session_id, beat=Heartbeat(1.0)),
                ),
            )
            assert opened.session_id is not None
            streams.end(principal.user_id, opened.session_id)
        if warm_up:
            times = {name: [] for name in times}
    return times


def _dynamodb_local(rounds: int) -> list[str]:
    """The same three grants on Amazon's DynamoDB Local (its nested-map writes are not slow)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from app.catalog import Video, VideoCatalog
    from app.entitlements import EntitlementStore
    from app.local.dynamodb_local import DEFAULT_CACHE_DIR, DynamoDBLocal
    from app.signing import UrlSigner
    from app.tables import TABLES, create_tables
    from app.users import UserDirectory

    with (
        tempfile.TemporaryDirectory() as tmp,
        DynamoDBLocal(DEFAULT_CACHE_DIR, log_path=Path(tmp) / "ddb.log") as engine,
    ):
        client = boto3.client(
            "dynamodb",
            endpoint_url=engine.endpoint,
            region_name=EMULATOR_ENV["AWS_REGION"],
            aws_access_key_id=EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
        )
        tables = {logical: f"bench-{logical}" for logical in TABLES}
        create_tables(client, tables)
        users, audit = tables["users"], tables["audit"]
        UserDirectory(client, users).create_on_signup("sub-alice", "alice", "alice@example.com")
        entitlements = EntitlementStore(client, users, audit)
        entitlements.set_premium("sub-alice", True, None, actor="bench")
        catalog = VideoCatalog(client, tables["videos"])
        catalog.put(
            Video(
                video_id=VIDEO,
                title="Aurora",
                description="",
                tier="premium",
                object_key=f"videos/{VIDEO}/main.mp4",
                content_type="video/mp4",
                duration_seconds=60.0,
                poster_key=None,
                size_bytes=1000,
                created_at=datetime.now(UTC),
                published=True,
            )
        )
        signer = UrlSigner(
            "KBENCH", ec.generate_private_key(ec.SECP256R1()), base_url="https://cdn.example"
        )
        streams = StreamStore(client, users, audit)
        today = Playback(entitlements, catalog, signer, ttl_seconds=300)
        with_sessions = Playback(entitlements, catalog, signer, ttl_seconds=300, streams=streams)
        principal = Principal(
            user_id="sub-alice",
            username="alice",
            email=None,
            groups=(),
            token_use="access",  # noqa: S106 - a token kind, not a secret
            expires_at=0,
        )
        times = _measure(today, with_sessions, streams, principal, rounds)
    return _lines(times, rounds, "DynamoDB Local")


def _lines(times: dict[str, list[float]], rounds: int, engine: str) -> list[str]:
    p50 = {name: statistics.median(samples) * 1000 for name, samples in times.items()}
    lines = [
        f"grant with playback sessions vs without, {rounds} rounds, {engine}, in-process",
        f"{'grant':<34}{'p50 ms':>9}{'p99 ms':>9}",
    ]
    labels = {
        "today": "today (read, sign)",
        "open": "open a stream (read, sign, 1 write)",
        "renew": "renew = heartbeat (sign, 1 write)",
    }
    for name, label in labels.items():
        lines.append(f"{label:<34}{p50[name]:>9.2f}{_percentile(times[name], 0.99) * 1000:>9.2f}")
    for name in ("open", "renew"):
        lines.append(f"ratio {name} / today (p50): {p50[name] / p50['today']:.2f}  (goal <= 1.3)")
    return lines
