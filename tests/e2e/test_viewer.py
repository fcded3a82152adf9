"""The viewer's side in a real browser: sign in, catalog, play, seek, upsell, renewals, sign out.

Debian's Chromium (through Playwright) drives ``vidgate dev`` running as a
child process: the real sign-in form, the server-rendered pages, ``player.js``
asking the grant route for signed URLs, and the local CloudFront edge serving
the MP4 by ranges. "Plays" always means ``currentTime`` advancing between two
samples more than a second apart with ``readyState >= 3``. Every test also
checks that its pages logged no console error, threw nothing and broke no
Content-Security-Policy rule.
"""

from __future__ import annotations

import time
from itertools import pairwise
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.conftest import VisitorFactory
from tests.e2e.helpers import (
    PLAY_TIMEOUT_MS,
    Visitor,
    assert_really_plays,
    player,
    screenshot,
    session_cookies,
    sign_in,
    start_playing,
    wait_for_state,
)
from tests.stackproc import RunningStack

pytestmark = pytest.mark.e2e

DEMO_TIERS = {"free-sampler": "free", "premium-aurora": "premium", "premium-mandelbrot": "premium"}


def sign_in_page_for(path: str) -> str | None:
    """The ``next`` of a sign-in page's path, or None when ``path`` is not the sign-in page."""
    parts = urlsplit(path)
    if parts.path != "/auth/sign-in":
        return None
    return parse_qs(parts.query).get("next", [""])[0]


def title_page_sign_in_next(visitor: Visitor) -> str | None:
    """The ``next`` of the public title page's "Sign in to watch" (the page must be one)."""
    page = visitor.page
    assert page.locator("#title-page").count() == 1, visitor.path
    assert page.locator("#player").count() == 0
    href = page.locator("#title-sign-in").get_attribute("href") or ""
    return sign_in_page_for(href)


