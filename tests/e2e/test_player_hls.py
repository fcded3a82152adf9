"""The player on HLS in a real browser: hls.js, the quality menu, ABR under a throttled network.

These run when the stack's demo videos are granted as HLS (master playlist +
CloudFront signed cookies for the video's folder); while a demo is still
granted as MP4 they skip, saying so. hls.js runs with the page's strict CSP
(its worker from /static). A throttled network is Chromium's own network
emulation through the DevTools protocol. Every test also checks that its
pages logged no console error, threw nothing and broke no CSP rule.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import pytest

from app.captions import Track
from tests.e2e.conftest import VisitorFactory
from tests.e2e.helpers import (
    PAGE_TIMEOUT_MS,
    PLAY_TIMEOUT_MS,
    Visitor,
    player,
    sign_in,
    start_playing,
    wait_for_state,
)
from tests.stackproc import RunningStack

if TYPE_CHECKING:
    from playwright.sync_api import CDPSession, Page, Response

pytestmark = pytest.mark.e2e

HLS_DEMOS = ("premium-aurora", "premium-mandelbrot", "free-sampler")
THROTTLE_BPS = 500_000  # "a congested line": below every rung but the lowest ones
MIN_ABR_SECONDS = 40  # reach the top rung, drop within 10 s, climb back: before the video ends
DROP_WITHIN_MS = 10_000
MAX_STALL_MS = 2_000
CLIMB_WITHIN_MS = 30_000

LADDER_JS = """() => [...document.querySelectorAll('#player-quality-menu [data-level]')]
  .map((item) => ({
    level: Number(item.dataset.level),
    text: item.textContent.trim(),
    height: Number(item.dataset.height || 0),
    bitrate: Number(item.dataset.bitrate || 0),
    checked: item.getAttribute('aria-checked') === 'true',
    playing: item.dataset.playing === 'true',
  }))"""

# The rung on screen, and what the button and the Auto item say about it, in one snapshot.
SHOWN_RUNG_JS = """() => {
  const level = Number(document.getElementById('player').dataset.level);
  const item = document.querySelector(`#player-quality-menu [data-level='${level}']`);
  if (!item) { return null; }
  return {
    level: level,
    height: Number(item.dataset.height),
    playing: item.dataset.playing,
    label: document.getElementById('player-quality-value').textContent,
    auto: document.querySelector("#player-quality-menu [data-level='-1']").textContent,
  };
}"""

# Stalls of the playing video: from 'waiting' (not a seek) until it plays again.
STALL_WATCH_JS = """() => {
  const v = document.getElementById('player-video');
  const stalls = window.__stalls = [];
  let since = null;
  window.__openStallMs = () => (since === null ? 0 : performance.now() - since);
  v.addEventListener('waiting', () => {
    if (!v.seeking && since === null) { since = performance.now(); }
  });
  const end = () => {
    if (since !== null) { stalls.push(performance.now() - since); since = null; }
  };
  v.addEventListener('playing', end);
  v.addEventListener('timeupdate', () => {
    if (since !== null && !v.paused && v.readyState >= 3) { end(); }
  });
}"""


def open_hls_video(visitor: Visitor, video_id: str) -> dict[str, Any]:
    """Open ``video_id``'s watch page, wait for its grant; skip unless it is HLS."""
    visitor.goto(f"/watch/{video_id}")
    state = wait_for_state(visitor.page, "ready", "error", "stopped", timeout_ms=PAGE_TIMEOUT_MS)
    assert state["state"] == "ready", state
    if state["format"] != "hls":
        pytest.skip(
            f"{video_id} is granted as {state['format']!r}, not HLS: the stack's demo videos "
            "have no HLS rendition (or the grant route no HLS grant) yet"
        )
    assert state["engine"] == "hlsjs", f"Chromium has MSE: hls.js must play it {state}"
    visitor.page.wait_for_function(  # the playlists are in: rungs and duration known
        """() => document.getElementById('player-video').duration > 0
          && Number(document.getElementById('player').dataset.levels) > 0""",
        timeout=PAGE_TIMEOUT_MS,
    )
    return player(visitor.page)


