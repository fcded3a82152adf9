"""carol adds videos, captions and posters from the admin pages in a real browser.

The upload goes from Chromium straight to the emulator's S3 (presigned part
URLs, the bucket's CORS), so these tests watch the part PUTs themselves
(Playwright's request events and route interception): how many were sent, for
which part numbers, and what S3 holds afterwards (ListParts,
ListMultipartUploads). The clip is generated on the spot: incompressible noise,
so a short clip is three 5 MiB parts.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config

from app.captions import CaptionStore
from app.catalog import VideoCatalog
from app.errors import VideoNotFoundError
from app.local.emulator import EMULATOR_ENV
from app.ops.media import ffmpeg_exe
from tests.e2e.conftest import VisitorFactory
from tests.e2e.helpers import (
    PAGE_TIMEOUT_MS,
    PLAY_TIMEOUT_MS,
    Visitor,
    sign_in,
    start_playing,
    wait_for_state,
)
from tests.stackproc import RunningStack

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request, Route

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
PART = 8 * MIB  # the page's part size (app/web/admin_uploads.py PART_SIZE)
UPLOAD_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An H.264/AAC MP4 of random noise, a little over two parts (three part PUTs)."""
    out = tmp_path_factory.mktemp("upload-clip") / "noise clip.mp4"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "nullsrc=s=640x360:r=25,geq=random(1)*255:128:128,format=yuv420p",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "8",
            "-c:a",
            "aac",
            "-movflags",
            "+faststart",
            str(out),
        ],
        check=True,
        timeout=120,
    )
    size = out.stat().st_size
    assert 2 * PART < size < 3 * PART, f"the clip is {size} bytes: not three parts"
    return out


def s3_of(stack: RunningStack) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=stack.aws_endpoint,
        region_name=EMULATOR_ENV["AWS_REGION"],
        aws_access_key_id=EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4"),
    )


def dynamodb_of(stack: RunningStack) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=stack.aws_endpoint,
        region_name=EMULATOR_ENV["AWS_REGION"],
        aws_access_key_id=EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def catalog_of(stack: RunningStack) -> VideoCatalog:
    return VideoCatalog(dynamodb_of(stack), stack.document["tables"]["videos"], cache_seconds=0)


def demo_captions(seconds: int) -> bytes:
    """A valid WebVTT file: one numbered cue every 2 s for ``seconds``."""

    def stamp(t: int) -> str:
        return f"00:{t // 60:02d}:{t % 60:02d}.000"

    cues = [
        f"{n}\n{stamp(t)} --> {stamp(t + 2)}\nCaption {n}\n"
        for n, t in enumerate(range(0, seconds, 2), start=1)
    ]
    return ("WEBVTT\n\n" + "\n".join(cues)).encode()


def caption_store(stack: RunningStack, video_id: str) -> tuple[CaptionStore, str]:
    """The stack's caption store and ``video_id``'s master playlist key."""
    video = catalog_of(stack).get_any(video_id)
    assert video.hls_key, f"{video_id} has no HLS"
    return CaptionStore(s3_of(stack), stack.document["bucket"]), video.hls_key


def open_uploads(stack: RunningStack, prefix: str) -> list[dict[str, Any]]:
    listed = s3_of(stack).list_multipart_uploads(Bucket=stack.document["bucket"], Prefix=prefix)
    return list(listed.get("Uploads", []))


class PartPuts:
    """Every part PUT the page sends to S3, by part number, and how each ended."""

    def __init__(self, visitor: Visitor) -> None:
        self.sent: list[int] = []
        self.finished: list[int] = []
        self.failed: list[int] = []
        page = visitor.page
        page.on("request", lambda r: self._record(r, self.sent))
        page.on("requestfinished", lambda r: self._record(r, self.finished))
        page.on("requestfailed", lambda r: self._record(r, self.failed))

    @staticmethod
    def part_number(request: Request) -> int | None:
        if request.method != "PUT":
            return None
        query = parse_qs(urlsplit(request.url).query)
        numbers = query.get("partNumber")
        return int(numbers[0]) if numbers else None

    def _record(self, request: Request, into: list[int]) -> None:
        number = self.part_number(request)
        if number is not None:
            into.append(number)


