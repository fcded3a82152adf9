"""GET /admin/videos/<id>/state on the running stack: what it says, to whom, and for what.

carol (admin) and bob (a free viewer) sign in through the real form. A draft made
through the upload endpoint is walked through processing and failed with the
publishing transitions themselves (no upload completes, so the stack's transcoder
worker never takes it), and the endpoint must show each state as the pages need it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.integration.test_admin_web import DEMO_FREE, Local, browser_for, open_local
from tests.integration.test_upload_endpoints import NEW, Admin
from tests.stackproc import RunningStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local(dev_stack: RunningStack) -> Local:
    return open_local(dev_stack)


@pytest.fixture(scope="module")
def carol(dev_stack: RunningStack) -> Admin:
    return Admin(dev_stack, "carol")


@pytest.fixture
def draft(carol: Admin, local: Local) -> Iterator[str]:
    answer = carol.call("POST", "/admin/uploads", {**NEW, "title": "State test", "size": 1000})
    assert answer.status_code == 201, answer.text
    created = answer.json()
    video_id = str(created["video_id"])
    yield video_id
    if carol.call("POST", f"/admin/uploads/{video_id}/abort", created).status_code != 200:
        # No longer a draft (the test moved it on): abort and remove it directly.
        local.services.browser_uploads.abort(created["key"], created["upload_id"])
        local.services.catalog.remove(video_id)


def state(carol: Admin, video_id: str) -> requests.Response:
    return carol.call("GET", f"/admin/videos/{video_id}/state")


def test_carol_reads_a_published_videos_state_with_its_links(carol: Admin, local: Local) -> None:
    answer = state(carol, DEMO_FREE)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    video = local.services.catalog.get_any(DEMO_FREE)
    assert body == {
        "video_id": DEMO_FREE,
        "title": video.title,
        "state": "ready",
        "shown_state": "published",
        "label": "Published",
        "progress": None,
        "failure_reason": None,
        "published": True,
        "pending": False,
        "links": {
            "page": f"/admin/videos/{DEMO_FREE}",
            "preview": f"/watch/{DEMO_FREE}/preview",
        },
    }


def test_a_draft_is_followed_from_uploading_through_processing_to_failed(
    carol: Admin, local: Local, draft: str
) -> None:
    uploading = state(carol, draft).json()
    assert (uploading["state"], uploading["pending"], uploading["progress"]) == (
        "uploading",
        True,
        None,
    )
    assert uploading["title"] == "State test"
    publishing = local.services.publishing
    publishing.start_processing(draft, attempt=1)
    publishing.report_progress(draft, attempt=1, percent=42)
    processing = state(carol, draft).json()
    assert processing["state"] == "processing"
    assert processing["label"] == "Processing"
    assert processing["progress"] == 42
    assert processing["pending"] is True
    publishing.mark_failed(draft, reason="the file has no video stream", attempt=1)
    failed = state(carol, draft).json()
    assert failed["state"] == "failed"
    assert failed["pending"] is False
    assert failed["progress"] is None
    assert failed["failure_reason"] == "the file has no video stream"
    assert failed["links"]["page"] == f"/admin/videos/{draft}"


def test_the_state_is_read_fresh_not_from_a_cache(carol: Admin, local: Local, draft: str) -> None:
    assert state(carol, draft).json()["state"] == "uploading"
    local.services.publishing.start_processing(draft, attempt=1)
    assert state(carol, draft).json()["state"] == "processing", "the very next read sees it"


@pytest.mark.parametrize("video_id", ["no-such-video", "x" * 300, "bad%20id"])
@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_an_unknown_id_is_a_json_404_whatever_the_browser_accepts(
    carol: Admin, video_id: str, accept: str
) -> None:
    answer = carol.session.get(
        f"{carol.base}/admin/videos/{video_id}/state", headers={"Accept": accept}, timeout=10
    )
    assert answer.status_code == 404
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["error"] == "not_found"


def test_bob_who_is_a_viewer_gets_403_and_learns_nothing(local: Local) -> None:
    bob = browser_for(local, "bob")
    answer = bob.get(
        f"{local.web}/admin/videos/{DEMO_FREE}/state",
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 403
    body: dict[str, Any] = answer.json()
    assert body["error"] == "forbidden"
    assert "state" not in body and "title" not in body


def test_a_visitor_who_is_not_signed_in_gets_401(local: Local) -> None:
    answer = requests.get(
        f"{local.web}/admin/videos/{DEMO_FREE}/state",
        headers={"Accept": "application/json"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 401
    assert "title" not in answer.json()