def longest_hls_video(visitor: Visitor) -> str:
    """The longest demo granted as HLS (the ABR scenario needs time to drop and climb)."""
    durations: dict[str, float] = {}
    for video_id in HLS_DEMOS:
        visitor.goto(f"/watch/{video_id}")
        page = visitor.page
        state = wait_for_state(page, "ready", "error", "stopped", timeout_ms=PAGE_TIMEOUT_MS)
        if state["format"] == "hls":
            visitor.page.wait_for_function(
                "() => document.getElementById('player-video').duration > 0",
                timeout=PAGE_TIMEOUT_MS,
            )
            durations[video_id] = float(player(visitor.page)["duration"])
    if not durations:
        pytest.skip("no demo video is granted as HLS yet (no HLS renditions or grants)")
    return max(durations, key=lambda video_id: durations[video_id])


def ladder(page: Page) -> list[dict[str, Any]]:
    return [item for item in page.evaluate(LADDER_JS) if item["level"] >= 0]


def choose_quality(page: Page, level: int) -> None:
    """Open the quality menu with the keyboard and choose ``level`` (-1: Auto)."""
    page.locator("#player-quality").focus()
    page.keyboard.press("Enter")
    menu = page.locator("#player-quality-menu")
    assert menu.is_visible()
    target = menu.locator(f"[data-level='{level}']")
    for _ in range(12):
        if page.evaluate("(el) => document.activeElement === el", target.element_handle()):
            break
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert menu.is_hidden()


def emulate_network(cdp: CDPSession, bits_per_second: float) -> None:
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 20,
            "downloadThroughput": bits_per_second / 8,
            "uploadThroughput": bits_per_second / 8,
        },
    )


def longest_stall_ms(page: Page) -> float:
    return float(page.evaluate("() => Math.max(0, window.__openStallMs(), ...window.__stalls)"))


# --------------------------------------------------------------------------- tests


def test_the_quality_menu_offers_auto_and_every_rung_and_shows_the_one_playing(
    visit: VisitorFactory, dev_stack: RunningStack
) -> None:
    alice = visit(dev_stack)
    sign_in(alice, "alice")
    workers: list[str] = []
    alice.page.on("request", lambda r: workers.append(r.url) if "worker" in r.url else None)
    state = open_hls_video(alice, "premium-aurora")
    page = alice.page
    assert state["levels"] >= 2, f"an HLS ladder has several rungs {state}"
    start_playing(page)
    page.wait_for_function(
        "() => Number(document.getElementById('player').dataset.level) >= 0",
        timeout=PLAY_TIMEOUT_MS,
    )

    items = page.evaluate(LADDER_JS)
    assert items[0]["level"] == -1 and items[0]["checked"], "Auto first, and chosen"
    rungs = items[1:]
    assert sorted(r["level"] for r in rungs) == list(range(state["levels"]))
    assert [r["height"] for r in rungs] == sorted((r["height"] for r in rungs), reverse=True)
    for rung in rungs:
        assert re.fullmatch(r"\d+p · [\d.]+ (kb/s|Mb/s)", rung["text"]), rung
        assert rung["bitrate"] > 0, rung

    # In Auto the button and the Auto item name the rung on screen now.
    shown = page.evaluate(SHOWN_RUNG_JS)
    assert shown is not None, player(page)
    assert shown["label"] == f"Auto · {shown['height']}p", shown
    assert shown["auto"] == f"Auto ({shown['height']}p)", shown
    assert shown["playing"] == "true", shown
    # hls.js transmuxes in its worker, loaded from /static (worker-src 'self'), not from a blob:.
    assert any(url.endswith("/static/vendor/hls.worker.js") for url in workers), workers
    alice.problems.assert_clean()


