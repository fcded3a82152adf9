"""``make bench``: a grant's latency against the raw floor, measured in one run.

Against the same DynamoDB endpoint (the AWS emulator), interleaved so both
see the same noise:

* **grant**: the playback Lambda handler answering a v2 event (verify the
  bearer token, read the entitlement, read the video, sign) — once with the
  verifier's claims cache (a renewal) and once with it off (a first grant);
* **floor**: one raw RS256 signature check of the same token + the GetItem
  the grant makes + one raw CloudFront signature with the same key.

It prints p50/p99, the ratio grant/floor (goal <= 1.3) and grants per second
per core (from this process's CPU time) for ECDSA P-256 and RSA-2048 keys,
then the load test of :mod:`app.local.loadtest` (``--load-seconds``,
``--load-clients``). Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import boto3
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from app.config import load_settings
from app.local.bootstrap import Bootstrap, StackState
from app.local.emulator import EMULATOR_ENV, Emulator
from app.local.loadtest import run_load
from app.local.ports import free_port
from app.local.stack import app_environment

ROOT = Path(__file__).resolve().parents[2]


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


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
        alice = next(u for u in state.users if u["username"] == "alice")
        auth = self.services.cognito_idp.initiate_auth(
            ClientId=state.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "alice", "PASSWORD": alice["password"]},
        )
        self.token = auth["AuthenticationResult"]["AccessToken"]
        self.user_id = json.loads(_b64url(self.token.split(".")[1]))["sub"]
        self.event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/api/videos/premium-aurora/playback",
            "rawQueryString": "",
            "headers": {
                "authorization": f"Bearer {self.token}",
                "content-type": "application/json",
            },
            "requestContext": {
                "http": {
                    "method": "POST",
                    "path": "/api/videos/premium-aurora/playback",
                    "sourceIp": "127.0.0.1",
                    "protocol": "HTTP/1.1",
                    "userAgent": "bench",
                },
                "stage": "$default",
            },
            "body": "",
            "isBase64Encoded": False,
        }
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


def run(rounds: int) -> list[str]:
    lines: list[str] = []
    media = ROOT / ".cache" / "test-media"
    with tempfile.TemporaryDirectory() as tmp, Emulator(free_port()) as emulator:
        os.environ.update({**EMULATOR_ENV, "AWS_ENDPOINT_URL": emulator.endpoint})
        media_dir = media if media.exists() else Path(tmp) / "media"
        session = boto3.Session(region_name=EMULATOR_ENV["AWS_REGION"])
        lines.append(
            f"grant latency vs floor, {rounds} rounds each, AWS emulator {emulator.endpoint}"
        )
        lines.append(
            f"{'key':<11}{'path':<26}{'p50 ms':>9}{'p99 ms':>9}{'/s wall':>9}{'/s/core':>9}"
        )
        for algorithm in ("ecdsa-p256", "rsa-2048"):
            state = Bootstrap(
                session, endpoint=emulator.endpoint, key_algorithm=algorithm, media_dir=media_dir
            ).run()
            renew, first = (
                Case(state, emulator.endpoint, cached=True),
                Case(state, emulator.endpoint, cached=False),
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


def cold_imports() -> list[str]:
    """Cold import of each Lambda handler (``python -X importtime``, a fresh process each)."""
    import sys

    sys.path.insert(0, str(ROOT))
    from infra.package import cold_import_times

    lines = ["cold import per Lambda handler (python -X importtime, fresh interpreter):"]
    for name, seconds in cold_import_times().items():
        lines.append(f"  {name:<24}{seconds * 1000:>8.0f} ms")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="vidgate benchmarks (printed, never asserted)")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--load-seconds", type=float, default=30.0)
    parser.add_argument("--load-clients", type=int, default=50)
    args = parser.parse_args(argv)
    for line in run(args.rounds):
        print(line, flush=True)
    for line in cold_imports():
        print(line, flush=True)
    for line in run_load(args.load_seconds, args.load_clients).lines():
        print(line, flush=True)


if __name__ == "__main__":
    main()
