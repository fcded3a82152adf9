"""The playback handler's cold import leaves the first event's work to the first event.

A fresh interpreter imports ``lambda_handlers.playback`` the way Lambda does
(the source tree first on the path) and reports ``sys.modules``. What only the
first event (or a rare route) needs must not be there yet: it is loaded once,
when the handler builds its clients, reads the signing key and fetches the
JWKS. How long anything takes is ``make bench``'s business, never a test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import package

ROOT = Path(__file__).resolve().parents[2]
HANDLER = "lambda_handlers.playback"

FIRST_EVENT_ONLY = {
    "cryptography": "the CloudFront key is parsed and used from the first event on",
    "jwt": "RS256 keys and checks: the first JWKS fetch and the first verifier",
    "app.keys": "the signing key is read from Secrets Manager at the first event",
    "app.auth.jwks": "the JWKS cache is built with the first verifier",
    "app.entitlements": "the entitlement store is built with the playback decision",
    "app.users": "the user directory serves GET /api/me only",
    "http.cookies": "no viewer route reads request cookies",
}
"""Modules the handler's import must not load (a prefix covers its submodules), and why."""

CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
__import__(sys.argv[2])
print(json.dumps(sorted(sys.modules)))
"""


def modules_after_import(module: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIDGATE_"))}
    env.update(package.BENCH_ENV)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), module],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout))


@pytest.fixture(scope="module")
def loaded() -> set[str]:
    return modules_after_import(HANDLER)


def test_the_playback_handler_is_a_handler_the_template_names() -> None:
    assert package.handler_modules()["playback"] == HANDLER


@pytest.mark.parametrize("name", sorted(FIRST_EVENT_ONLY))
def test_the_playback_import_does_not_load_what_only_the_first_event_needs(
    loaded: set[str], name: str
) -> None:
    early = sorted(m for m in loaded if m == name or m.startswith(name + "."))
    assert early == [], f"{HANDLER} imports {early[:3]}... ({FIRST_EVENT_ONLY[name]})"


def test_the_playback_import_loads_the_handler_and_its_api(loaded: set[str]) -> None:
    # The check above means something only if the import really ran.
    assert {HANDLER, "app.http.viewer", "app.services", "boto3"} <= loaded