def test_a_manual_rung_sticks_across_cookie_renewals_until_auto_is_chosen(
    visit: VisitorFactory, short_ttl_stack: RunningStack
) -> None:
    alice = visit(short_ttl_stack)
    sign_in(alice, "alice")
    open_hls_video(alice, "premium-mandelbrot")
    page = alice.page
    start_playing(page)
    rungs = ladder(page)
    lowest = min(rungs, key=lambda r: r["bitrate"])

    choose_quality(page, lowest["level"])
    assert player(page)["quality"] == str(lowest["level"])
    page.wait_for_function(
        """(level) => {
          const root = document.getElementById('player');
          return Number(root.dataset.level) === level
            && Number(root.dataset.loadingLevel) === level;
        }""",
        arg=lowest["level"],
        timeout=PLAY_TIMEOUT_MS,
    )
    assert page.locator("#player-quality-value").inner_text() == f"{lowest['height']}p"

    # On a fast loopback Auto would climb; the choice holds through two cookie renewals.
    renewals = player(page)["renewals"]
    seen: set[int] = set()
    while True:
        now = player(page)
        seen.add(now["loadingLevel"])
        seen.add(now["level"])
        if now["renewals"] >= renewals + 2 or now["state"] in ("ended", "error", "stopped"):
            break
        page.wait_for_timeout(250)
    assert now["renewals"] >= renewals + 2, f"the video ended before two renewals: {now}"
    assert seen == {lowest["level"]}, f"the player left the chosen rung: {seen}"
    assert now["quality"] == str(lowest["level"]) and now["recoveries"] == 0, now

    choose_quality(page, -1)
    assert player(page)["quality"] == "auto"
    assert page.locator("#player-quality-menu [data-level='-1']").get_attribute("aria-checked") == (
        "true"
    )
    alice.problems.assert_clean()


def test_auto_drops_to_a_low_rung_on_a_throttled_line_without_stalling_and_climbs_back(
    visit: VisitorFactory, dev_stack: RunningStack
) -> None:
    alice = visit(dev_stack)
    sign_in(alice, "alice")
    video_id = longest_hls_video(alice)
    state = open_hls_video(alice, video_id)
    page = alice.page
    assert state["duration"] >= MIN_ABR_SECONDS, (
        f"the longest HLS demo ({video_id}) lasts {state['duration']:.0f} s: the ABR scenario "
        f"needs one of at least {MIN_ABR_SECONDS} s to drop and climb back before it ends"
    )
    rungs = ladder(page)
    top = max(rungs, key=lambda r: r["bitrate"])
    low = {r["level"] for r in rungs if r["bitrate"] <= THROTTLE_BPS}
    assert low, f"the ladder has no rung at or under {THROTTLE_BPS} b/s: {rungs}"
    assert top["level"] not in low, f"every rung fits the throttle: nothing to drop from {rungs}"
    # "Broadband": enough for the top rung with room (loopback's unthrottled gigabits would
    # teach the bandwidth estimator a number no real line has).
    broadband = max(2.5 * top["bitrate"], 2_000_000)

    cdp = alice.context.new_cdp_session(page)
    cdp.send("Network.enable")
    emulate_network(cdp, broadband)
    start_playing(page)
    page.evaluate(STALL_WATCH_JS)
    page.wait_for_function(
        """(top) => {
          const root = document.getElementById('player');
          return Number(root.dataset.level) === top && Number(root.dataset.loadingLevel) === top
            && document.getElementById('player-video').currentTime > 2;
        }""",
        arg=top["level"],
        timeout=PLAY_TIMEOUT_MS,
    )

    emulate_network(cdp, THROTTLE_BPS)
    page.wait_for_function(
        "(low) => low.includes(Number(document.getElementById('player').dataset.loadingLevel))",
        arg=sorted(low),
        timeout=DROP_WITHIN_MS,
    )
    dropped = player(page)
    assert dropped["quality"] == "auto" and dropped["state"] == "playing", dropped
    assert longest_stall_ms(page) <= MAX_STALL_MS, page.evaluate("() => window.__stalls")

    emulate_network(cdp, broadband)
    page.wait_for_function(
        """(low) => {
          const root = document.getElementById('player');
          return !low.includes(Number(root.dataset.loadingLevel)) || root.dataset.state === 'ended';
        }""",
        arg=sorted(low),
        timeout=CLIMB_WITHIN_MS,
    )
    climbed = player(page)
    assert climbed["loadingLevel"] not in low, f"the video ended before Auto climbed: {climbed}"
    assert longest_stall_ms(page) <= MAX_STALL_MS, page.evaluate("() => window.__stalls")
    assert not {"error", "stopped"} & set(climbed["history"]), climbed["history"]
    alice.problems.assert_clean()


