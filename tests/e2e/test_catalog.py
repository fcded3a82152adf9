"""The catalog and the finished admin pages in Chromium.

On this package's own stack (``short_ttl_stack``): these tests unpublish a video
and set categories, and put everything back, so the shared ``dev_stack`` stays
as other modules expect. carol is an admin on the free plan; alice is premium;
bob is free.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import VisitorFactory
from tests.e2e.helpers import (
    Visitor,
    assert_really_plays,
    operator,
    password_of,
    sign_in,
    start_playing,
)
from tests.stackproc import RunningStack

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

pytestmark = pytest.mark.e2e

PHONE: ViewportSize = {"width": 390, "height": 844}
FREE = "free-sampler"
PREMIUMS = ("premium-aurora", "premium-mandelbrot")


@pytest.fixture
def stack(short_ttl_stack: RunningStack) -> Iterator[RunningStack]:
    """The demo catalog as bootstrapped, before and after each test."""
    _restore(short_ttl_stack)
    yield short_ttl_stack
    _restore(short_ttl_stack)


def _restore(stack: RunningStack) -> None:
    catalog = operator(stack).services.catalog
    for video_id in (FREE, *PREMIUMS):
        if not catalog.get_any(video_id).published:
            catalog.publish(video_id)
        catalog.update(video_id, categories=())


def _overflow(visitor: Visitor) -> tuple[int, int]:
    """The document's scroll width and the viewport's width."""
    sizes = visitor.page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    return int(sizes[0]), int(sizes[1])


def _cards(visitor: Visitor) -> dict[str, str | None]:
    """Catalog cards on the page: video id -> data-locked."""
    cards = visitor.page.locator("#catalog li.video-card")
    return {
        str(cards.nth(i).get_attribute("data-video-id")): cards.nth(i).get_attribute("data-locked")
        for i in range(cards.count())
    }


def test_the_admin_pages_fit_a_phone_with_a_real_nav_and_stacked_cards(
    stack: RunningStack, visit: VisitorFactory
) -> None:
    carol = visit(stack)
    sign_in(carol, "carol", "/admin/users")
    alice_id = carol.page.locator("tr[data-user=alice]").get_attribute("data-user-id")
    carol.page.set_viewport_size(PHONE)
    admin_pages = (
        "/admin/users",
        f"/admin/users/{alice_id}",
        "/admin/videos",
        "/admin/videos/new",
        "/admin/analytics",
        "/admin/audit",
        f"/admin/videos/{FREE}",
    )
    for path in admin_pages:
        carol.goto(path)
        scroll, width = _overflow(carol)
        assert width == PHONE["width"]
        assert scroll <= width, f"{path} is {scroll} px wide on a {width} px screen"
        nav = carol.page.locator("#admin-nav ul")
        assert nav.evaluate("(ul) => getComputedStyle(ul).listStyleType") == "none"
        assert nav.evaluate("(ul) => getComputedStyle(ul).display") == "flex"
    carol.goto("/admin/videos")
    row = carol.page.locator(f"#videos tr[data-video={FREE}]")
    assert row.evaluate("(tr) => getComputedStyle(tr).display") == "block"  # a card
    header = carol.page.locator("#videos thead")
    assert header.evaluate("(h) => h.getBoundingClientRect().width") <= 1
    unpublish = row.locator("a[data-unpublish]")
    colour = unpublish.evaluate("(a) => getComputedStyle(a).color")
    assert colour == "rgb(179, 38, 30)"  # the destructive red, not the primary blue
    assert "vidgate videos add" not in carol.page.content()
    assert carol.page.locator("#add-video").get_attribute("href") == "/admin/videos/new"
    carol.problems.assert_clean()


def test_unpublish_asks_first_and_cancel_changes_nothing(
    stack: RunningStack, visit: VisitorFactory
) -> None:
    catalog = operator(stack).services.catalog
    carol = visit(stack)
    sign_in(carol, "carol", "/admin/videos")
    page = carol.page
    with page.expect_navigation():
        page.click(f"#videos tr[data-video={FREE}] a[data-unpublish]")
    assert page.locator("#confirm-panel h1").inner_text().startswith("Unpublish")
    assert catalog.get_any(FREE).published  # one click only asked
    with page.expect_navigation():
        page.click("#confirm-cancel")
    assert catalog.get_any(FREE).published

    carol.goto("/admin/videos")
    with page.expect_navigation():
        page.click(f"#videos tr[data-video={FREE}] a[data-unpublish]")
    with page.expect_navigation():
        page.click("#confirm-button")
    assert "is unpublished" in page.locator(".flash-success").inner_text()
    assert not catalog.get_any(FREE).published
    row = page.locator(f"#videos tr[data-video={FREE}]")
    assert row.get_attribute("data-state") == "unpublished"

    visitor = visit(stack)
    visitor.goto("/")
    assert FREE not in _cards(visitor)
    with page.expect_navigation():
        row.locator("button[data-publish]").click()
    assert catalog.get_any(FREE).published
    carol.problems.assert_clean()


def test_search_and_a_category_set_by_an_admin_narrow_the_catalog(
    stack: RunningStack, visit: VisitorFactory
) -> None:
    carol = visit(stack)
    sign_in(carol, "carol", f"/admin/videos/{FREE}")
    carol.page.check("#categories input[value=nature]")
    with carol.page.expect_navigation():
        carol.page.click("#video-form button[type=submit]")
    assert operator(stack).services.catalog.get_any(FREE).categories == ("nature",)

    visitor = visit(stack)
    visitor.goto("/")
    assert set(_cards(visitor)) >= {FREE, *PREMIUMS}
    visitor.page.fill("#q", "MANDEL")
    with visitor.page.expect_navigation():
        visitor.page.click("#catalog-search button[type=submit]")
    assert list(_cards(visitor)) == ["premium-mandelbrot"]
    visitor.page.fill("#q", "zoom mandé")  # two word prefixes, an accent
    with visitor.page.expect_navigation():
        visitor.page.click("#catalog-search button[type=submit]")
    assert list(_cards(visitor)) == ["premium-mandelbrot"]

    visitor.goto("/")
    with visitor.page.expect_navigation():
        visitor.page.click("#category-chips a[data-category=nature]")
    assert list(_cards(visitor)) == [FREE]
    assert visitor.page.locator("#category-chips a[aria-current=page]").inner_text() == "Nature"
    visitor.page.select_option("#sort", "title")
    with visitor.page.expect_navigation():
        visitor.page.click("#catalog-search button[type=submit]")
    assert list(_cards(visitor)) == [FREE]
    visitor.goto("/?sort=title")
    ids = list(_cards(visitor))
    assert ids.index("premium-aurora") < ids.index(FREE) < ids.index("premium-mandelbrot")
    visitor.problems.assert_clean()


def test_premium_titles_are_locked_for_those_who_cannot_play_them(
    stack: RunningStack, visit: VisitorFactory
) -> None:
    anonymous = visit(stack)
    anonymous.goto("/")
    bob = visit(stack)
    sign_in(bob, "bob", "/")
    alice = visit(stack)
    sign_in(alice, "alice", "/")
    for who, locked in ((anonymous, "yes"), (bob, "yes"), (alice, "no")):
        cards = _cards(who)
        assert cards[FREE] == "no"
        assert {cards[video_id] for video_id in PREMIUMS} == {locked}
    assert anonymous.page.locator(f"li[data-video-id={PREMIUMS[0]}] .badge-locked").is_visible()


def test_a_signed_out_visitor_gets_the_title_page_and_comes_back_after_signing_in(
    stack: RunningStack, visit: VisitorFactory
) -> None:
    visitor = visit(stack)
    visitor.goto("/watch/premium-aurora")
    page = visitor.page
    assert page.locator("#title-page").is_visible()
    assert page.locator("#video-title").inner_text() == "Aurora (premium)"
    assert page.locator("#title-duration").inner_text() == "0:20"
    assert "colour bars" in page.locator("#title-description").inner_text()
    added = page.locator("#title-page time.local-time")
    assert added.get_attribute("data-localized") == "yes"  # the viewer's own time
    assert page.locator("#player").count() == 0
    with page.expect_navigation():
        page.click("#title-sign-in")
    page.fill("#identifier", "alice")
    page.fill("#password", password_of(stack, "alice"))
    with page.expect_navigation(wait_until="load"):
        page.click("main form[action$='/auth/sign-in'] button[type=submit]")
    assert visitor.path == "/watch/premium-aurora"
    start_playing(page)
    visitor.problems.assert_clean()


def test_a_free_plan_admin_previews_an_unpublished_video_and_it_is_recorded(
    stack: RunningStack, visit: VisitorFactory
) -> None:
    services = operator(stack).services
    services.catalog.unpublish("premium-mandelbrot")
    before = len(services.previews.recent("premium-mandelbrot", 100))

    bob = visit(stack)
    sign_in(bob, "bob", "/")
    answer = bob.page.goto(bob.url("/watch/premium-mandelbrot/preview"))
    assert answer is not None and answer.status == 403
    assert bob.page.locator("#player").count() == 0

    carol = visit(stack)
    sign_in(carol, "carol", "/admin/videos/premium-mandelbrot")
    with carol.page.expect_navigation():
        carol.page.click("#preview-link")
    assert carol.path == "/watch/premium-mandelbrot/preview"
    assert "unpublished" in carol.page.locator("#preview-banner").inner_text()
    start_playing(carol.page)
    assert_really_plays(carol.page)
    records = services.previews.recent("premium-mandelbrot", 100)
    assert len(records) == before + 1
    assert records[0].actor == "carol"
    carol.problems.assert_clean()
