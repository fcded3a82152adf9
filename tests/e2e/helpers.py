"""What the browser tests share: visitors, the real sign-in form, the player's state, screenshots.

A :class:`Visitor` is one Chromium browser context (its own cookies) with one
page, opened on a running ``vidgate dev`` stack at its ``site_url`` (the
edge: pages and media on one host, as behind CloudFront). Every page of the context
reports console errors, uncaught page errors and Content-Security-Policy
violations (``securitypolicyviolation`` events, seen by a script Playwright
injects before any page script) to the visitor's :class:`PageProblems`, and
every watch page records the sequence of ``#player[data-state]`` values, so a
test can say "it never went through ``error``" without polling fast enough to
catch it.

Playwright is imported for type checking only, so this module imports where
Playwright is missing (the fixtures in ``conftest.py`` then skip or fail).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.config import Need
from app.ops.admin_cli import Operator, admin_grant, admin_revoke
from tests.stackproc import RunningStack

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, WebError

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"

CHROMIUM_ENV = "VIDGATE_CHROMIUM"
CHROMIUM = Path(os.environ.get(CHROMIUM_ENV) or "/usr/bin/chromium")
"""Debian's Chromium; ``VIDGATE_CHROMIUM`` points elsewhere (never a Playwright download)."""
LAUNCH_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
)

PAGE_TIMEOUT_MS = 15_000  # one page load, one click, one selector
PLAY_TIMEOUT_MS = 40_000  # a video starting, reaching a position or its end

PLAYER_STATE_JS = """() => {
  const root = document.getElementById('player');
  const video = document.getElementById('player-video');
  if (!root || !video) { return null; }
  const status = document.getElementById('player-status');
  return {
    state: root.dataset.state,
    stopReason: root.dataset.stopReason,
    grants: Number(root.dataset.grants),
    renewals: Number(root.dataset.renewals),
    recoveries: Number(root.dataset.recoveries),
    swapping: root.dataset.swapping === 'true',
    position: Number(root.dataset.position),
    currentTime: video.currentTime,
    duration: video.duration,
    readyState: video.readyState,
    paused: video.paused,
    ended: video.ended,
    hasSource: video.hasAttribute('src'),
    format: root.dataset.format,
    engine: root.dataset.engine,
    levels: Number(root.dataset.levels),
    level: Number(root.dataset.level),
    loadingLevel: Number(root.dataset.loadingLevel),
    quality: root.dataset.quality,
    rate: Number(root.dataset.rate),
    playbackRate: video.playbackRate,
    captions: root.dataset.captions,
    buffering: root.dataset.buffering === 'true',
    muted: video.muted,
    status: status ? status.textContent.trim() : '',
    statusKind: status ? status.dataset.kind : '',
    history: window.__vidgatePlayerStates || [],
  };
}"""

# Injected into every page before its own scripts (Playwright init scripts bypass the CSP).
WATCH_SCRIPT = """(() => {
  const report = (detail) => {
    try { window.__vidgateCsp(detail); } catch (ignored) { /* page closing */ }
  };
  document.addEventListener('securitypolicyviolation', (event) => {
    report(JSON.stringify({
      directive: event.violatedDirective,
      blocked: event.blockedURI,
      source: event.sourceFile,
      line: event.lineNumber,
    }));
  }, true);
  document.addEventListener('DOMContentLoaded', () => {
    const root = document.getElementById('player');
    if (!root) { return; }
    const states = [root.dataset.state];
    window.__vidgatePlayerStates = states;
    new MutationObserver(() => {
      const now = root.dataset.state;
      if (states[states.length - 1] !== now) { states.push(now); }
    }).observe(root, { attributes: true, attributeFilter: ['data-state'] });
  });
})();"""


@dataclass
class PageProblems:
    """Everything a context's pages complained about, in order."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[dict[str, Any]] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.page.url if message.page else "?"
            self.console_errors.append(f"{where}: {message.text}")

    def on_web_error(self, error: WebError) -> None:
        where = error.page.url if error.page else "?"
        self.page_errors.append(f"{where}: {error.error}")

    def on_csp(self, _source: Any, detail: str) -> None:
        self.csp_violations.append(json.loads(detail))

    def clear(self) -> None:
        self.console_errors.clear()
        self.page_errors.clear()
        self.csp_violations.clear()

    def assert_clean(self) -> None:
        assert not self.csp_violations, f"CSP violations: {self.csp_violations}"
        assert not self.page_errors, f"uncaught page errors: {self.page_errors}"
        assert not self.console_errors, f"console errors: {self.console_errors}"


@dataclass
class Visitor:
    """One browser context (its own cookies) with one page, on one stack."""

    stack: RunningStack
    context: BrowserContext
    page: Page
    problems: PageProblems

    def url(self, path: str) -> str:
        return self.stack.site_url + path

    def goto(self, path: str) -> None:
        response = self.page.goto(self.url(path), wait_until="load")
        assert response is not None, f"no response for {path}"

    @property
    def path(self) -> str:
        """The current page's path (and query), without the origin."""
        return self.page.url.removeprefix(self.stack.site_url)