def test_a_premium_hls_video_plays_to_the_end_on_cookies_shorter_than_the_video(
    visit: VisitorFactory, short_ttl_stack: RunningStack
) -> None:
    alice = visit(short_ttl_stack)
    sign_in(alice, "alice")
    responses: list[Response] = []
    alice.page.on("response", lambda r: responses.append(r) if "/hls/" in r.url else None)
    open_hls_video(alice, "premium-aurora")
    page = alice.page
    start_playing(page)
    lifetime = page.evaluate(
        "() => (Date.parse(document.getElementById('player').dataset.expiresAt)"
        " - Date.now()) / 1000"
    )

    positions: list[float] = []
    deadline = time.monotonic() + PLAY_TIMEOUT_MS / 1000
    state = player(page)
    while state["state"] not in ("ended", "error", "stopped") and time.monotonic() < deadline:
        positions.append(state["position"])
        page.wait_for_timeout(400)
        state = player(page)

    assert lifetime < state["duration"], f"cookies for {lifetime:.0f} s, video {state['duration']}"
    assert state["state"] == "ended", state
    assert state["position"] >= state["duration"] - 0.5, state
    assert state["renewals"] >= 2, state
    assert state["recoveries"] == 0, f"the cookies expired under the player: {state}"
    assert not {"error", "stopped"} & set(state["history"]), state["history"]
    backwards = [(a, b) for a, b in pairwise(positions) if b < a - 0.5]
    assert not backwards, f"the position jumped back: {backwards}"
    media = [(r.url, r.status, r.request.all_headers().get("cookie", "")) for r in responses]
    assert media, "no playlist or segment request was seen"
    refused = [(url, status) for url, status, _ in media if status >= 400]
    assert not refused, refused
    assert all("CloudFront-Signature=" in cookie for _, _, cookie in media), "cookies, every time"
    assert not [url for url, _, _ in media if "Signature=" in url], "no signed query on HLS URLs"
    alice.problems.assert_clean()


@pytest.fixture
def aurora_captions(dev_stack: RunningStack) -> Iterator[None]:
    """English captions on premium-aurora, as carol adds them on its admin page; removed after."""
    from tests.e2e.test_upload import caption_store, demo_captions

    store, master = caption_store(dev_stack, "premium-aurora")
    store.add("premium-aurora", master, Track("en", "English"), demo_captions(120))
    yield
    store.remove("premium-aurora", master, "en")


def test_hls_captions_toggle_with_c_when_the_video_has_subtitles(
    visit: VisitorFactory, dev_stack: RunningStack, aurora_captions: None
) -> None:
    alice = visit(dev_stack)
    sign_in(alice, "alice")
    open_hls_video(alice, "premium-aurora")
    page = alice.page
    start_playing(page)
    page.wait_for_function(
        "() => document.getElementById('player').dataset.levels !== '0'", timeout=PAGE_TIMEOUT_MS
    )
    page.wait_for_function(
        "() => document.getElementById('player').dataset.captions !== 'none'",
        timeout=PAGE_TIMEOUT_MS,
    )
    assert player(page)["captions"] == "off", "captions are offered, not forced"
    page.keyboard.press("c")
    assert player(page)["captions"] == "on"
    page.wait_for_function(
        "() => document.getElementById('player-captions-text').textContent.trim() !== ''",
        timeout=PLAY_TIMEOUT_MS,
    )
    assert "Caption" in page.inner_text("#player-captions-text")
    page.keyboard.press("c")
    assert player(page)["captions"] == "off"
    assert page.locator("#player-captions-text").is_hidden()
    alice.problems.assert_clean()


def test_without_mse_the_browser_plays_the_hls_itself(
    visit: VisitorFactory, dev_stack: RunningStack
) -> None:
    alice = visit(dev_stack)
    alice.context.add_init_script(
        """(() => {
          for (const name of ['MediaSource', 'ManagedMediaSource', 'WebKitMediaSource']) {
            Object.defineProperty(window, name, { value: undefined, configurable: true });
          }
        })();"""
    )
    sign_in(alice, "alice")
    if not alice.page.evaluate(
        "() => document.createElement('video').canPlayType('application/vnd.apple.mpegurl') !== ''"
    ):
        pytest.skip("this Chromium has no native HLS: the iOS Safari path cannot run here")
    alice.goto("/watch/premium-aurora")
    state = wait_for_state(alice.page, "ready", "error", "stopped", timeout_ms=PAGE_TIMEOUT_MS)
    if state["format"] != "hls":
        pytest.skip("premium-aurora is not granted as HLS yet")
    assert state["engine"] == "native", state
    start_playing(alice.page)
    assert player(alice.page)["levels"] == 0, "the browser picks rungs itself: no menu"
    assert alice.page.locator("#player-quality").is_hidden()
    alice.problems.assert_clean()
