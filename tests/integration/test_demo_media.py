"""Demo media: generated through the transcoder once, reused while nothing changed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import m3u8
import pytest

from app.ladder import DEFAULT_LADDER
from app.local.media import DEMO_VIDEOS, DemoVideo, ensure_demo_media

pytestmark = pytest.mark.integration

TINY = DemoVideo("tiny", "Tiny", "A two-second clip.", "free", 2, "testsrc2", 440, "426x240")


def stamps(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_demo_media_is_generated_once_and_reused(tmp_path: Path) -> None:
    first = ensure_demo_media(tmp_path, demos=(TINY,))["tiny"]
    assert first.video == tmp_path / "tiny" / "240p.mp4"
    assert first.poster.is_file() and first.video.is_file()
    assert first.duration_seconds == pytest.approx(2, abs=0.1)
    master = m3u8.load(str(first.master))
    assert [p.stream_info.resolution for p in master.playlists] == [(426, 240)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no scratch left

    before = stamps(tmp_path / "tiny")
    again = ensure_demo_media(tmp_path, demos=(TINY,))["tiny"]
    assert again == first
    assert stamps(tmp_path / "tiny") == before


def test_a_changed_ladder_or_a_missing_file_regenerates(tmp_path: Path) -> None:
    first = ensure_demo_media(tmp_path, demos=(TINY,))["tiny"]
    fingerprint = json.loads((tmp_path / "manifest.json").read_text())["tiny"]["fingerprint"]

    first.poster.unlink()
    assert ensure_demo_media(tmp_path, demos=(TINY,))["tiny"].poster.is_file()

    audio = dataclasses.replace(DEFAULT_LADDER.audio, bitrate_kbps=96)
    ensure_demo_media(
        tmp_path, demos=(TINY,), ladder=dataclasses.replace(DEFAULT_LADDER, audio=audio)
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["tiny"]["fingerprint"] != fingerprint


def test_an_old_layout_is_cleared(tmp_path: Path) -> None:
    (tmp_path / "tiny.mp4").write_bytes(b"old")
    (tmp_path / "tiny.jpg").write_bytes(b"old")
    (tmp_path / "manifest.json").write_text(json.dumps({"tiny": 2.0}))
    ensure_demo_media(tmp_path, demos=(TINY,))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "tiny"]


def test_at_least_one_demo_is_long_enough_to_show_rendition_switching() -> None:
    assert max(d.seconds for d in DEMO_VIDEOS) >= 60
    widths = [int(d.size.split("x")[0]) for d in DEMO_VIDEOS if d.seconds >= 60]
    assert max(widths) >= 1280  # several rungs: 720p down to 240p
