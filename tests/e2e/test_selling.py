"""Buying through the local Stripe stand-in, in Chromium, on a stack of this module's own.

Every grant comes from a signed webhook the stand-in delivers to the front door;
the success page only polls. The stack is never restarted between buying and
playing.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import VisitorFactory
from tests.e2e.helpers import Visitor, screenshot, sign_in, start_playing
from tests.stackproc import RunningStack, start_stack

PREMIUM = "premium-aurora"
OTHER_PREMIUM = "premium-mandelbrot"
PAGE_WAIT_MS = 30_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("e2e-selling"))
    yield running
    running.stop()


def _stripe(stack: RunningStack, path: str, body: dict[str, Any] | None = None) -> Any:
    base = stack.document["stripe"]["api_base"]
    data = json.dumps(body or {}).encode() if body is not None else None
    request = urllib.request.Request(
        f"{base}{path}",
        data=data,
        method="POST" if data is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # the loopback stand-in
        return json.loads(answer.read())


def _pay(visitor: Visitor, start_button: str) -> str:
    """Click ``start_button``, pay on the test page, wait on the success page; the session id."""
    page = visitor.page
    with page.expect_navigation(wait_until="load"):
        page.click(start_button)
    assert page.locator("#test-banner").inner_text().startswith("Test payment page")
    with page.expect_navigation(wait_until="load"):
        page.click("#pay")
    assert visitor.path.startswith("/billing/success?session_id=cs_")
    page.wait_for_selector("#checkout-state[data-state=complete]", timeout=PAGE_WAIT_MS)
    screenshot(page, "selling-success")
    return visitor.path.split("session_id=")[1]


def _sign_up(visitor: Visitor, username: str, password: str) -> None:
    page = visitor.page
    visitor.goto("/auth/sign-up")
    page.fill("#username", username)
    page.fill("#email", f"{username}@example.com")
    page.fill("#password", password)
    page.fill("#password_repeat", password)
    with page.expect_navigation(wait_until="load"):
        page.click("main form button[type=submit]")
    page.fill("#code", "123456")  # the emulator accepts any confirmation code
    with page.expect_navigation(wait_until="load"):
        page.click("main form[action$='/auth/confirm'] button[type=submit]")
    page.fill("#identifier", username)
    page.fill("#password", password)
    with page.expect_navigation(wait_until="load"):
        page.click("main form[action$='/auth/sign-in'] button[type=submit]")
    assert f"Account ({username})" in page.locator("header.site-header nav").inner_text()


def test_bob_buys_premium_plays_a_premium_video_and_cancel_keeps_it_to_the_period_end(
    stack: RunningStack, visit: VisitorFactory
) -> None:
    bob = visit(stack)
    sign_in(bob, "bob", f"/watch/{PREMIUM}")
    page = bob.page
    assert page.locator("#upsell").is_visible()
    assert "per month" in page.locator("#upgrade-month").inner_text()

    _pay(bob, "#upgrade-month")

    bob.goto(f"/watch/{PREMIUM}")
    start_playing(page)
    bob.goto("/account")
    assert page.locator("#subscription").get_attribute("data-active") == "yes"
    assert "renews on" in page.locator("#subscription").inner_text()

    with page.expect_navigation(wait_until="load"):
        page.click("#manage-billing")
    with page.expect_navigation(wait_until="load"):
        page.click("#cancel-plan")
    assert bob.path == "/account"
    _wait_for_text(bob, "/account", "#subscription", "ends on")
    assert page.locator("#subscription").get_attribute("data-active") == "yes"
    bob.goto(f"/watch/{OTHER_PREMIUM}")
    start_playing(page)
    # Premium already: no second subscription, the account page says so.
    bob.goto("/pricing")
    with page.expect_navigation(wait_until="load"):
        page.click("#upgrade-month")
    assert bob.path == "/account"
    assert "already have premium" in page.locator(".flash").inner_text()
    bob.problems.assert_clean()


def _wait_for_text(visitor: Visitor, path: str, selector: str, text: str, tries: int = 30) -> None:
    """Reload ``path`` until ``selector`` shows ``text`` (a webhook lands asynchronously)."""
    for _ in range(tries):
        visitor.goto(path)
        if text in visitor.page.locator(selector).inner_text():
            return
        visitor.page.wait_for_timeout(500)
    raise AssertionError(f"{selector} on {path} never showed {text!r}")


def test_a_new_user_rents_one_video_plays_it_and_is_refused_another(
    stack: RunningStack, visit: VisitorFactory
) -> None:
    viewer = visit(stack)
    username = f"renter{uuid.uuid4().hex[:8]}"
    _sign_up(viewer, username, "Renter-Passw0rd-2026!")
    viewer.goto(f"/watch/{PREMIUM}")
    page = viewer.page
    assert "Rent for 48 h" in page.locator("#rent-video").inner_text()

    _pay(viewer, "#rent-video")

    viewer.goto(f"/watch/{PREMIUM}")
    start_playing(page)
    viewer.goto(f"/watch/{OTHER_PREMIUM}")
    assert page.locator("#upsell").is_visible()
    _wait_for_text(viewer, "/account", "#paid", "rented")
    assert page.locator(f"#paid li[data-video={PREMIUM}]").get_attribute("data-active") == "yes"
    viewer.problems.assert_clean()


def test_a_declined_card_grants_nothing(stack: RunningStack, visit: VisitorFactory) -> None:
    viewer = visit(stack)
    username = f"decline{uuid.uuid4().hex[:8]}"
    _sign_up(viewer, username, "Decline-Passw0rd-2026!")
    viewer.goto(f"/watch/{OTHER_PREMIUM}")
    page = viewer.page
    with page.expect_navigation(wait_until="load"):
        page.click("#buy-video")
    assert page.locator("#test-banner").is_visible()
    events_before = len(_stripe(stack, "/_test/events"))

    with page.expect_navigation(wait_until="load"):
        page.click("#decline-card")

    assert "declined" in page.locator("#decline").inner_text()
    with page.expect_navigation(wait_until="load"):
        page.click("#cancel")
    assert viewer.path == f"/watch/{OTHER_PREMIUM}?checkout=canceled"
    assert page.locator("#upsell").is_visible()
    assert len(_stripe(stack, "/_test/events")) == events_before  # no payment, no webhook
    viewer.goto("/account")
    assert viewer.page.locator("#paid").count() == 0
    viewer.problems.assert_clean()
