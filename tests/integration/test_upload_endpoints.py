"""The admin upload endpoints over HTTP on the running stack: who may call them, what they refuse.

carol (admin) and bob (a free viewer) sign in through the real form; JSON calls
carry the page's CSRF token in ``X-CSRF-Token`` as the upload page sends it.
The happy paths run in a real browser (tests/e2e/test_upload.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from app.catalog import VideoCatalog
from app.errors import VideoNotFoundError
from app.local.emulator import EMULATOR_ENV
from tests.integration.test_admin_web import sign_in
from tests.stackproc import RunningStack

pytestmark = pytest.mark.integration


class Admin:
    """A signed-in browser session and the page's CSRF token."""

    def __init__(self, stack: RunningStack, username: str) -> None:
        self.base = stack.web_url
        self.session = sign_in(self.base, username, stack.user(username)["password"])
        page = self.session.get(f"{self.base}/admin/users", timeout=10).text
        found = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert found, "no CSRF meta tag"
        self.token = found.group(1)

    def call(
        self, method: str, path: str, body: Any = None, *, token: bool = True
    ) -> requests.Response:
        headers = {"Accept": "application/json", "Origin": self.base}
        if token:
            headers["X-CSRF-Token"] = self.token
        return self.session.request(
            method, self.base + path, json=body, headers=headers, timeout=10
        )


NEW = {"title": "Endpoint test", "tier": "free", "description": "", "file_name": "a.mp4"}


@pytest.fixture(scope="module")
def carol(dev_stack: RunningStack) -> Admin:
    return Admin(dev_stack, "carol")


@pytest.fixture
def started(carol: Admin, dev_stack: RunningStack) -> Iterator[dict[str, Any]]:
    answer = carol.call("POST", "/admin/uploads", {**NEW, "size": 1000})
    assert answer.status_code == 201, answer.text
    created = answer.json()
    yield created
    carol.call("POST", f"/admin/uploads/{created['video_id']}/abort", created)


def catalog(stack: RunningStack) -> VideoCatalog:
    client = boto3.client(
        "dynamodb",
        endpoint_url=stack.aws_endpoint,
        region_name=EMULATOR_ENV["AWS_REGION"],
        aws_access_key_id=EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    return VideoCatalog(client, stack.document["tables"]["videos"], cache_seconds=0)


def test_create_makes_a_draft_in_uploading_with_the_servers_key(
    started: dict[str, Any], dev_stack: RunningStack
) -> None:
    video = catalog(dev_stack).get_any(started["video_id"])
    assert video.state == "uploading" and not video.viewable
    assert started["key"] == video.source_key == f"uploads/{started['video_id']}/a.mp4"
    assert started["part_size"] >= 5 * 1024 * 1024


def test_a_viewer_gets_403_and_no_draft(dev_stack: RunningStack) -> None:
    bob = Admin(dev_stack, "bob")
    answer = bob.call("POST", "/admin/uploads", {**NEW, "size": 1000})
    assert answer.status_code == 403
    assert answer.json()["error"] == "forbidden"


def test_without_the_csrf_token_nothing_starts(carol: Admin) -> None:
    answer = carol.call("POST", "/admin/uploads", {**NEW, "size": 1000}, token=False)
    assert answer.status_code == 403
    assert answer.json()["error"] == "csrf"


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"size": 21 * 1024**3}, 413),
        ({"size": 0}, 400),
        ({"size": "1000"}, 400),
        ({"size": 1000, "title": "   "}, 400),
        ({"size": 1000, "tier": "gold"}, 400),
        ({"size": 1000, "title": "x" * 5000}, 400),
    ],
)
def test_create_refuses_with_a_sentence_for_people(
    carol: Admin, change: dict[str, Any], status: int
) -> None:
    answer = carol.call("POST", "/admin/uploads", {**NEW, **change})
    assert answer.status_code == status, answer.text
    message = answer.json()["message"]
    assert message and "must be" not in message, message


