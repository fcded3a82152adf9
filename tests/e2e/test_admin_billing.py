"""The admin billing pages in Chromium: they fit a 390 px phone screen.

On the shared ``dev_stack``; nothing is changed. carol is an admin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import VisitorFactory
from tests.e2e.helpers import sign_in
from tests.stackproc import RunningStack

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

pytestmark = pytest.mark.e2e

PHONE: ViewportSize = {"width": 390, "height": 844}


def test_the_billing_page_and_a_videos_prices_fit_a_phone(
    dev_stack: RunningStack, visit: VisitorFactory
) -> None:
    carol = visit(dev_stack)
    sign_in(carol, "carol", "/admin/billing")
    carol.page.set_viewport_size(PHONE)
    for path in ("/admin/billing", "/admin/videos/premium-aurora"):
        carol.goto(path)
        sizes = carol.page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]"
        )
        scroll, width = int(sizes[0]), int(sizes[1])
        assert width == PHONE["width"]
        assert scroll <= width, f"{path} is {scroll} px wide on a {width} px screen"
    assert carol.page.locator("#offer-form").count() == 1
    carol.goto("/admin/billing")
    assert carol.page.locator("#plan-form").count() == 1
    carol.problems.assert_clean()
