"""Browser fixtures: Debian's Chromium driven by Playwright, and the stacks it visits.

Chromium launches once per session from ``/usr/bin/chromium`` (or
``$VIDGATE_CHROMIUM``; Playwright's own browser downloads are never used).
Without it — or without the ``playwright`` package — the e2e tests skip with
the reason on a developer machine, and fail when ``VIDGATE_REQUIRE_BROWSER=1``
(``.ci/run`` sets it), so CI cannot pass without having driven a browser. The
check runs before any stack starts.

Visitors open a stack's ``site_url``: the local edge, the one front door,
which serves the media and proxies pages and the API to the web app, so pages
and videos share one origin (as behind CloudFront).

Two stacks: the session's shared ``dev_stack`` (default options) for the
scenarios that change nothing, and ``short_ttl_stack``, this package's own
``vidgate dev --url-ttl 6``, for renewals, and for the admin scenarios that
change memberships (so the shared stack's users stay as other modules expect).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from tests.conftest import UNLIMITED_STREAMS
from tests.e2e.helpers import CHROMIUM, LAUNCH_ARGS, Visitor, open_visitor
from tests.stackproc import RunningStack, start_stack

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REQUIRE_ENV = "VIDGATE_REQUIRE_BROWSER"
SHORT_URL_TTL = "6"


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"a browser is required ({REQUIRE_ENV}=1): {reason}", pytrace=False)
    pytest.skip(
        f"no browser for the e2e tests: {reason} "
        "(install Debian's chromium: apt-get install chromium)"
    )


@pytest.fixture(scope="session", autouse=True)
def browser() -> Iterator[Browser]:
    """Headless Chromium for the whole session (autouse: no stack starts before this check)."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"the playwright package cannot be imported ({exc})")
    manager = sync_playwright().start()
    try:
        launched = manager.chromium.launch(
            executable_path=str(CHROMIUM), args=list(LAUNCH_ARGS), headless=True
        )
    except Exception as exc:
        manager.stop()
        _unavailable(f"{CHROMIUM} did not start: {exc}")
        raise
    yield launched
    launched.close()
    manager.stop()


@pytest.fixture(scope="session")
def short_ttl_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """``vidgate dev --url-ttl 6``: signed URLs live 6 s, so the player renews every few."""
    stack = start_stack(
        tmp_path_factory.mktemp("e2e-short-ttl"), "--url-ttl", SHORT_URL_TTL, *UNLIMITED_STREAMS
    )
    yield stack
    stack.stop()


VisitorFactory = Callable[[RunningStack], Visitor]


@pytest.fixture
def visit(browser: Browser) -> Iterator[VisitorFactory]:
    """Open fresh browser contexts on a stack; all are closed after the test."""
    opened: list[Visitor] = []

    def open_one(stack: RunningStack) -> Visitor:
        visitor = open_visitor(browser, stack)
        opened.append(visitor)
        return visitor

    yield open_one
    for visitor in opened:
        visitor.context.close()
