"""The catalog's API parameters and the admin preview over HTTP, on the shared dev stack.

Read-only for the catalog (no video is changed); the preview writes its own audit records.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.integration.test_watch_pages import (
    TIMEOUT,
    anonymous,
    element_by_id,
    meta_csrf,
    sign_in,
    video_cards,
)
from tests.stackproc import RunningStack

DEMO = {"free-sampler", "premium-aurora", "premium-mandelbrot"}


def _api(stack: RunningStack, **query: str) -> requests.Response:
    return requests.get(f"{stack.web_url}/api/videos", params=query, timeout=TIMEOUT)


def _ids(answer: requests.Response) -> list[str]:
    assert answer.status_code == 200, answer.text[:300]
    body: dict[str, Any] = answer.json()
    return [item["id"] for item in body["items"]]


def test_the_api_searches_sorts_and_keeps_its_old_answer(dev_stack: RunningStack) -> None:
    plain = _api(dev_stack)
    assert set(_ids(plain)) >= DEMO
    assert all(item["categories"] == [] for item in plain.json()["items"])
    assert _ids(_api(dev_stack, q="AURO")) == ["premium-aurora"]
    assert _ids(_api(dev_stack, q="zoom mandelbrot")) == ["premium-mandelbrot"]
    assert _ids(_api(dev_stack, q="urora")) == []
    titles = _ids(_api(dev_stack, sort="title"))
    assert titles.index("premium-aurora") < titles.index("free-sampler")
    assert titles.index("free-sampler") < titles.index("premium-mandelbrot")
    assert _ids(_api(dev_stack, category="nature")) == []  # the demo videos have none
    assert set(_ids(_api(dev_stack, q="", category="", sort=""))) == set(_ids(plain))


@pytest.mark.parametrize(
    "query",
    [{"q": "x" * 101}, {"q": "a b c d e f g"}, {"category": "cooking"}, {"sort": "oldest"}],
)
def test_a_bad_search_is_a_400_on_the_api_and_a_friendly_page(
    dev_stack: RunningStack, query: dict[str, str]
) -> None:
    answer = _api(dev_stack, **query)
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"
    page = anonymous().get(f"{dev_stack.web_url}/", params=query, timeout=TIMEOUT)
    assert page.status_code == 400
    assert "We could not run that search" in page.text
    assert "Traceback" not in page.text


def test_a_cursor_of_another_search_is_a_400(dev_stack: RunningStack) -> None:
    first = _api(dev_stack, sort="title", limit="1").json()
    assert first["next_cursor"]
    answer = _api(dev_stack, q="free", cursor=first["next_cursor"])
    assert answer.status_code == 400


def test_the_catalog_page_searches_and_marks_premium_locked_for_a_visitor(
    dev_stack: RunningStack,
) -> None:
    page = anonymous().get(f"{dev_stack.web_url}/?q=premium+aur", timeout=TIMEOUT)
    assert page.status_code == 200
    cards = video_cards(page.text)
    assert [card["data-video-id"] for card in cards] == ["premium-aurora"]
    assert cards[0]["data-locked"] == "yes"


def test_only_an_admin_may_preview_and_each_preview_is_recorded(dev_stack: RunningStack) -> None:
    for who in (None, "alice", "bob"):
        viewer = anonymous() if who is None else sign_in(dev_stack, who)
        page = viewer.get(
            f"{dev_stack.web_url}/watch/premium-aurora/preview",
            timeout=TIMEOUT,
            allow_redirects=False,
        )
        assert page.status_code == (302 if who is None else 403), who
        assert element_by_id(page.text, "player") is None
        if who is not None:
            token = meta_csrf(
                viewer.get(f"{dev_stack.web_url}/", timeout=TIMEOUT).text,
            )
            grant = viewer.post(
                f"{dev_stack.web_url}/watch/premium-aurora/preview/grant",
                json={},
                headers={
                    "X-CSRF-Token": token,
                    "Origin": dev_stack.web_url,
                    "Accept": "application/json",
                },
                timeout=TIMEOUT,
            )
            assert grant.status_code == 403, grant.text[:200]
            assert "url" not in grant.json()

    carol = sign_in(dev_stack, "carol")  # an admin on the free plan
    page = carol.get(f"{dev_stack.web_url}/watch/premium-aurora/preview", timeout=TIMEOUT)
    assert page.status_code == 200
    assert element_by_id(page.text, "preview-banner") is not None
    grant = carol.post(
        f"{dev_stack.web_url}/watch/premium-aurora/preview/grant",
        json={},
        headers={
            "X-CSRF-Token": meta_csrf(page.text),
            "Origin": dev_stack.web_url,
            "Accept": "application/json",
        },
        timeout=TIMEOUT,
    )
    assert grant.status_code == 200, grant.text[:300]
    body = grant.json()
    assert body["format"] == "hls" and "cookies" not in body
    assert any(c.name == "CloudFront-Signature" for c in carol.cookies)
    admin_page = carol.get(f"{dev_stack.web_url}/admin/videos/premium-aurora", timeout=TIMEOUT)
    previews = element_by_id(admin_page.text, "previews")
    assert previews is not None
    assert "carol" in admin_page.text.split('id="previews"', 1)[1]
    # The free-plan admin's regular watch page is still the upsell page.
    regular = carol.get(f"{dev_stack.web_url}/watch/premium-aurora", timeout=TIMEOUT)
    assert element_by_id(regular.text, "upsell") is not None
    assert video_cards(regular.text) == []
