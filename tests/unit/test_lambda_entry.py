"""LambdaEntry builds its API once, on the first event, with the cyclic GC paused meanwhile."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from app.http.entry import LambdaEntry

EVENT = {"version": "2.0", "rawPath": "/api/videos"}


class RecordingApi:
    """Stands in for a built API: records the events it answered."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def __call__(self, event: object, context: object = None) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200, "body": "{}"}


@pytest.fixture(autouse=True)
def gc_enabled() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


def test_the_api_is_built_once_with_the_collector_paused_and_then_reused() -> None:
    api = RecordingApi()
    builds: list[bool] = []

    def build() -> RecordingApi:
        builds.append(gc.isenabled())
        return api

    entry = LambdaEntry(build, log=logging.getLogger("test"))
    assert entry(EVENT)["statusCode"] == 200
    assert entry(EVENT)["statusCode"] == 200
    assert builds == [False]
    assert gc.isenabled()
    assert api.events == [EVENT, EVENT]


def test_a_failed_build_is_a_500_the_collector_runs_again_and_the_next_event_retries() -> None:
    api = RecordingApi()
    attempts: list[bool] = []

    def build() -> RecordingApi:
        attempts.append(gc.isenabled())
        if len(attempts) == 1:
            raise RuntimeError("the SDK could not start")
        return api

    entry = LambdaEntry(build, log=logging.getLogger("test"))
    failed = entry(EVENT)
    assert failed["statusCode"] == 500
    assert json.loads(failed["body"])["error"] == "internal"
    assert gc.isenabled()
    assert entry(EVENT)["statusCode"] == 200
    assert attempts == [False, False]


def test_a_collector_the_process_had_turned_off_stays_off() -> None:
    gc.disable()
    entry = LambdaEntry(RecordingApi, log=logging.getLogger("test"))
    assert entry(EVENT)["statusCode"] == 200
    assert not gc.isenabled()