def test_alice_signs_in_and_a_premium_video_really_plays(
    visit: VisitorFactory, dev_stack: RunningStack
) -> None:
    alice = visit(dev_stack)
    sign_in(alice, "alice")
    page = alice.page

    cards = page.locator("ul#catalog li.video-card")
    assert page.locator("ul#catalog").get_attribute("data-count") == str(cards.count())
    found = {
        cards.nth(i).get_attribute("data-video-id"): cards.nth(i).get_attribute("data-tier")
        for i in range(cards.count())
    }
    assert found.items() >= DEMO_TIERS.items(), found  # other modules may add videos
    card = page.locator("li.video-card[data-video-id=premium-aurora]")
    assert card.locator("span.badge").get_attribute("data-badge") == "premium"
    page.wait_for_function(  # the posters come from the edge's public path
        "() => [...document.querySelectorAll('img.poster')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    title = card.locator(".video-title").inner_text()
    screenshot(page, "catalog")

    with page.expect_navigation():
        card.locator("a.video-link").click()
    assert alice.path == "/watch/premium-aurora"
    assert page.locator("h1#video-title").inner_text() == title

    start_playing(page)
    _, second = assert_really_plays(page)
    assert second["grants"] >= 1
    assert page.locator("#player-play").inner_text() == "Pause"
    screenshot(page, "watch")
    alice.problems.assert_clean()


def test_seeking_near_the_end_plays_through_to_the_end(
    visit: VisitorFactory, dev_stack: RunningStack
) -> None:
    alice = visit(dev_stack)
    sign_in(alice, "alice", "/watch/premium-mandelbrot")
    page = alice.page
    start_playing(page)

    duration = page.evaluate("() => document.getElementById('player-video').duration")
    assert duration > 20, duration  # the 24 s demo video
    page.evaluate(
        "() => { const v = document.getElementById('player-video');"
        " v.currentTime = v.duration - 2; }"
    )
    page.wait_for_function(
        """() => {
          const v = document.getElementById('player-video');
          return v.ended || v.currentTime >= v.duration - 0.5;
        }""",
        timeout=PLAY_TIMEOUT_MS,
    )
    after = wait_for_state(page, "ended", "error", "stopped")
    assert after["state"] == "ended", after
    assert after["ended"], after
    assert after["position"] >= duration - 0.5, after
    assert "error" not in after["history"], after["history"]
    assert page.locator("#player-status").inner_text() == "Finished. Press Play to watch again."
    alice.problems.assert_clean()


def test_bob_gets_the_upsell_on_premium_and_plays_the_free_video(
    visit: VisitorFactory, dev_stack: RunningStack
) -> None:
    bob = visit(dev_stack)
    sign_in(bob, "bob", "/watch/premium-aurora")
    page = bob.page

    upsell = page.locator("article#upsell")
    assert upsell.get_attribute("data-video-id") == "premium-aurora"
    assert upsell.get_attribute("data-reason") == "premium_required"
    assert page.get_by_role("heading", name="This video is for premium members").is_visible()
    assert page.locator("#upsell-message").is_visible()
    assert page.locator("#player").count() == 0
    assert page.locator("video").count() == 0
    screenshot(page, "upsell")

    with page.expect_navigation():
        page.locator("#upsell-back").click()
    assert bob.path == "/"
    with page.expect_navigation():
        # The shared stack also lists e2e uploads (free too): the demo free video by its link.
        page.locator(
            'li.video-card[data-tier=free] a.video-link[href="/watch/free-sampler"]'
        ).click()
    assert bob.path == "/watch/free-sampler"
    start_playing(page)
    assert_really_plays(page)
    bob.problems.assert_clean()


def test_a_20_second_video_plays_to_the_end_on_6_second_urls(
    visit: VisitorFactory, short_ttl_stack: RunningStack
) -> None:
    alice = visit(short_ttl_stack)
    sign_in(alice, "alice", "/watch/premium-aurora")
    page = alice.page
    start_playing(page)

    # Follow data-position (it survives URL swaps) until the video ends or fails.
    positions: list[float] = []
    deadline = time.monotonic() + PLAY_TIMEOUT_MS / 1000
    state = player(page)
    while state["state"] not in ("ended", "error", "stopped") and time.monotonic() < deadline:
        positions.append(state["position"])
        page.wait_for_timeout(400)
        state = player(page)

    assert state["state"] == "ended", repr(state)
    assert state["ended"], state
    assert state["position"] >= state["duration"] - 0.5, state
    assert state["renewals"] >= 2, state
    assert state["recoveries"] == 0, f"a URL expired under the player: {state}"
    assert not {"error", "stopped"} & set(state["history"]), state["history"]
    backwards = [(a, b) for a, b in pairwise(positions) if b < a - 0.5]
    assert not backwards, f"the position jumped back during a URL swap: {backwards}"
    alice.problems.assert_clean()


def test_sign_out_ends_the_session_and_its_cookie(
    visit: VisitorFactory, dev_stack: RunningStack
) -> None:
    alice = visit(dev_stack)
    sign_in(alice, "alice", "/account")
    page = alice.page
    assert page.locator("h1").inner_text() == "Your account"
    saved = session_cookies(alice)
    assert len(saved) == 1, alice.context.cookies()

    # Before sign-out the saved cookie is a working session in any browser...
    replay = visit(dev_stack)
    replay.context.add_cookies(saved)
    replay.goto("/account")
    assert replay.path == "/account"
    assert "alice" in replay.page.locator("#account-facts").inner_text()
    replay.context.close()

    with page.expect_navigation():
        page.locator("main form[action$='/auth/sign-out'] button[type=submit]").click()
    assert "Sign in" in page.locator("header.site-header nav").inner_text()
    assert page.get_by_role("status").filter(has_text="You are signed out.").is_visible()
    # That message came in the anonymous cookie; the old session cookie is gone for good.
    assert saved[0]["value"] not in {c["value"] for c in session_cookies(alice)}

    alice.goto("/account")
    assert sign_in_page_for(alice.path) == "/account", alice.path
    alice.goto("/watch/free-sampler")  # signed out: the public title page, no player
    assert title_page_sign_in_next(alice) == "/watch/free-sampler", alice.path

    # ...and after it, the same cookie is nobody's.
    stolen = visit(dev_stack)
    stolen.context.add_cookies(saved)
    stolen.goto("/account")
    assert sign_in_page_for(stolen.path) == "/account", stolen.path
    stolen.goto("/watch/premium-aurora")
    assert title_page_sign_in_next(stolen) == "/watch/premium-aurora", stolen.path
    assert stolen.page.locator("#player").count() == 0
    alice.problems.assert_clean()
    stolen.problems.assert_clean()


def test_viewer_pages_log_no_console_errors_and_break_no_csp_rule(
    visit: VisitorFactory, dev_stack: RunningStack
) -> None:
    bob = visit(dev_stack)
    bob.goto("/")  # the catalog, signed out
    assert bob.page.locator("#catalog-sign-in-hint").is_visible()
    sign_in(bob, "bob")
    bob.goto("/watch/premium-mandelbrot")  # the upsell page
    assert bob.page.locator("article#upsell").is_visible()
    bob.goto("/watch/free-sampler")
    start_playing(bob.page)
    bob.goto("/account")
    bob.goto("/")
    bob.page.wait_for_load_state("networkidle")
    bob.problems.assert_clean()


def test_the_page_watch_does_see_a_csp_violation(
    visit: VisitorFactory, dev_stack: RunningStack
) -> None:
    """The watch behind every other test works: an inline script is refused and reported."""
    visitor = visit(dev_stack)
    visitor.goto("/")
    visitor.page.evaluate(
        """() => {
          const script = document.createElement('script');
          script.textContent = 'window.__inlineRan = true;';
          document.body.appendChild(script);
        }"""
    )
    deadline = time.monotonic() + 5
    while not visitor.problems.csp_violations and time.monotonic() < deadline:
        visitor.page.wait_for_timeout(100)
    assert visitor.page.evaluate("() => window.__inlineRan === undefined")
    assert [v["directive"] for v in visitor.problems.csp_violations] == ["script-src-elem"]
    assert visitor.problems.console_errors, "Chromium logs CSP refusals as console errors"
    with pytest.raises(AssertionError, match="CSP violations"):
        visitor.problems.assert_clean()
