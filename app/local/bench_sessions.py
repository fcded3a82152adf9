"""``make bench`` part "sessions": a grant with session bookkeeping vs the grant without.

Against one AWS emulator, in one process, interleaved round by round so both
see the same noise: the playback decision for alice and a premium video
(:meth:`app.playback.Playback.authorize`, token already verified)

* **today**: read the entitlement (and the video), sign — no session;
* **open**: the same read, which also brings the stream slots, sign, and one
  conditional UpdateItem that opens the stream (ended again outside the timing);
* **renew**: a heartbeat of an open stream: the read, sign, the conditional update.

It prints p50/p99 and the ratios open/today and renew/today (goal <= 1.3).
Timings are printed, never asserted.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import boto3

from app.config import load_settings
from app.local.bootstrap import Bootstrap
from app.local.emulator import EMULATOR_ENV, Emulator
from app.local.ports import free_port
from app.local.stack import app_environment

VIDEO = "premium-aurora"
ROOT = Path(__file__).resolve().parents[2]


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_sessions(rounds: int) -> list[str]:
    """The figures, as printable lines."""
    from app.http.viewer import NEEDS
    from app.local.bench import sign_in
    from app.playback import Playback, StreamRequest
    from app.services import Services
    from app.streams import Heartbeat

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
        streams = services.streams
        # One stream kept open for the renewals (alice is premium: two at a time).
        kept = with_sessions.authorize(principal, VIDEO, stream=StreamRequest(device="bench"))
        assert kept.session_id is not None
        times: dict[str, list[float]] = {"today": [], "open": [], "renew": []}

        def timed(name: str, call: object) -> object:
            t0 = time.perf_counter()
            result = call() if callable(call) else None
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
                streams.end(principal.user_id, opened.session_id)  # type: ignore[attr-defined]
            if warm_up:
                times = {name: [] for name in times}
    p50 = {name: statistics.median(samples) * 1000 for name, samples in times.items()}
    lines = [
        f"grant with playback sessions vs without, {rounds} rounds, AWS emulator, in-process",
        f"{'grant':<34}{'p50 ms':>9}{'p99 ms':>9}",
    ]
    labels = {
        "today": "today (read, sign)",
        "open": "open a stream (read, sign, 1 write)",
        "renew": "renew = heartbeat (read, sign, 1 write)",
    }
    for name, label in labels.items():
        lines.append(f"{label:<34}{p50[name]:>9.2f}{_percentile(times[name], 0.99) * 1000:>9.2f}")
    for name in ("open", "renew"):
        lines.append(f"ratio {name} / today (p50): {p50[name] / p50['today']:.2f}  (goal <= 1.3)")
    return lines
