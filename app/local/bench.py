"""``make bench``: a grant's latency against the raw floor, measured in one run.

Against the same DynamoDB endpoint (the AWS emulator), interleaved so both
see the same noise:

* **grant**: the playback Lambda handler answering a v2 event (verify the
  bearer token, read the entitlement, read the video, sign) — once with the
  verifier's claims cache (a renewal) and once with it off (a first grant);
* **floor**: one raw RS256 signature check of the same token + the GetItem
  the grant makes + one raw CloudFront signature with the same key.

It prints p50/p99, the ratio grant/floor (goal <= 1.3) and grants per second
per core (from this process's CPU time) for ECDSA P-256 and RSA-2048 keys.

Then the playback function's **cold start**, each sample a fresh interpreter,
interleaved, reported as medians: (a) ``import boto3`` (the floor), (b) the
handler module's import, (c) its import plus the first event, a real grant
answered 200 (settings, clients, the CloudFront key from Secrets Manager, the
JWKS), with the ratios b/a (goal <= 1.3) and c/a; then each handler's import
(:func:`infra.package.cold_import_times`) and the load test of
:mod:`app.local.loadtest` (``--load-seconds``, ``--load-clients``); last the
**streaming** figures of :mod:`app.local.streambench` (HLS vs MP4 time to first frame and bytes on a
throttled link, segment throughput through the edge vs S3; ``--stream-runs``,
``--throttle-bps``); and the **publishing** section of :mod:`app.local.bench_publishing`.
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from app.config import load_settings
from app.local.bench_analytics import run_analytics_bench
from app.local.bench_publishing import run_publishing
from app.local.bench_upload import run_upload_bench
from app.local.bootstrap import Bootstrap, StackState
from app.local.emulator import EMULATOR_ENV, Emulator
from app.local.loadtest import run_load
from app.local.ports import free_port
from app.local.stack import app_environment
from app.local.streambench import DEFAULT_RUNS, DEFAULT_THROTTLE_BPS, run_streaming

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    "grant",
    "sessions",
    "cold",
    "imports",
    "load",
    "streaming",
    "analytics",
    "publishing",
    "upload",
    "catalog",
)
GRANT_PATH = "/api/videos/premium-aurora/playback"


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def playback_event(token: str) -> dict[str, object]:
    """An HTTP API (payload 2.0) event: alice asks for a premium video's grant."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": GRANT_PATH,
        "rawQueryString": "",
        "headers": {"authorization": f"Bearer {token}", "content-type": "application/json"},
        "requestContext": {
            "http": {
                "method": "POST",
                "path": GRANT_PATH,
                "sourceIp": "127.0.0.1",
                "protocol": "HTTP/1.1",
                "userAgent": "bench",
            },
            "stage": "$default",
        },
        "body": "",
        "isBase64Encoded": False,
    }


def sign_in(cognito_idp: Any, state: StackState) -> str:
    """alice's access token from the emulator's user pool."""
    alice = next(u for u in state.users if u["username"] == "alice")
    auth = cognito_idp.initiate_auth(
        ClientId=state.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "alice", "PASSWORD": alice["password"]},
    )
    return str(auth["AuthenticationResult"]["AccessToken"])


