"""Playback sessions in a real browser: the stream limit, ending another stream, resume.

This module's own stack runs ``vidgate dev --stream-limit-free 1 --heartbeat 10``:
bob (free) may watch on one screen at a time, and a player renews (its
heartbeat) at least every 10 s, so an ended stream's player learns it within
one heartbeat. Pages must log no uncaught error and break no CSP rule; the
refused grants (409) are the only console errors allowed, as Chromium logs
every failed fetch.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import VisitorFactory
from tests.e2e.helpers import (
    PAGE_TIMEOUT_MS,
    Visitor,
    player,
    sign_in,
    start_playing,
    wait_for_progress,
    wait_for_state,
)
from tests.stackproc import RunningStack, start_stack

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

VIDEO = "free-sampler"
HEARTBEAT_SECONDS = 10
# The ended player renews within one heartbeat (plus the grant's own time).
ENDED_WITHIN_MS = (HEARTBEAT_SECONDS + 10) * 1000


@pytest.fixture(scope="module")
def limited_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    stack = start_stack(
        tmp_path_factory.mktemp("e2e-streams"),
        "--stream-limit-free",
        "1",
        "--heartbeat",
        str(HEARTBEAT_SECONDS),
    )
    yield stack
    stack.stop()


def _assert_clean_but_refusals(visitor: Visitor) -> None:
    problems = visitor.problems
    assert not problems.csp_violations, problems.csp_violations
    assert not problems.page_errors, problems.page_errors
    unexpected = [text for text in problems.console_errors if "409" not in text]
    assert not unexpected, unexpected


def _watch(visit: VisitorFactory, stack: RunningStack) -> Visitor:
    visitor = visit(stack)
    sign_in(visitor, "bob")
    visitor.goto(f"/watch/{VIDEO}")
    return visitor


def _stop_reason(page: Page) -> str:
    return str(page.evaluate("() => document.getElementById('player').dataset.stopReason"))


def test_a_second_screen_over_the_limit_is_told_and_can_end_the_first(
    visit: VisitorFactory, limited_stack: RunningStack
) -> None:
    first = _watch(visit, limited_stack)
    start_playing(first.page)
    first_session = first.page.get_attribute("#player", "data-session-id")
    assert first_session and re.fullmatch(r"[0-9a-f]{32}", first_session)

    second = _watch(visit, limited_stack)
    refused = wait_for_state(second.page, "stopped", timeout_ms=PAGE_TIMEOUT_MS)
    assert _stop_reason(second.page) == "too_many_streams"
    assert "as many screens as your plan allows" in refused["status"]
    listed = second.page.locator("#player-streams li")
    assert second.page.locator("#player-streams").is_visible()
    assert listed.count() == 1
    assert listed.first.get_attribute("data-session-id") == first_session
    assert "Chrome on Linux" in listed.first.inner_text()

    listed.first.locator("button", has_text="End that stream").click()
    start_playing(second.page)
    second_session = second.page.get_attribute("#player", "data-session-id")
    assert second_session and second_session != first_session

    # The first screen learns at its next heartbeat, stops, and says why.
    first.page.wait_for_function(
        "() => document.getElementById('player').dataset.state === 'stopped'",
        timeout=ENDED_WITHIN_MS,
    )
    stopped = player(first.page)
    assert _stop_reason(first.page) == "session_ended"
    assert "This stream was ended" in stopped["status"]
    assert stopped["paused"]
    # ... while the second plays on.
    wait_for_progress(second.page, player(second.page)["currentTime"] + 0.5)
    first.goto("/account")  # the account page lists the stream playing on the other screen
    listed_here = first.page.locator(f"#streams [data-session-id='{second_session}']")
    assert "Chrome on Linux" in listed_here.inner_text()
    assert listed_here.locator("button", has_text="End this stream").count() == 1
    second.goto("/")  # leaving the watch page sends the end beacon
    _until_no_streams(first)
    _assert_clean_but_refusals(first)
    _assert_clean_but_refusals(second)


def _until_no_streams(visitor: Visitor) -> None:
    """Reload the account page until it lists no stream (the beacon is asynchronous)."""
    for _ in range(20):
        if visitor.page.locator("#no-streams").count():
            return
        visitor.page.wait_for_timeout(250)
        visitor.goto("/account")
    raise AssertionError(visitor.page.locator("#streams").inner_text())


def test_resume_where_you_left_off_on_another_device(
    visit: VisitorFactory, limited_stack: RunningStack
) -> None:
    laptop = _watch(visit, limited_stack)
    start_playing(laptop.page)
    wait_for_progress(laptop.page, 4.0)
    laptop.page.click("#player-play")  # pause, then leave: the end beacon carries the position
    left_at = player(laptop.page)["position"]
    assert left_at >= 4.0
    laptop.goto("/")  # pagehide: the stream ends, the position is kept
    continue_row = laptop.page.locator("#continue-watching [data-video-id='free-sampler']")
    for _ in range(20):  # the beacon is asynchronous: the catalog may come first
        if continue_row.count():
            break
        laptop.page.wait_for_timeout(250)
        laptop.goto("/")
    assert "left at 0:0" in continue_row.inner_text()
    progress = float(continue_row.locator("progress").get_attribute("value") or 0)
    assert 0 < progress < 1

    phone = _watch(visit, limited_stack)  # the one stream is free again: no 409
    resume = float(phone.page.get_attribute("#player", "data-resume") or 0)
    assert abs(resume - left_at) <= 1.0, (resume, left_at)
    notice = phone.page.locator("#player-resume")
    notice.wait_for(state="visible", timeout=PAGE_TIMEOUT_MS)  # shown with the first grant
    assert re.search(r"Resuming at 0:0\d", notice.inner_text())
    started = start_playing(phone.page)
    assert started["currentTime"] >= resume - 1.0, started

    phone.goto("/account")
    assert phone.page.locator(f"#history a[href$='/watch/{VIDEO}']").count() == 1
    _assert_clean_but_refusals(laptop)
    _assert_clean_but_refusals(phone)
