"""carol follows publishing live in a real browser: the upload page's processing bar, then
Ready, and the videos list's rows that move on their own, all without a reload.

The upload runs the whole local pipeline (the stack's transcoder worker). The page's
display is recorded in the page itself (a MutationObserver on the processing box), so
every state it showed is seen, however briefly. The clip is a test pattern long enough
that the ladder takes a few progress steps: the page shows a percent before Ready. The
list test drives a draft's state itself with the publishing transitions, so each step is
one the test chose.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.errors import VideoNotFoundError
from app.ops.media import ffmpeg_exe
from app.publishing import Publishing
from tests.e2e.conftest import VisitorFactory
from tests.e2e.helpers import PAGE_TIMEOUT_MS, Visitor, sign_in
from tests.e2e.test_upload import (
    UPLOAD_TIMEOUT_MS,
    catalog_of,
    fill_upload_form,
    video_id_on,
    wait_for_upload,
)
from tests.integration.test_admin_web import local_services
from tests.stackproc import RunningStack

pytestmark = pytest.mark.e2e

READY_TIMEOUT_MS = 180_000

RECORD_SCRIPT = """() => {
  const box = document.getElementById('publish-status');
  window.__shown = [];
  const note = () => {
    const entry = {
      state: box.dataset.state,
      heading: document.getElementById('publish-heading').textContent,
      percent: document.getElementById('publish-percent').textContent,
      bar: document.getElementById('publish-progress').getAttribute('value'),
      hidden: box.hidden,
    };
    const last = window.__shown[window.__shown.length - 1];
    if (!last || JSON.stringify(last) !== JSON.stringify(entry)) {
      window.__shown.push(entry);
    }
  };
  new MutationObserver(note).observe(box, {
    subtree: true, childList: true, characterData: true, attributes: true,
  });
}"""


@pytest.fixture(scope="module")
def pattern_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small H.264/AAC MP4 (a moving test pattern, 12 s at 640x360): one upload part."""
    out = tmp_path_factory.mktemp("live-clip") / "pattern.mp4"
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
            "testsrc2=s=640x360:r=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=330",
            "-t",
            "12",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-crf",
            "30",
            "-c:a",
            "aac",
            "-movflags",
            "+faststart",
            str(out),
        ],
        check=True,
        timeout=120,
    )
    assert out.stat().st_size < 8 * 1024 * 1024, "one part"
    return out


@pytest.fixture
def carol(visit: VisitorFactory, dev_stack: RunningStack) -> Iterator[Visitor]:
    visitor = visit(dev_stack)
    sign_in(visitor, "carol")
    yield visitor


def shown(carol: Visitor) -> list[dict[str, Any]]:
    return list(carol.page.evaluate("() => window.__shown"))


def test_carol_sees_processing_percent_then_ready_with_links_without_a_reload(
    carol: Visitor, dev_stack: RunningStack, pattern_clip: Path
) -> None:
    page = carol.page
    fill_upload_form(carol, pattern_clip, "Followed live")
    page.evaluate(RECORD_SCRIPT)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.click("#upload-start")
    video_id = video_id_on(carol)
    try:
        assert wait_for_upload(carol, "done", "failed", timeout_ms=UPLOAD_TIMEOUT_MS) == "done"
        page.wait_for_function(
            "() => ['ready', 'failed'].includes(document.getElementById('publish-status')"
            ".dataset.state)",
            timeout=READY_TIMEOUT_MS,
        )
        states = shown(carol)
        assert page.get_attribute("#publish-status", "data-state") == "ready", states
        assert page.inner_text("#publish-heading") == "Ready"
        assert page.inner_text("#publish-percent") == "100 %"
        assert page.eval_on_selector("#publish-progress", "bar => bar.value") == 100
        assert "Followed live" in page.inner_text("#publish-message")
        assert page.get_attribute("#publish-video-page", "href") == f"/admin/videos/{video_id}"
        assert page.get_attribute("#publish-preview", "href") == f"/watch/{video_id}/preview"
        assert page.is_visible("#publish-links")

        processing = [s for s in states if s["state"] == "processing"]
        assert processing, f"the page never showed processing: {states}"
        percents = [int(s["percent"].split()[0]) for s in processing]
        assert all(re.fullmatch(r"\d+ %", s["percent"]) for s in processing), processing
        assert all(s["heading"] == "Processing" and not s["hidden"] for s in processing)
        assert percents == sorted(percents), f"the bar never goes back: {percents}"
        assert all(int(s["bar"]) == p for s, p in zip(processing, percents, strict=True))
        order = [s["state"] for s in states]
        assert order.index("processing") < order.index("ready"), order
        assert len(navigations) == 0, f"no reload, no navigation: {navigations}"
        assert catalog_of(dev_stack).get_any(video_id).state == "ready"

        with page.expect_navigation():
            page.click("#publish-video-page")
        assert carol.path == f"/admin/videos/{video_id}"
        assert carol.problems.csp_violations == []
        carol.problems.assert_clean()
    finally:
        with contextlib.suppress(VideoNotFoundError):
            catalog_of(dev_stack).remove(video_id)


