"""Shared fixtures: the AWS emulator (moto server) as a real separate process.

Integration tests talk to it over HTTP through boto3's standard
``AWS_ENDPOINT_URL`` variable, exactly as the app does in ``vidgate dev``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from app.local.emulator import EMULATOR_ENV, Emulator
from app.local.ports import free_port
from tests.stackproc import RunningStack, start_stack

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One moto server for the whole test session, on a free loopback port."""
    log = tmp_path_factory.mktemp("emulator") / "moto.log"
    with Emulator(free_port(), log_path=str(log)) as emu:
        yield emu


@pytest.fixture(scope="session")
def aws_env(emulator: Emulator) -> Iterator[dict[str, str]]:
    """Point boto3 (in this process and in children) at the emulator."""
    env = {**EMULATOR_ENV, "AWS_ENDPOINT_URL": emulator.endpoint}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def boto_session(aws_env: dict[str, str]) -> boto3.Session:
    return boto3.Session(region_name=aws_env["AWS_REGION"])


TEST_AUTH_LIMIT = 100
"""The shared stack's sign-in limit at the edge: every browser test signs in from 127.0.0.1,
so the web ACL's 20 per 5 minutes (tested on its own edge) would refuse the suite itself."""
UNLIMITED_STREAMS = (
    "--stream-limit-free",
    "100",
    "--stream-limit-premium",
    "100",
    "--auth-rate-limit",
    str(TEST_AUTH_LIMIT),
)
"""``vidgate dev`` options for stacks whose tests are not about stream limits or the sign-in
limit (tests/integration/test_edge_rate_limits.py keeps the definition's)."""


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """``vidgate dev`` running as a child process for the whole session.

    Its tests open many players per user without closing them: the stream limits are
    raised here and tested on a stack of their own (tests/e2e/test_stream_limits.py).
    """
    stack = start_stack(tmp_path_factory.mktemp("dev-stack"), *UNLIMITED_STREAMS)
    yield stack
    stack.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Tag each report of a data-layer test with the DynamoDB engine it ran on."""
    outcome: Any = yield
    callspec = getattr(item, "callspec", None)
    target = callspec.params.get("ddb_target") if callspec is not None else None
    if target is not None:
        outcome.get_result().user_properties.append(("ddb_target", target))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say which DynamoDB engines the data-layer tests ran on (visible even with -q)."""
    counts: dict[str, int] = {}
    for report in terminalreporter.stats.get("passed", []):
        if report.when != "call":
            continue
        for name, target in report.user_properties:
            if name == "ddb_target":
                counts[target] = counts.get(target, 0) + 1
    if counts:
        ran = ", ".join(f"{target}: {n} passed" for target, n in sorted(counts.items()))
        terminalreporter.write_line(f"DynamoDB targets of the data-layer tests: {ran}")
