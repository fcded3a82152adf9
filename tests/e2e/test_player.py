"""The player's own controls in a real browser, on whatever format the demo grants are today.

One control bar laid over the video (no native controls, also in fullscreen),
the keyboard shortcuts, the speed menu (kept across a signed-URL swap), the
focus ring's contrast on every stop of the page, how many Tab presses the
player costs, no download offer, the MP4 fallback where a browser plays no
HLS, and the next video offered at the end. Every test also checks that its
pages logged no console error, threw nothing and broke no CSP rule.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

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

pytestmark = pytest.mark.e2e

RATES = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
MAX_TAB_STOPS_IN_PLAYER = 3  # the video surface, the seek bar, the toolbar (one stop, arrow keys)

# The focused element's ring and what lies under it (backgrounds composited up the tree).
FOCUS_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) { return null; }
  const cs = getComputedStyle(el);
  const layers = [];
  for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
    const bg = getComputedStyle(node).backgroundColor;
    layers.push(bg);
    const alpha = bg.startsWith('rgba') ? Number(bg.split(',')[3].replace(')', '')) : 1;
    if (alpha >= 1) { break; }
  }
  return {
    name: el.id || el.textContent.trim().slice(0, 30) || el.tagName,
    inPlayer: !!el.closest('#player'),
    outlineStyle: cs.outlineStyle,
    outlineWidth: parseFloat(cs.outlineWidth),
    outlineColor: cs.outlineColor,
    boxShadow: cs.boxShadow,
    layers: layers,
  };
}"""

PAPER = (251, 251, 253)  # the page's background (vidgate.css --paper)


def _rgba(css: str) -> tuple[float, float, float, float]:
    match = re.search(r"rgba?\(([^)]+)\)", css)
    assert match, f"not a colour: {css!r}"
    parts = [float(p) for p in match.group(1).replace("/", ",").split(",")]
    return parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else 1.0