@pytest.fixture
def publishing(dev_stack: RunningStack) -> Publishing:
    return local_services(dev_stack)[1].publishing


@pytest.fixture
def draft(publishing: Publishing, dev_stack: RunningStack) -> Iterator[str]:
    video_id = f"live-{uuid.uuid4().hex[:8]}"
    publishing.create_draft(
        video_id, title="Live row", tier="free", source_key=f"uploads/{video_id}/row.mp4"
    )
    yield video_id
    with contextlib.suppress(VideoNotFoundError):
        catalog_of(dev_stack).remove(video_id)


def badge(carol: Visitor, video_id: str) -> dict[str, Any]:
    return dict(
        carol.page.evaluate(
            """(id) => {
              const row = document.querySelector(`#videos tr[data-video="${id}"]`);
              const badge = row.querySelector('.video-state .badge');
              const bar = badge.querySelector('progress');
              return {
                row: row.dataset.state, following: 'stateUrl' in row.dataset,
                state: badge.dataset.state, text: badge.textContent.trim(),
                bar: bar ? bar.value : null, title: badge.title,
              };
            }""",
            video_id,
        )
    )


def wait_for_badge(carol: Visitor, video_id: str, attribute: str, value: str) -> dict[str, Any]:
    """Wait until the row's badge has ``data-<attribute>="<value>"``; return :func:`badge`."""
    carol.page.wait_for_function(
        """([id, attribute, value]) => {
          const row = document.querySelector(`#videos tr[data-video="${id}"]`);
          const badge = row && row.querySelector('.video-state .badge');
          return !!badge && badge.dataset[attribute] === value;
        }""",
        arg=[video_id, attribute, value],
        timeout=PAGE_TIMEOUT_MS,
    )
    return badge(carol, video_id)


def test_the_videos_list_moves_a_pending_row_through_processing_to_failed_live(
    carol: Visitor, publishing: Publishing, draft: str
) -> None:
    carol.goto("/admin/videos?q=Live+row&state=uploading")
    first = badge(carol, draft)
    assert (first["state"], first["following"]) == ("uploading", True), first
    navigations: list[str] = []
    carol.page.on("framenavigated", lambda frame: navigations.append(frame.url))

    publishing.start_processing(draft, attempt=1)
    publishing.report_progress(draft, attempt=1, percent=35)
    seen = wait_for_badge(carol, draft, "progress", "35")
    assert seen["state"] == "processing" and seen["row"] == "processing", seen
    assert seen["bar"] == 35 and "35%" in seen["text"], seen
    assert seen["following"] is True

    publishing.mark_failed(draft, reason="the file has no video stream", attempt=1)
    seen = wait_for_badge(carol, draft, "state", "failed")
    assert seen["bar"] is None and seen["title"] == "the file has no video stream", seen
    assert seen["following"] is False, "a finished row is no longer polled"
    assert navigations == []
    carol.problems.assert_clean()