def open_visitor(browser: Browser, stack: RunningStack) -> Visitor:
    """A fresh context on ``stack``, watched for console errors and CSP violations."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    context.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
    problems = PageProblems()
    context.on("console", problems.on_console)
    context.on("weberror", problems.on_web_error)
    context.expose_binding("__vidgateCsp", problems.on_csp)
    context.add_init_script(WATCH_SCRIPT)
    return Visitor(stack, context, context.new_page(), problems)


# --------------------------------------------------------------------------- signing in


def password_of(stack: RunningStack, username: str) -> str:
    return str(stack.user(username)["password"])


SIGN_IN_ATTEMPTS = 3
MAX_SIGN_IN_WAIT_S = 30


def sign_in(visitor: Visitor, username: str, next_path: str = "/") -> None:
    """Sign in through the web app's own form and land on ``next_path``.

    A 429 from the edge's "auth" limit (20 POSTs in 300 s per address, app/ratelimits.py)
    is waited out as its Retry-After says: the shared stack's tests sign in more often.
    """
    page = visitor.page
    for _attempt in range(SIGN_IN_ATTEMPTS):
        visitor.goto(f"/auth/sign-in?next={next_path}")
        page.fill("#identifier", username)
        page.fill("#password", password_of(visitor.stack, username))
        with page.expect_navigation(wait_until="load") as navigation:
            page.click("main form[action$='/auth/sign-in'] button[type=submit]")
        answer = navigation.value
        wait_s = int(answer.headers.get("retry-after", "0")) if answer is not None else 0
        if answer is None or answer.status != 429 or wait_s > MAX_SIGN_IN_WAIT_S:
            break  # signed in, refused for a reason, or locked out for long: report it below
        errors = visitor.problems.console_errors
        errors[:] = [e for e in errors if "status of 429" not in e]  # the refusal, as intended
        page.wait_for_timeout(1000 * wait_s + 500)
    if visitor.path.startswith("/auth/sign-in"):
        alert = page.locator("[role=alert]")
        reason = alert.first.inner_text() if alert.count() else "no message"
        raise AssertionError(f"{username} could not sign in: {reason}")
    assert visitor.path == next_path, f"signed in, but landed on {visitor.path}"
    header = page.locator("header.site-header nav")
    assert f"Account ({username})" in header.inner_text()


def session_cookies(visitor: Visitor) -> list[Any]:
    """The context's ``vidgate_session`` cookie(s), as Playwright lists them."""
    return [c for c in visitor.context.cookies() if c.get("name") == "vidgate_session"]


# --------------------------------------------------------------------------- the player


def player(page: Page) -> dict[str, Any]:
    """A snapshot of ``#player`` and its ``<video>``."""
    found = page.evaluate(PLAYER_STATE_JS)
    assert found is not None, f"{page.url} has no #player"
    return dict(found)


def wait_for_state(page: Page, *states: str, timeout_ms: int = PLAY_TIMEOUT_MS) -> dict[str, Any]:
    """Wait until ``#player[data-state]`` is one of ``states``; return the snapshot."""
    page.wait_for_function(
        "(states) => states.includes(document.getElementById('player').dataset.state)",
        arg=list(states),
        timeout=timeout_ms,
    )
    return player(page)


def start_playing(page: Page) -> dict[str, Any]:
    """Wait for the first grant, press Play, wait until the video is really playing."""
    wait_for_state(page, "ready", timeout_ms=PAGE_TIMEOUT_MS)
    button = page.locator("#player-play")
    assert button.is_enabled()
    button.click()
    page.wait_for_function(
        """() => {
          const v = document.getElementById('player-video');
          return document.getElementById('player').dataset.state === 'playing'
            && !v.paused && v.currentTime > 0 && v.readyState >= 3;
        }""",
        timeout=PLAY_TIMEOUT_MS,
    )
    return player(page)


def wait_for_progress(page: Page, beyond: float, timeout_ms: int = PLAY_TIMEOUT_MS) -> None:
    """Wait until the video is playing past ``beyond`` seconds with data to play on."""
    page.wait_for_function(
        """(beyond) => {
          const root = document.getElementById('player');
          const v = document.getElementById('player-video');
          return root.dataset.swapping === 'false' && !v.paused
            && v.currentTime > beyond && v.readyState >= 3;
        }""",
        arg=beyond,
        timeout=timeout_ms,
    )


def assert_really_plays(page: Page) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two samples more than a second apart: ``currentTime`` advanced, ``readyState >= 3``."""
    first = player(page)
    page.wait_for_timeout(1_200)
    wait_for_progress(page, first["currentTime"] + 0.5)
    second = player(page)
    assert second["currentTime"] > first["currentTime"], (first, second)
    assert second["readyState"] >= 3, second
    assert second["state"] == "playing", second
    return first, second


# --------------------------------------------------------------------------- artifacts and data


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG under ``test-artifacts/screenshots/``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    return path


def operator(stack: RunningStack) -> Operator:
    """The operator CLI's view of ``stack`` (its ``dev.env``), printing nothing."""
    return Operator.load(
        {Need.TABLES},
        env_file=stack.state_dir / "dev.env",
        environ={},
        say=lambda _line: None,
    )


def set_premium_directly(stack: RunningStack, username: str, premium: bool) -> None:
    """Test set-up and clean-up, outside the browser: what ``vidgate admin`` would do."""
    op = operator(stack)
    if premium:
        admin_grant(op, username, None, "e2e-setup")
    else:
        admin_revoke(op, username, "e2e-setup")


def is_premium(stack: RunningStack, username: str) -> bool:
    return operator(stack).services.users.find(username).premium
