"""The emulator evaluates Firehose's !{timestamp:…} prefixes like AWS (docs/analytics.md#an-4)."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.analytics import FIREHOSE_PREFIX
from app.local.emulator import evaluate_firehose_prefix

MOMENT = datetime(2026, 11, 27, 23, 59, 58)


def test_the_template_prefix_becomes_one_folder_per_day() -> None:
    assert evaluate_firehose_prefix(FIREHOSE_PREFIX, MOMENT) == "analytics/events/dt=2026-11-27/"


def test_quoted_literals_and_several_expressions_share_one_moment() -> None:
    prefix = "x/!{timestamp:yyyy'/'MM}/h=!{timestamp:HH}/m=!{timestamp:mm:ss}/"
    assert evaluate_firehose_prefix(prefix, MOMENT) == "x/2026/11/h=23/m=59:58/"


def test_a_prefix_without_expressions_keeps_firehoses_default_time_folders() -> None:
    assert evaluate_firehose_prefix("plain/", MOMENT) is None


@pytest.mark.parametrize(
    "prefix",
    ["a/!{timestamp:EEE}/", "a/!{firehose:random-string}/", "a/!{partitionKeyFromQuery:x}/"],
)
def test_what_it_does_not_know_is_refused_not_guessed(prefix: str) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        evaluate_firehose_prefix(prefix, MOMENT)
