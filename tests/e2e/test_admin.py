"""carol's admin pages in a real browser, and what a premium change does to bob's player.

All on this package's own short-lived-URL stack (``vidgate dev --url-ttl 6``):
these tests change bob's membership, which the shared ``dev_stack`` keeps for
other modules. Each test starts from bob being free (set outside the browser,
as ``vidgate admin revoke`` would) and leaves him free. carol and bob use
separate browser contexts, as two people on two machines would.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.e2e.conftest import VisitorFactory
from tests.e2e.helpers import (
    PLAY_TIMEOUT_MS,
    Visitor,
    assert_really_plays,
    is_premium,
    player,
    screenshot,
    set_premium_directly,
    sign_in,
    start_playing,
    wait_for_state,
)
from tests.stackproc import RunningStack

pytestmark = pytest.mark.e2e

PREMIUM_ENDED = "Your premium access has ended — playback stopped."
BOB_ROW = "table#users tr[data-user=bob]"


def day_words(day: date) -> str:
    """A day as the admin pages write it: ``31 Dec 2026``."""
    return f"{day.day} {day:%b %Y}"


@pytest.fixture
def bob_free(short_ttl_stack: RunningStack) -> Iterator[RunningStack]:
    """bob is free before the test and after it, whatever the test did."""
    set_premium_directly(short_ttl_stack, "bob", False)
    yield short_ttl_stack
    set_premium_directly(short_ttl_stack, "bob", False)


def membership_in_list(carol: Visitor) -> tuple[str | None, str]:
    """bob's ``data-premium`` and membership text on the users list."""
    state = carol.page.locator(f"{BOB_ROW} .premium-state")
    return state.get_attribute("data-premium"), state.inner_text().strip()


def account_membership(bob: Visitor) -> tuple[str | None, str]:
    bob.goto("/account")
    status = bob.page.locator("#premium-status")
    return status.get_attribute("data-premium"), status.inner_text().strip()


def grant_in_list(carol: Visitor, until: date | None) -> None:
    """carol grants bob premium from the users list (optionally with an end date)."""
    carol.goto("/admin/users")
    row = carol.page.locator(BOB_ROW)
    if until is not None:
        row.locator("input[type=date]").fill(until.isoformat())
    with carol.page.expect_navigation():
        row.get_by_role("button", name="Grant premium").click()
    assert carol.path.startswith("/admin/users"), carol.path


def save_end_date_unchanged(carol: Visitor, last_day: date) -> None:
    """On bob's page the date field shows the last day carol chose; saving it as it is
    changes nothing (the end used to move a day per save)."""
    page = carol.page
    with page.expect_navigation():
        page.locator(BOB_ROW).get_by_role("link", name="bob").click()
    version = page.locator("#current-state").get_attribute("data-version")
    for _ in range(2):
        assert page.locator("#until").input_value() == last_day.isoformat()
        with page.expect_navigation():
            page.get_by_role("button", name="Save end date").click()
        assert page.get_by_role("status").filter(has_text="Nothing changed").is_visible()
    assert page.locator("#current-state").get_attribute("data-version") == version
    assert (
        f"Premium through {day_words(last_day)} UTC" in page.locator("#current-state").inner_text()
    )
    carol.goto("/admin/users")


def revoke_with_confirmation(carol: Visitor, stack: RunningStack) -> None:
    """carol opens bob's page, asks to revoke, checks the confirmation step, confirms."""
    page = carol.page
    carol.goto("/admin/users")
    with page.expect_navigation():
        page.locator(BOB_ROW).get_by_role("link", name="bob").click()
    with page.expect_navigation():
        page.locator("#revoke-link").click()
    assert page.locator("h1").inner_text() == "Revoke premium for bob?"
    assert page.locator("#confirm-revoke").is_visible()
    assert is_premium(stack, "bob"), "asking to revoke must not revoke yet"
    screenshot(page, "admin-revoke-confirm")
    with page.expect_navigation():
        page.get_by_role("button", name="Yes, revoke premium").click()
    assert page.get_by_role("status").filter(has_text="bob is no longer premium.").is_visible()


