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


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """``vidgate dev`` running as a child process for the whole session."""
    stack = start_stack(tmp_path_factory.mktemp("dev-stack"))
    yield stack
    stack.stop()


DDB_TARGETS = ("emulator", "dynamodb-local")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say which DynamoDB targets the data-layer tests ran on (visible even with -q)."""
    counts = dict.fromkeys(DDB_TARGETS, 0)
    for report in terminalreporter.stats.get("passed", []):
        for target in DDB_TARGETS:
            if f"[{target}" in report.nodeid or f"-{target}]" in report.nodeid:
                counts[target] += 1
    if any(counts.values()):
        ran = ", ".join(f"{target}: {n} passed" for target, n in counts.items())
        terminalreporter.write_line(f"DynamoDB targets of the data-layer tests: {ran}")