def _luminance(rgb: tuple[float, float, float]) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """WCAG 2 contrast ratio of two opaque colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _composite(layers: list[str], base: tuple[float, float, float]) -> tuple[float, float, float]:
    colour = base
    for css in reversed(layers):  # from the outermost ancestor in towards the element
        r, g, b, a = _rgba(css)
        colour = (
            r * a + colour[0] * (1 - a),
            g * a + colour[1] * (1 - a),
            b * a + colour[2] * (1 - a),
        )
    return colour


ANY_FRAME = [(v, v, v) for v in range(0, 256, 15)] + [
    (r, g, b) for r in (0, 128, 255) for g in (0, 128, 255) for b in (0, 128, 255)
]
"""Colours a video frame might show under a control: greys and the corners of the RGB cube."""


def assert_ring_visible(ring: dict[str, Any]) -> None:
    """A solid ring >= 2 px; >= 3:1 against what is under it (for the player: any video frame)."""
    name = ring["name"]
    assert ring["outlineStyle"] not in ("none", "hidden"), f"{name}: no focus ring {ring}"
    assert ring["outlineWidth"] >= 2, f"{name}: focus ring thinner than 2 px {ring}"
    outline = _rgba(ring["outlineColor"])[:3]
    if not ring["inPlayer"]:
        under = _composite(ring["layers"], PAPER)
        assert contrast(outline, under) >= 3, f"{name}: ring {outline} on {under} {ring}"
        return
    # Over video the ring has two bands (outline + box-shadow): one of them must stand out
    # against whatever frame is behind it.
    halo_css = re.search(r"rgba?\([^)]+\)", ring["boxShadow"] or "")
    assert halo_css, f"{name}: a ring over video needs a second band (box-shadow) {ring}"
    halo = _rgba(halo_css.group(0))[:3]
    for frame in ANY_FRAME:
        best = max(contrast(outline, frame), contrast(halo, frame))
        assert best >= 3, f"{name}: ring invisible on a {frame} frame {ring}"


def open_watch_page(visitor: Visitor, video_id: str) -> None:
    """Sign in as alice straight onto a watch page and wait for its first grant."""
    sign_in(visitor, "alice", f"/watch/{video_id}")
    wait_for_state(visitor.page, "ready", timeout_ms=PAGE_TIMEOUT_MS)
    visitor.page.wait_for_function(
        "() => document.getElementById('player-video').duration > 0", timeout=PAGE_TIMEOUT_MS
    )


def current_time(visitor: Visitor) -> float:
    return float(visitor.page.evaluate("() => document.getElementById('player-video').currentTime"))


def wait_for_time_near(visitor: Visitor, target: float) -> None:
    visitor.page.wait_for_function(
        """(target) => {
          const v = document.getElementById('player-video');
          return !v.seeking && Math.abs(v.currentTime - target) < 0.6;
        }""",
        arg=target,
        timeout=PAGE_TIMEOUT_MS,
    )


# --------------------------------------------------------------------------- tests


def test_one_control_bar_over_the_video_and_none_from_the_browser(
    visit: VisitorFactory, dev_stack: RunningStack
) -> None:
    alice = visit(dev_stack)
    open_watch_page(alice, "premium-aurora")
    page = alice.page
    start_playing(page)

    video = page.locator("#player-video")
    assert video.get_attribute("controls") is None
    assert page.evaluate("() => document.getElementById('player-video').controls") is False
    assert page.locator("[role=toolbar]").count() == 1
    assert page.locator("#player [role=toolbar]").count() == 1
    assert page.locator(".player-bar").count() == 0, "the old separate Play/Pause bar is gone"
    assert page.get_by_role("button", name="Pause").count() == 1
    # The bar lies over the video, not below it.
    video_box = video.bounding_box()
    bar_box = page.locator("#player-controls").bounding_box()
    assert video_box and bar_box
    assert bar_box["y"] + bar_box["height"] <= video_box["y"] + video_box["height"] + 1
    assert bar_box["y"] >= video_box["y"]

    # Fullscreen takes the whole player: the controls and the status line come along.
    page.keyboard.press("f")
    page.wait_for_function(
        "() => document.fullscreenElement === document.getElementById('player')",
        timeout=PAGE_TIMEOUT_MS,
    )
    assert page.evaluate(
        """() => ['player-controls', 'player-status'].every(
             (id) => document.fullscreenElement.contains(document.getElementById(id)))"""
    )
    assert page.evaluate("() => document.getElementById('player-video').controls") is False
    page.wait_for_function(  # the button follows the fullscreenchange event
        "() => document.getElementById('player-fullscreen').textContent.trim()"
        " === 'Exit full screen'",
        timeout=PAGE_TIMEOUT_MS,
    )
    page.keyboard.press("f")
    page.wait_for_function("() => document.fullscreenElement === null", timeout=PAGE_TIMEOUT_MS)
    alice.problems.assert_clean()


def test_paid_video_offers_no_download(visit: VisitorFactory, dev_stack: RunningStack) -> None:
    alice = visit(dev_stack)
    open_watch_page(alice, "premium-aurora")
    page = alice.page

    assert "nodownload" in (page.locator("#player-video").get_attribute("controlslist") or "")
    # The context menu ("Save video as…") is refused over the whole player.
    page.evaluate(
        """() => {
          window.__menus = [];
          window.addEventListener('contextmenu', (e) => window.__menus.push(e.defaultPrevented));
        }"""
    )
    page.locator("#player-surface").click(button="right")
    page.locator("#player-controls").click(button="right", position={"x": 300, "y": 10})
    assert page.evaluate("() => window.__menus") == [True, True]
    # Nothing on the page links to the media itself.
    hrefs = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
    assert not [h for h in hrefs if "/videos/premium-aurora/" in h and "Signature" in h]
    alice.problems.assert_clean()


def test_keyboard_shortcuts_play_seek_mute_and_fullscreen(
    visit: VisitorFactory, dev_stack: RunningStack
) -> None:
    alice = visit(dev_stack)
    alice.page.set_viewport_size({"width": 1280, "height": 600})  # the page scrolls
    open_watch_page(alice, "premium-mandelbrot")
    page = alice.page
    assert page.evaluate("() => document.scrollingElement.scrollHeight > innerHeight + 50")
    page.evaluate("() => { document.activeElement.blur(); window.scrollTo(0, 0); }")

    page.keyboard.press(" ")
    wait_for_state(page, "playing")
    assert page.evaluate("() => window.scrollY") == 0, "Space played the video, not scrolled"
    page.keyboard.press("k")
    paused = wait_for_state(page, "paused")
    assert paused["paused"]
    at = current_time(alice)

    page.keyboard.press("l")
    wait_for_time_near(alice, at + 10)
    page.keyboard.press("j")
    wait_for_time_near(alice, at)
    page.keyboard.press("ArrowRight")
    wait_for_time_near(alice, at + 5)
    page.keyboard.press("ArrowLeft")
    wait_for_time_near(alice, at)
    assert player(page)["state"] == "paused", "seeking by keyboard keeps the video paused"
    assert page.evaluate("() => window.scrollY") == 0

    page.keyboard.press("m")
    assert player(page)["muted"] is True
    assert page.locator("#player-mute").get_attribute("aria-pressed") == "true"
    page.keyboard.press("m")
    assert player(page)["muted"] is False

    page.keyboard.press("f")
    page.wait_for_function(
        "() => document.fullscreenElement === document.getElementById('player')",
        timeout=PAGE_TIMEOUT_MS,
    )
    page.keyboard.press("f")
    page.wait_for_function("() => document.fullscreenElement === null", timeout=PAGE_TIMEOUT_MS)

    # c toggles captions only where the video has some; these demos have none.
    page.keyboard.press("c")
    state = player(page)
    assert state["captions"] == "none" and page.locator("#player-captions").is_hidden()

    # The shortcuts work from the video surface too, and k plays from anywhere on the page.
    page.locator("#player-surface").focus()
    page.keyboard.press("k")
    wait_for_state(page, "playing")
    page.keyboard.press(" ")
    wait_for_state(page, "paused")
    alice.problems.assert_clean()


def test_the_speed_menu_sets_half_to_double_speed_and_keeps_it_across_url_renewals(
    visit: VisitorFactory, short_ttl_stack: RunningStack
) -> None:
    alice = visit(short_ttl_stack)
    open_watch_page(alice, "premium-aurora")
    page = alice.page
    start_playing(page)

    speed = page.locator("#player-speed")
    menu = page.locator("#player-speed-menu")
    speed.click()
    assert menu.is_visible() and speed.get_attribute("aria-expanded") == "true"
    items = menu.get_by_role("menuitemradio")
    offered = [float(items.nth(i).get_attribute("data-rate") or 0) for i in range(items.count())]
    assert offered == RATES
    assert page.evaluate("() => document.activeElement.dataset.rate") == "1", "focus on the checked"
    menu.locator("[data-rate='2']").click()
    assert menu.is_hidden() and speed.get_attribute("aria-expanded") == "false"
    state = player(page)
    assert state["rate"] == 2 and state["playbackRate"] == 2
    assert "2\u00d7" in speed.inner_text()  # the multiplication sign

    # By keyboard: ArrowDown opens the menu, Home goes to the slowest, Enter chooses it.
    speed.focus()
    page.keyboard.press("ArrowDown")
    assert menu.is_visible()
    page.keyboard.press("Home")
    page.keyboard.press("Enter")
    assert menu.is_hidden()
    assert page.evaluate("() => document.activeElement.id") == "player-speed"
    assert player(page)["playbackRate"] == 0.5
    assert menu.locator("[aria-checked=true]").get_attribute("data-rate") == "0.5"

    # A renewal may put a new source on the <video> (MP4): the speed stays.
    renewals = player(page)["renewals"]
    page.wait_for_function(
        """(before) => {
          const root = document.getElementById('player');
          return Number(root.dataset.renewals) > before && root.dataset.swapping === 'false'
            && root.dataset.state === 'playing';
        }""",
        arg=renewals,
        timeout=PLAY_TIMEOUT_MS,
    )
    after = player(page)
    assert after["playbackRate"] == 0.5 and after["rate"] == 0.5, after
    alice.problems.assert_clean()


def test_every_focus_stop_shows_a_ring_with_3_to_1_contrast(
    visit: VisitorFactory, dev_stack: RunningStack
) -> None:
    alice = visit(dev_stack)
    open_watch_page(alice, "premium-aurora")
    page = alice.page
    start_playing(page)
    page.keyboard.press("k")  # paused: the controls stay in view
    wait_for_state(page, "paused")
    page.locator("a.skip-link").focus()  # the first stop of the page

    rings: list[dict[str, Any]] = [page.evaluate(FOCUS_JS)]
    seen: set[str] = {rings[0]["name"]}
    for _ in range(40):  # the whole page, forwards
        page.keyboard.press("Tab")
        ring = page.evaluate(FOCUS_JS)
        if ring is None or ring["name"] in seen:
            break
        seen.add(ring["name"])
        rings.append(ring)
    # Inside the toolbar the arrow keys visit every control; and a menu's items.
    page.locator("#player-play").focus()
    for _ in range(12):
        page.keyboard.press("ArrowRight")
        ring = page.evaluate(FOCUS_JS)
        if ring["name"] == "player-play":
            break
        rings.append(ring)
    page.locator("#player-speed").focus()
    page.keyboard.press("ArrowDown")
    rings.append(page.evaluate(FOCUS_JS))
    page.keyboard.press("Escape")

    names = {ring["name"] for ring in rings}
    assert {"player-surface", "player-seek", "player-play", "player-volume"} <= names, names
    assert {"player-speed", "player-fullscreen", "player-mute"} <= names, names
    assert any(not ring["inPlayer"] for ring in rings), "the page's own links were checked too"
    for ring in rings:
        assert_ring_visible(ring)
    alice.problems.assert_clean()


def test_the_player_takes_three_tab_stops_and_the_arrows_move_inside_its_toolbar(
    visit: VisitorFactory, dev_stack: RunningStack
) -> None:
    alice = visit(dev_stack)
    open_watch_page(alice, "premium-aurora")
    page = alice.page
    inside = "() => !!document.activeElement.closest('#player')"

    # From the last header control to the first stop after the player.
    page.locator("header.site-header form button[type=submit]").focus()
    stops: list[str] = []
    presses = 0
    while presses < 20:
        page.keyboard.press("Tab")
        presses += 1
        if page.evaluate(inside):
            stops.append(page.evaluate("() => document.activeElement.id"))
        elif stops:
            break
    assert stops == ["player-surface", "player-seek", "player-play"], stops
    assert presses == len(stops) + 1 <= MAX_TAB_STOPS_IN_PLAYER + 1, (presses, stops)
    after_player = page.evaluate("() => document.activeElement.textContent.trim()")

    # Shift+Tab crosses it the same way back.
    back = 0
    while back < 20:
        page.keyboard.press("Shift+Tab")
        back += 1
        if not page.evaluate(inside) and back > 1:
            break
    assert back == presses, (back, presses, after_player)

    # In the toolbar the arrow keys move, and the toolbar remembers where you were.
    page.locator("#player-play").focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("() => document.activeElement.id") == "player-back"
    page.keyboard.press("End")
    assert page.evaluate("() => document.activeElement.id") == "player-fullscreen"
    page.keyboard.press("Shift+Tab")  # out to the seek bar...
    page.keyboard.press("Tab")  # ...and back in, where it was left
    assert page.evaluate("() => document.activeElement.id") == "player-fullscreen"
    tabbable = page.evaluate(
        "() => [...document.querySelectorAll('#player-toolbar .player-tool')]"
        ".filter(el => el.tabIndex === 0).map(el => el.id)"
    )
    assert tabbable == ["player-fullscreen"]
    alice.problems.assert_clean()


def test_at_the_end_the_next_catalog_video_is_offered(
    visit: VisitorFactory, dev_stack: RunningStack
) -> None:
    alice = visit(dev_stack)
    sign_in(alice, "alice", "/")
    page = alice.page
    alice.goto("/?limit=50")
    order = page.evaluate(
        "() => [...document.querySelectorAll('ul#catalog li.video-card')].map(li => "
        "({id: li.dataset.videoId, title: li.querySelector('.video-title').textContent.trim()}))"
    )
    ids = [item["id"] for item in order]
    expected = order[(ids.index("free-sampler") + 1) % len(order)]

    alice.goto("/watch/free-sampler")
    offer = page.locator("#player-next")
    assert offer.is_hidden(), "offered only at the end"
    start_playing(page)
    page.evaluate(
        "() => { const v = document.getElementById('player-video');"
        " v.currentTime = v.duration - 1; }"
    )
    ended = wait_for_state(page, "ended", "error", "stopped")
    assert ended["state"] == "ended", ended
    assert offer.is_visible()
    link = page.locator("#player-next-link")
    assert link.inner_text() == expected["title"]
    assert link.get_attribute("href") == f"/watch/{expected['id']}"
    assert page.locator("#player-status").inner_text() == "Finished. Press Play to watch again."
    with page.expect_navigation():
        link.click()
    assert alice.path == f"/watch/{expected['id']}"
    alice.problems.assert_clean()


def test_a_browser_without_mse_or_native_hls_asks_for_the_mp4_and_plays_it(
    visit: VisitorFactory, dev_stack: RunningStack
) -> None:
    alice = visit(dev_stack)
    # An old browser: no Media Source Extensions, and no HLS in the <video> element either.
    alice.context.add_init_script(
        """(() => {
          for (const name of ['MediaSource', 'ManagedMediaSource', 'WebKitMediaSource']) {
            Object.defineProperty(window, name, { value: undefined, configurable: true });
          }
          const canPlay = HTMLMediaElement.prototype.canPlayType;
          HTMLMediaElement.prototype.canPlayType = function (type) {
            return /mpegurl/i.test(type) ? '' : canPlay.call(this, type);
          };
        })();"""
    )
    bodies: list[str] = []
    alice.page.on(
        "request",
        lambda r: bodies.append(r.post_data or "") if r.url.endswith("/grant") else None,
    )
    open_watch_page(alice, "premium-aurora")
    page = alice.page
    start_playing(page)
    state = player(page)
    assert state["format"] == "mp4" and state["engine"] == "progressive", state
    assert bodies and json.loads(bodies[0]) == {"format": "mp4"}, bodies
    assert page.locator("#player-quality").is_hidden(), "one rendition: no quality menu"
    alice.problems.assert_clean()