class Case:
    """One key algorithm's handler, token and floor, built against the emulator."""

    def __init__(self, state: StackState, endpoint: str, *, cached: bool) -> None:
        from app.http.viewer import NEEDS, make_handler
        from app.services import Services

        env = app_environment(
            state,
            endpoint=endpoint,
            site_url="http://127.0.0.1:9",
            secret_key="b" * 48,
            url_ttl_seconds=None,
            # Each case keeps a stream open; the cases of both key types share alice.
            stream_settings={"VIDGATE_STREAM_LIMIT_PREMIUM": "100"},
        )
        os.environ.update(env)
        self.services = Services(load_settings(os.environ, NEEDS))
        if not cached:
            from app.auth import CognitoVerifier

            cognito = self.services.settings.cognito
            assert cognito is not None
            self.services.access_verifier = CognitoVerifier(
                issuer=cognito.issuer,
                client_id=cognito.client_id,
                token_use="access",  # noqa: S106 - a token kind, not a password
                jwks=self.services.jwks,
                claims_cache_size=0,
            )
        self.handler = make_handler(self.services)
        self.token = sign_in(self.services.cognito_idp, state)
        self.user_id = json.loads(_b64url(self.token.split(".")[1]))["sub"]
        # Every grant here renews one stream (a heartbeat): fresh grants would meet the
        # plan's stream limit. Opening streams is measured in app/local/bench_sessions.py.
        opened = self.handler(playback_event(self.token), None)
        session_id = json.loads(opened["body"])["session_id"]
        self.event = playback_event(self.token)
        self.event["body"] = json.dumps({"session_id": session_id, "position": 1.0})
        header_b64, payload_b64, sig_b64 = self.token.split(".")
        self.signing_input = f"{header_b64}.{payload_b64}".encode()
        self.jwt_signature = _b64url(sig_b64)
        kid = json.loads(_b64url(header_b64))["kid"]
        self.jwt_key: rsa.RSAPublicKey = self.services.jwks.get_key(kid).public_key
        from app.keys import load_private_key_from_secret

        self.private_key = load_private_key_from_secret(
            self.services.secretsmanager, state.signing_secret_id
        )
        self.policy = json.dumps(
            {
                "Statement": [
                    {
                        "Resource": "https://d1.cloudfront.net/v.mp4",
                        "Condition": {"DateLessThan": {"AWS:EpochTime": 2000000000}},
                    }
                ]
            },
            separators=(",", ":"),
        ).encode()
        self.get_item = self.services.dynamodb.get_item
        self.users_table = state.tables["users"]

    def grant(self) -> None:
        result = self.handler(self.event, None)
        if result["statusCode"] != 200:
            raise RuntimeError(f"grant failed: {result}")

    def floor(self) -> None:
        self.jwt_key.verify(
            self.jwt_signature, self.signing_input, padding.PKCS1v15(), hashes.SHA256()
        )
        self.get_item(
            TableName=self.users_table,
            Key={"user_id": {"S": self.user_id}},
            ConsistentRead=True,
            ProjectionExpression="premium, premium_until, version",
        )
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            self.private_key.sign(self.policy, ec.ECDSA(hashes.SHA256()))
        else:
            self.private_key.sign(self.policy, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303


def _measure(fns: dict[str, Callable[[], None]], rounds: int) -> dict[str, dict[str, float]]:
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, float] = dict.fromkeys(fns, 0.0)
    for fn in fns.values():  # warm up
        for _ in range(20):
            fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name] += time.process_time() - c0
    return {
        name: {
            "p50_ms": statistics.median(samples) * 1000,
            "p99_ms": _percentile(samples, 0.99) * 1000,
            "per_s_wall": len(samples) / sum(samples),
            "per_s_cpu": len(samples) / cpu[name] if cpu[name] else float("inf"),
        }
        for name, samples in wall.items()
    }


def grant_latency(session: boto3.Session, endpoint: str, media_dir: Path, rounds: int) -> list[str]:
    """Grant vs floor for each key algorithm (the module docstring's first part)."""
    lines = [
        f"grant latency vs floor, {rounds} rounds each, AWS emulator {endpoint}",
        f"{'key':<11}{'path':<26}{'p50 ms':>9}{'p99 ms':>9}{'/s wall':>9}{'/s/core':>9}",
    ]
    for algorithm in ("ecdsa-p256", "rsa-2048"):
        state = Bootstrap(
            session, endpoint=endpoint, key_algorithm=algorithm, media_dir=media_dir
        ).run()
        renew, first = (
            Case(state, endpoint, cached=True),
            Case(state, endpoint, cached=False),
        )
        results = _measure(
            {
                "grant (renewal, cached)": renew.grant,
                "grant (first, verify)": first.grant,
                "floor (verify+get+sign)": renew.floor,
            },
            rounds,
        )
        for name, r in results.items():
            lines.append(
                f"{algorithm:<11}{name:<26}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
                f"{r['per_s_wall']:>9.0f}{r['per_s_cpu']:>9.0f}"
            )
        floor = results["floor (verify+get+sign)"]["p50_ms"]
        for name in ("grant (renewal, cached)", "grant (first, verify)"):
            lines.append(
                f"{algorithm:<11}ratio {name} / floor (p50): "
                f"{results[name]['p50_ms'] / floor:.2f}  (goal <= 1.3)"
            )
    return lines