def test_a_body_that_is_not_an_object_is_a_400(carol: Admin) -> None:
    assert carol.call("POST", "/admin/uploads", [1, 2]).status_code == 400


@pytest.mark.parametrize("numbers", [[], [0], [10_001], [1, 1], list(range(1, 102)), "1", None])
def test_signing_refuses_bad_part_numbers(
    carol: Admin, started: dict[str, Any], numbers: Any
) -> None:
    answer = carol.call(
        "POST",
        f"/admin/uploads/{started['video_id']}/parts",
        {"upload_id": started["upload_id"], "part_numbers": numbers},
    )
    assert answer.status_code == 400


def test_signing_gives_short_lived_sigv4_urls_for_the_drafts_key(
    carol: Admin, started: dict[str, Any], dev_stack: RunningStack
) -> None:
    answer = carol.call(
        "POST",
        f"/admin/uploads/{started['video_id']}/parts",
        {"upload_id": started["upload_id"], "part_numbers": [1, 2]},
    )
    assert answer.status_code == 200
    urls = answer.json()["urls"]
    assert set(urls) == {"1", "2"}
    assert all(url.startswith(dev_stack.aws_endpoint) for url in urls.values())
    assert all(f"/{started['key']}?" in url for url in urls.values())
    assert all("X-Amz-Expires=900" in url for url in urls.values())


def test_an_unknown_or_finished_upload_is_a_404(carol: Admin, started: dict[str, Any]) -> None:
    other = carol.call("GET", "/admin/uploads/no-such-video/parts?upload_id=x")
    assert other.status_code == 404
    demo = carol.call("GET", "/admin/uploads/free-sampler/parts?upload_id=x")
    assert demo.status_code == 404, "a ready video has no open upload"
    wrong = carol.call("GET", f"/admin/uploads/{started['video_id']}/parts?upload_id=nope")
    assert wrong.status_code == 404


def test_complete_refuses_a_malformed_part_list(carol: Admin, started: dict[str, Any]) -> None:
    for parts in ([], [{"PartNumber": 2, "ETag": "a"}, {"PartNumber": 1, "ETag": "b"}], "x"):
        answer = carol.call(
            "POST",
            f"/admin/uploads/{started['video_id']}/complete",
            {"upload_id": started["upload_id"], "parts": parts},
        )
        assert answer.status_code == 400, parts


def test_abort_removes_the_draft_and_the_multipart_upload(
    carol: Admin, dev_stack: RunningStack
) -> None:
    created = carol.call("POST", "/admin/uploads", {**NEW, "size": 1000}).json()
    answer = carol.call("POST", f"/admin/uploads/{created['video_id']}/abort", created)
    assert answer.status_code == 200 and answer.json()["aborted"] is True
    with pytest.raises(VideoNotFoundError):
        catalog(dev_stack).get_any(created["video_id"])
    s3 = boto3.client(
        "s3",
        endpoint_url=dev_stack.aws_endpoint,
        region_name=EMULATOR_ENV["AWS_REGION"],
        aws_access_key_id=EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    listed = s3.list_multipart_uploads(
        Bucket=dev_stack.document["bucket"], Prefix=f"uploads/{created['video_id']}/"
    )
    assert listed.get("Uploads", []) == []
    again = carol.call("POST", f"/admin/uploads/{created['video_id']}/abort", created)
    assert again.status_code == 404


def test_the_upload_page_allows_exactly_the_buckets_endpoint(
    carol: Admin, dev_stack: RunningStack
) -> None:
    page = carol.session.get(f"{carol.base}/admin/videos/new", timeout=10)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    connect = next(d for d in csp.split("; ") if d.startswith("connect-src "))
    assert connect.split()[1:] == ["'self'", dev_stack.site_url, dev_stack.aws_endpoint]
    other = carol.session.get(f"{carol.base}/admin/videos", timeout=10)
    assert dev_stack.aws_endpoint not in other.headers["Content-Security-Policy"]
    assert 'src="/static/vendor/uploader.js"' in page.text