def test_carol_grants_premium_with_an_end_date_then_revokes_it_after_confirming(
    visit: VisitorFactory, bob_free: RunningStack
) -> None:
    stack = bob_free
    carol = visit(stack)
    bob = visit(stack)
    sign_in(carol, "carol", "/admin/users")
    sign_in(bob, "bob", "/account")
    assert membership_in_list(carol) == ("free", "Free")
    assert account_membership(bob)[0] == "inactive"

    last_day = datetime.now(UTC).date() + timedelta(days=30)
    ends = last_day + timedelta(days=1)  # "through that day": premium ends at the next midnight
    grant_in_list(carol, last_day)
    flash = carol.page.get_by_role("status").filter(has_text="bob is now premium through")
    assert f"through {day_words(last_day)} UTC" in flash.inner_text()
    assert membership_in_list(carol) == ("active", f"Premium through {day_words(last_day)} UTC")
    screenshot(carol.page, "admin-users")
    save_end_date_unchanged(carol, last_day)
    assert account_membership(bob)[0] == "active"
    until = bob.page.locator("#premium-until")  # shown in bob's own time zone
    assert until.get_attribute("datetime") == f"{ends:%Y-%m-%d}T00:00:00Z"
    assert until.get_attribute("title") == f"{ends:%d %B %Y}, 00:00 UTC"
    assert until.get_attribute("data-localized") == "yes"
    bob.goto("/watch/premium-aurora")
    assert bob.page.locator("#player").count() == 1, "premium bob gets the player, no upsell"

    revoke_with_confirmation(carol, stack)
    assert carol.path.startswith("/admin/users/"), carol.path  # back on bob's page
    assert carol.page.locator("h1").inner_text() == "bob"
    assert carol.page.locator("#current-state").get_attribute("data-premium") == "free"
    carol.goto("/admin/users")
    assert membership_in_list(carol) == ("free", "Free")
    assert account_membership(bob) == ("inactive", "Free — premium videos are not included")
    bob.goto("/watch/premium-aurora")
    assert bob.page.locator("article#upsell").is_visible()

    carol.goto("/admin/audit")
    changes = carol.page.locator("table#audit tbody tr[data-user=bob][data-actor=carol]")
    actions = [changes.nth(i).get_attribute("data-action") for i in range(changes.count())]
    assert actions == ["revoke", "grant"], carol.page.locator("table#audit").inner_text()
    assert f"premium through {day_words(last_day)} UTC" in changes.nth(1).inner_text()
    screenshot(carol.page, "admin-audit")
    carol.problems.assert_clean()
    bob.problems.assert_clean()


def test_revoking_bob_stops_his_playback_at_the_next_renewal(
    visit: VisitorFactory, bob_free: RunningStack
) -> None:
    stack = bob_free
    carol = visit(stack)
    bob = visit(stack)
    sign_in(carol, "carol", "/admin/users")
    grant_in_list(carol, None)
    assert membership_in_list(carol) == ("active", "Premium (no end date)")

    sign_in(bob, "bob", "/watch/premium-aurora")
    start_playing(bob.page)
    _, playing = assert_really_plays(bob.page)

    revoke_with_confirmation(carol, stack)
    assert not is_premium(stack, "bob")

    stopped = wait_for_state(bob.page, "stopped", "error", "ended", timeout_ms=PLAY_TIMEOUT_MS)
    assert stopped["state"] == "stopped", stopped
    assert stopped["stopReason"] == "premium_required", stopped
    assert stopped["position"] < playing["duration"] - 1, "it stopped before the end"
    assert stopped["paused"] and not stopped["hasSource"], stopped
    status = bob.page.locator("#player-status")
    assert status.is_visible()
    assert status.inner_text() == PREMIUM_ENDED
    assert status.get_attribute("data-kind") == "error"
    assert bob.page.locator("#player-play").is_disabled()
    assert bob.page.locator("#player-retry").is_hidden()
    screenshot(bob.page, "watch-premium-ended")

    # Nothing plays any more: the position does not move.
    held = player(bob.page)["position"]
    bob.page.wait_for_timeout(1_200)
    assert player(bob.page)["position"] == held
    # The refused renewal is the one expected console line (Chromium logs the 403).
    assert not bob.problems.csp_violations and not bob.problems.page_errors
    assert all("403" in line for line in bob.problems.console_errors), bob.problems.console_errors
    carol.problems.assert_clean()


def test_bob_cannot_open_the_admin_pages(visit: VisitorFactory, bob_free: RunningStack) -> None:
    bob = visit(bob_free)
    sign_in(bob, "bob")
    response = bob.page.goto(bob.url("/admin/users"))
    assert response is not None and response.status == 403
    assert bob.page.locator("table#users").count() == 0
    assert bob.page.locator("[data-nav=admin]").count() == 0


def test_admin_pages_log_no_console_errors_and_break_no_csp_rule(
    visit: VisitorFactory, bob_free: RunningStack
) -> None:
    carol = visit(bob_free)
    sign_in(carol, "carol", "/admin/users")
    page = carol.page
    with page.expect_navigation():
        page.locator("[data-nav=admin]").click()
    assert carol.path == "/admin/users"
    with page.expect_navigation():
        page.locator(BOB_ROW).get_by_role("link", name="bob").click()
    assert page.locator("#grant-form").is_visible()
    screenshot(page, "admin-user")
    for path in ("/admin/audit", "/admin/videos", "/admin/videos/premium-aurora", "/account"):
        carol.goto(path)
    screenshot(page, "admin-video")
    page.wait_for_load_state("networkidle")
    carol.problems.assert_clean()