# --------------------------------------------------------------------------- cold start

COLD_KINDS = ("floor", "import", "first_event")

# One sample in a fresh interpreter. Everything before the clock starts is the
# same for every kind; the handler module is imported exactly as Lambda does.
COLD_CHILD = """
import json, sys, time
task = json.loads(sys.stdin.read())
sys.path.insert(0, task["root"])
t0, c0 = time.perf_counter(), time.process_time()
if task["kind"] == "floor":
    import boto3
else:
    entry = __import__(task["module"], fromlist=["handler"])
t1, c1 = time.perf_counter(), time.process_time()
result = entry.handler(task["event"], None) if task["kind"] == "first_event" else None
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"import": [t1 - t0, c1 - c0], "event": [t2 - t1, c2 - c1], "result": result}))
"""


def _cold_sample(task: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - our interpreter, our code
        [sys.executable, "-c", COLD_CHILD],
        input=json.dumps(task),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold-start sample {task['kind']} failed:\n{done.stderr[-2000:]}")
    sample: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if task["kind"] == "first_event" and sample["result"]["statusCode"] != 200:
        raise RuntimeError(f"the first event was not a grant: {sample['result']}")
    return sample


def cold_start(state: StackState, endpoint: str, runs: int, pycache: Path) -> list[str]:
    """(a) ``import boto3``, (b) the playback handler's import, (c) its import + first grant.

    Each sample is a fresh interpreter with the function's environment (the
    settings it reads, the emulator as its AWS); kinds are interleaved so they
    share the machine's noise. Bytecode is compiled once, by an unmeasured
    warm-up, into ``pycache`` (as Lambda's runtime has boto3's), so neither
    side pays the compiler.
    """
    session = boto3.Session(region_name=state.region)
    token = sign_in(session.client("cognito-idp"), state)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "VIDGATE_")) and key != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        app_environment(
            state,
            endpoint=endpoint,
            site_url="http://127.0.0.1:9",
            secret_key="c" * 48,
            url_ttl_seconds=None,
        )
    )
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    sys.path.insert(0, str(ROOT))
    from infra.package import handler_modules

    module = handler_modules()["playback"]  # the playback function's Handler in the template
    task = {"root": str(ROOT), "module": module, "event": playback_event(token)}
    for kind in COLD_KINDS:  # warm-up: bytecode and the OS file cache
        _cold_sample({**task, "kind": kind}, env)
    samples: dict[str, list[dict[str, Any]]] = {kind: [] for kind in COLD_KINDS}
    for _ in range(runs):
        for kind in COLD_KINDS:
            samples[kind].append(_cold_sample({**task, "kind": kind}, env))

    def median_ms(kind: str, *parts: str, cpu: bool = False) -> float:
        index = 1 if cpu else 0
        totals = [sum(sample[part][index] for part in parts) for sample in samples[kind]]
        return 1000 * float(statistics.median(totals))

    floor, floor_cpu = median_ms("floor", "import"), median_ms("floor", "import", cpu=True)
    rows = [
        ("(a) import boto3 (floor)", "floor", ("import",)),
        (f"(b) import {module}", "import", ("import",)),
        ("(c) import + first grant (200)", "first_event", ("import", "event")),
        ("    of which the first event", "first_event", ("event",)),
    ]
    lines = [
        f"playback cold start, median of {runs} fresh interpreters each, AWS emulator {endpoint}",
        f"  {'':<44}{'wall ms':>9}{'CPU ms':>9}{'wall/(a)':>10}{'CPU/(a)':>9}",
    ]
    for label, kind, parts in rows:
        wall, cpu = median_ms(kind, *parts), median_ms(kind, *parts, cpu=True)
        lines.append(
            f"  {label:<44}{wall:>9.0f}{cpu:>9.0f}{wall / floor:>10.2f}{cpu / floor_cpu:>9.2f}"
        )
    ratio = median_ms("import", "import") / floor
    lines.append(f"  import ratio (b)/(a): {ratio:.2f}  (goal <= 1.3)")
    return lines