def s3_parts_url(stack: RunningStack) -> re.Pattern[str]:
    return re.compile(re.escape(stack.aws_endpoint) + r"/.*[?&]partNumber=\d+")


def fill_upload_form(carol: Visitor, clip: Path, title: str) -> None:
    carol.goto("/admin/videos/new")
    page = carol.page
    page.fill("#upload-title", title)
    page.fill("#upload-description", "Uploaded from the browser by the e2e tests.")
    page.select_option("#upload-tier", "free")
    page.set_input_files("#upload-file", str(clip))


def wait_for_upload(carol: Visitor, *states: str, timeout_ms: int = UPLOAD_TIMEOUT_MS) -> str:
    carol.page.wait_for_function(
        "(states) => states.includes(document.getElementById('upload-form').dataset.state)",
        arg=list(states),
        timeout=timeout_ms,
    )
    return str(carol.page.get_attribute("#upload-form", "data-state"))


def video_id_on(carol: Visitor) -> str:
    carol.page.wait_for_function(
        "() => !!document.getElementById('upload-form').dataset.videoId", timeout=PAGE_TIMEOUT_MS
    )
    return str(carol.page.get_attribute("#upload-form", "data-video-id"))


def eventually(page: Page, check: Callable[[], bool], seconds: float = 10) -> bool:
    """Poll ``check``, letting Playwright deliver events and run route handlers meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        page.wait_for_timeout(200)
    return check()


@pytest.fixture
def carol(visit: VisitorFactory, dev_stack: RunningStack) -> Iterator[Visitor]:
    visitor = visit(dev_stack)
    sign_in(visitor, "carol")
    yield visitor


def test_carol_uploads_a_clip_and_sees_the_progress_reach_100(
    carol: Visitor, dev_stack: RunningStack, clip: Path
) -> None:
    puts = PartPuts(carol)
    percents: list[str] = []
    fill_upload_form(carol, clip, "Noise from the browser")
    carol.page.click("#upload-start")
    video_id = video_id_on(carol)
    while carol.page.get_attribute("#upload-form", "data-state") == "uploading":
        percents.append(carol.page.inner_text("#upload-percent"))
        carol.page.wait_for_timeout(100)
    assert wait_for_upload(carol, "done", "failed") == "done", carol.page.inner_text(
        "#upload-message"
    )
    assert carol.page.inner_text("#upload-percent") == "100 %"
    assert carol.page.eval_on_selector("#upload-progress", "bar => bar.value") == 100
    assert "processed" in carol.page.inner_text("#upload-message")
    assert sorted(puts.finished) == [1, 2, 3], puts.finished
    assert puts.failed == []
    video = catalog_of(dev_stack).get_any(video_id)
    assert video.state in ("uploading", "processing", "ready"), video
    assert video.source_key is not None
    assert video.source_key.startswith(f"uploads/{video_id}/")
    assert video.source_key.endswith("/noise-clip.mp4"), "a safe file name"
    head = s3_of(dev_stack).head_object(Bucket=dev_stack.document["bucket"], Key=video.source_key)
    assert head["ContentLength"] == clip.stat().st_size
    assert open_uploads(dev_stack, f"uploads/{video_id}/") == []
    assert carol.problems.csp_violations == []
    carol.problems.assert_clean()


def test_a_dropped_part_is_retried_and_a_reload_resumes_without_resending_parts(
    carol: Visitor, dev_stack: RunningStack, clip: Path
) -> None:
    page = carol.page
    puts = PartPuts(carol)
    dropped: list[int] = []
    held: list[Route] = []

    def network(route: Route) -> None:
        number = PartPuts.part_number(route.request)
        if number == 2 and not dropped:
            dropped.append(number)
            route.abort("connectionreset")  # the connection drops once: Uppy retries
        elif number == 3:
            held.append(route)  # never answered: the page is reloaded meanwhile
        else:
            route.continue_()

    page.route(s3_parts_url(dev_stack), network)
    fill_upload_form(carol, clip, "Resumed upload")
    page.click("#upload-start")
    video_id = video_id_on(carol)
    assert eventually(page, lambda: sorted(puts.finished) == [1, 2] and bool(held), 60), (
        puts.finished,
        held,
    )
    assert dropped == [2] and puts.failed.count(2) == 1, (dropped, puts.failed)
    assert puts.sent.count(2) == 2, "part 2 sent again after the drop, part 1 only once"
    assert puts.sent.count(1) == 1

    # Reload while part 3 is still in flight (unrouting first could let it through).
    page.reload(wait_until="load")
    page.unroute(s3_parts_url(dev_stack))
    assert page.is_visible("#upload-resume"), "the page remembers the interrupted upload"
    before = len(puts.sent)
    page.fill("#upload-title", "Resumed upload")
    page.set_input_files("#upload-file", str(clip))
    page.click("#upload-start")
    assert wait_for_upload(carol, "done", "failed") == "done", page.inner_text("#upload-message")
    assert page.get_attribute("#upload-form", "data-resumed") == "true"
    assert page.get_attribute("#upload-form", "data-video-id") == video_id
    assert puts.sent[before:] == [3], f"only the missing part is sent: {puts.sent[before:]}"
    video = catalog_of(dev_stack).get_any(video_id)
    assert video.source_key is not None
    head = s3_of(dev_stack).head_object(Bucket=dev_stack.document["bucket"], Key=video.source_key)
    assert head["ContentLength"] == clip.stat().st_size
    assert open_uploads(dev_stack, f"uploads/{video_id}/") == []


def test_cancel_leaves_no_multipart_upload_and_no_draft(
    carol: Visitor, dev_stack: RunningStack, clip: Path
) -> None:
    page = carol.page
    held: list[Route] = []
    page.route(s3_parts_url(dev_stack), lambda route: held.append(route))
    fill_upload_form(carol, clip, "Cancelled upload")
    page.click("#upload-start")
    video_id = video_id_on(carol)
    assert eventually(page, lambda: bool(held), 30)
    assert len(open_uploads(dev_stack, f"uploads/{video_id}/")) == 1
    page.click("#upload-cancel")
    assert wait_for_upload(carol, "cancelled") == "cancelled"
    assert eventually(page, lambda: open_uploads(dev_stack, f"uploads/{video_id}/") == [])

    def draft_gone() -> bool:
        try:
            catalog_of(dev_stack).get_any(video_id)
        except VideoNotFoundError:
            return True
        return False

    assert eventually(page, draft_gone)
    assert "cancelled" in page.inner_text("#upload-message")
    page.unroute(s3_parts_url(dev_stack))


def test_an_upload_over_the_cap_is_refused_with_the_limit(
    carol: Visitor, dev_stack: RunningStack
) -> None:
    carol.goto("/admin/videos/new")
    answer = carol.page.evaluate(
        """async () => {
          const response = await fetch('/admin/uploads', {
            method: 'POST',
            headers: {
              'Content-Type': 'application/json',
              'Accept': 'application/json',
              'X-CSRF-Token': document.querySelector('meta[name="csrf-token"]').content,
            },
            body: JSON.stringify({title: 'Huge', tier: 'free', description: '',
                                  file_name: 'huge.mp4', size: 21 * 1024 ** 3}),
          });
          return {status: response.status, body: await response.json()};
        }"""
    )
    assert answer["status"] == 413, answer
    assert answer["body"]["error"] == "too_large"
    assert "20 GiB" in answer["body"]["message"]


def test_an_uploaded_clip_is_processed_then_ready_and_alice_plays_it(
    carol: Visitor, visit: VisitorFactory, dev_stack: RunningStack, clip: Path
) -> None:
    fill_upload_form(carol, clip, "From upload to playback")
    carol.page.click("#upload-start")
    video_id = video_id_on(carol)
    assert wait_for_upload(carol, "done", "failed") == "done"
    catalog = catalog_of(dev_stack)
    seen: list[str] = []

    def ready() -> bool:
        state = catalog.get_any(video_id).state
        if not seen or seen[-1] != state:
            seen.append(state)
        return state in ("ready", "failed")

    assert eventually(carol.page, ready, 180), seen
    assert seen[-1] == "ready", seen
    assert "processing" in seen or len(seen) == 1, seen
    carol.goto(f"/admin/videos/{video_id}")
    alice = visit(dev_stack)
    sign_in(alice, "alice")
    alice.goto(f"/watch/{video_id}")
    state = wait_for_state(alice.page, "ready", "error", "stopped", timeout_ms=PAGE_TIMEOUT_MS)
    assert state["format"] == "hls", state
    start_playing(alice.page)
    alice.page.wait_for_function(
        "() => document.getElementById('player-video').currentTime > 1", timeout=PLAY_TIMEOUT_MS
    )
    alice.problems.assert_clean()


def test_carol_adds_captions_a_bad_file_is_refused_with_its_line(
    carol: Visitor, dev_stack: RunningStack, tmp_path: Path
) -> None:
    page = carol.page
    bad = tmp_path / "bad.vtt"
    bad.write_bytes(b"WEBVTT\n\n00:00:01.000 --> 00:00:00.500\nBackwards\n")
    good = tmp_path / "good.vtt"
    good.write_bytes(demo_captions(20))
    carol.goto("/admin/videos/free-sampler")
    try:
        page.fill("#captions-language", "en")
        page.fill("#captions-label", "English")
        page.set_input_files("#captions-file", str(bad))
        with page.expect_navigation() as navigation:
            page.click("#captions-form button[type=submit]")
        assert navigation.value.status == 400
        alert = page.inner_text("[role=alert]")
        assert "line 3" in alert and "ends before it starts" in alert, alert
        refused = carol.problems.console_errors
        assert len(refused) == 1 and "status of 400" in refused[0], refused
        carol.problems.clear()  # the one error: the refused form's 400, as intended
        page.fill("#captions-language", "pt-br")
        page.fill("#captions-label", "Português")
        page.set_input_files("#captions-file", str(good))
        with page.expect_navigation():
            page.click("#captions-form button[type=submit]")
        assert "added" in page.inner_text(".flash-success")
        track = page.locator("#caption-tracks li[data-language='pt-BR']")
        assert "Português (pt-BR)" in track.inner_text()
        store, master = caption_store(dev_stack, "free-sampler")
        assert [t.language for t in store.tracks("free-sampler", master)] == ["pt-BR"]
        with page.expect_navigation():
            track.locator("button").click()
        assert page.locator("#caption-tracks").count() == 0
        assert store.tracks("free-sampler", master) == []
    finally:
        store, master = caption_store(dev_stack, "free-sampler")
        for track_left in store.tracks("free-sampler", master):
            store.remove("free-sampler", master, track_left.language)
    carol.problems.assert_clean()


def test_carol_picks_a_poster_frame_and_it_is_served_with_a_short_cache(
    carol: Visitor, dev_stack: RunningStack, clip: Path
) -> None:
    from app.publishing import Publishing

    catalog = catalog_of(dev_stack)
    publishing = Publishing(dynamodb_of(dev_stack), dev_stack.document["tables"]["videos"])
    video_id = f"poster-{uuid.uuid4().hex[:8]}"
    publishing.create_draft(
        video_id, title="Poster test", tier="free", source_key=f"uploads/{video_id}/x.mp4"
    )
    page = carol.page
    try:
        carol.goto(f"/admin/videos/{video_id}")
        page.set_input_files("#poster-video-file", str(clip))
        page.wait_for_function(
            "() => document.getElementById('poster-source').readyState >= 2",
            timeout=PAGE_TIMEOUT_MS,
        )
        page.eval_on_selector("#poster-source", "video => { video.currentTime = 1.5; }")
        page.wait_for_function(
            "() => !document.getElementById('poster-source').seeking", timeout=PAGE_TIMEOUT_MS
        )
        page.click("#poster-use-frame")
        page.wait_for_function(
            "() => document.getElementById('poster-picker').dataset.saved === '1'",
            timeout=PAGE_TIMEOUT_MS,
        )
        assert catalog.get_any(video_id).poster_key == f"posters/{video_id}.jpg"
        served = page.request.get(f"{dev_stack.site_url}/posters/{video_id}.jpg")
        assert served.status == 200
        assert served.body()[:3] == b"\xff\xd8\xff", "a JPEG"
        assert served.headers.get("cache-control") == "public, max-age=60"
        assert carol.problems.csp_violations == []
    finally:
        catalog.remove(video_id)
    carol.problems.assert_clean()