def cold_imports(runs: int) -> list[str]:
    """Cold import of each Lambda handler against boto3's (``python -X importtime``, medians)."""
    sys.path.insert(0, str(ROOT))
    from infra.package import IMPORT_FLOOR, cold_import_times

    times = cold_import_times(runs=runs)
    floor = times[IMPORT_FLOOR]
    lines = ["cold import per Lambda handler (python -X importtime, fresh interpreters, median):"]
    for name, seconds in times.items():
        lines.append(
            f"  {name:<24}{seconds * 1000:>8.0f} ms {seconds / floor:>6.2f}x {IMPORT_FLOOR}"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="vidgate benchmarks (printed, never asserted)")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument(
        "--cold-runs", type=int, default=15, help="fresh interpreters per cold figure"
    )
    parser.add_argument("--load-seconds", type=float, default=30.0)
    parser.add_argument("--load-clients", type=int, default=50)
    parser.add_argument(
        "--stream-runs", type=int, default=DEFAULT_RUNS, help="browser runs per format"
    )
    parser.add_argument(
        "--throttle-bps", type=int, default=DEFAULT_THROTTLE_BPS, help="the throttled link"
    )
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="run only this part (repeatable)"
    )
    args = parser.parse_args(argv)
    sections = set(args.only or SECTIONS)
    if sections & {"grant", "cold"}:
        with tempfile.TemporaryDirectory() as tmp, Emulator(free_port()) as emulator:
            os.environ.update({**EMULATOR_ENV, "AWS_ENDPOINT_URL": emulator.endpoint})
            media = ROOT / ".cache" / "test-media"
            media_dir = media if media.exists() else Path(tmp) / "media"
            session = boto3.Session(region_name=EMULATOR_ENV["AWS_REGION"])
            if "grant" in sections:
                for line in grant_latency(session, emulator.endpoint, media_dir, args.rounds):
                    print(line, flush=True)
            if "cold" in sections:
                state = Bootstrap(session, endpoint=emulator.endpoint, media_dir=media_dir).run()
                lines = cold_start(state, emulator.endpoint, args.cold_runs, Path(tmp) / "pyc")
                for line in lines:
                    print(line, flush=True)
    if "sessions" in sections:  # playback sessions: app/local/bench_sessions.py
        print(
            *__import__("app.local.bench_sessions").local.bench_sessions.run_sessions(args.rounds),
            sep="\n",
            flush=True,
        )
    if "imports" in sections:
        for line in cold_imports(args.cold_runs):
            print(line, flush=True)
    if "load" in sections:
        for line in run_load(args.load_seconds, args.load_clients).lines():
            print(line, flush=True)
    if "streaming" in sections:
        for line in run_streaming(args.stream_runs, args.throttle_bps):
            print(line, flush=True)
    if "analytics" in sections:  # the dashboard's queries over 1M events (bench_analytics)
        print("\n".join(run_analytics_bench()), flush=True)
    if "publishing" in sections:
        print("\n".join(run_publishing()), flush=True)
    if "upload" in sections:  # browser-style presigned parts vs boto3 (app/local/bench_upload.py)
        for line in run_upload_bench():
            print(line, flush=True)
    if "catalog" in sections:  # app/local/bench_catalog.py: search at 100 vs 10,000 videos
        print(
            "\n".join(__import__("app.local.bench_catalog").local.bench_catalog.run_catalog_bench())
        )


if __name__ == "__main__":
    main()
