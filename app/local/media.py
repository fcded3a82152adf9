"""Demo media, generated on the spot with the ffmpeg binary of the imageio-ffmpeg wheel.

Each demo video is a synthetic clip run through the transcoder
(:func:`app.ops.transcode.transcode`): HLS renditions of the ladder, an
H.264/AAC MP4 progressive fallback with ``+faststart`` and a JPEG poster, in
``media_dir/<video id>/``. The clip itself is a temporary file. Results are
cached in the state folder: a second ``make dev`` reuses them, unless the
demo's definition or the ladder changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from app.ladder import DEFAULT_LADDER, Ladder
from app.ops.media import encode_clip
from app.ops.transcode import HLS_DIR, MASTER, POSTER, ProgressCallback, transcode

log = logging.getLogger("vidgate.media")

# Bump when the transcoder's output changes in a way the ladder's data does not show.
_OUTPUT_FORMAT = 2


@dataclass(frozen=True)
class DemoVideo:
    video_id: str
    title: str
    description: str
    tier: Literal["free", "premium"]
    seconds: int
    pattern: str
    tone_hz: int
    size: str  # of the generated clip: the ladder never goes above it


DEMO_VIDEOS: tuple[DemoVideo, ...] = (
    DemoVideo(
        "free-sampler",
        "Free sampler",
        "A taste of the catalog, free for every signed-in viewer: a minute of moving "
        "test patterns in four qualities, from 720p down to 240p.",
        "free",
        60,
        "testsrc2",
        440,
        "1280x720",
    ),
    DemoVideo(
        "premium-aurora",
        "Aurora (premium)",
        "Twenty seconds of colour bars for our premium members.",
        "premium",
        20,
        "smptehdbars",
        523,
        "854x480",
    ),
    DemoVideo(
        "premium-mandelbrot",
        "Mandelbrot zoom (premium)",
        "A premium journey into the Mandelbrot set.",
        "premium",
        24,
        "mandelbrot",
        659,
        "640x360",
    ),
)


@dataclass(frozen=True)
class MediaFiles:
    """One demo video's files: ``hls_dir`` holds ``master.m3u8`` and a folder per rendition."""

    video: Path  # the MP4 progressive fallback
    poster: Path
    duration_seconds: float
    hls_dir: Path

    @property
    def master(self) -> Path:
        return self.hls_dir / MASTER


def _fingerprint(demo: DemoVideo, ladder: Ladder) -> str:
    text = repr((demo, ladder, _OUTPUT_FORMAT))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cached(out_dir: Path, entry: dict[str, Any]) -> MediaFiles | None:
    video = out_dir / str(entry.get("mp4", ""))
    files = MediaFiles(video, out_dir / POSTER, float(entry["duration"]), out_dir / HLS_DIR)
    if video.is_file() and files.poster.is_file() and files.master.is_file():
        return files
    return None


def ensure_demo_media(
    media_dir: Path,
    *,
    demos: tuple[DemoVideo, ...] = DEMO_VIDEOS,
    ladder: Ladder = DEFAULT_LADDER,
    progress: ProgressCallback | None = None,
) -> dict[str, MediaFiles]:
    """Generate (or reuse) each demo's renditions, MP4 fallback and poster under ``media_dir``.

    ``progress`` gets the percentage of each demo being generated (0-100 per video).
    """
    media_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = media_dir / "manifest.json"
    manifest: dict[str, Any] = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
    result: dict[str, MediaFiles] = {}
    for demo in demos:
        out_dir = media_dir / demo.video_id
        fingerprint = _fingerprint(demo, ladder)
        entry = manifest.get(demo.video_id)
        if isinstance(entry, dict) and entry.get("fingerprint") == fingerprint:
            cached = _cached(out_dir, entry)
            if cached is not None:
                result[demo.video_id] = cached
                continue
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=media_dir, prefix=".clip-") as scratch:
            clip = Path(scratch) / f"{demo.video_id}.mp4"
            # The clip is only a source: encode it fast and well, the ladder sets the quality.
            encode_clip(
                clip,
                seconds=demo.seconds,
                pattern=demo.pattern,
                tone_hz=demo.tone_hz,
                size=demo.size,
                preset="ultrafast",
            )
            renditions = transcode(clip, out_dir, ladder=ladder, progress=progress)
        log.info(
            "demo video %s: %d renditions in %.1f s",
            demo.video_id,
            len(renditions.variants),
            time.monotonic() - started,
        )
        manifest[demo.video_id] = {
            "fingerprint": fingerprint,
            "duration": renditions.duration_seconds,
            "mp4": renditions.mp4.name,
        }
        manifest_path.write_text(json.dumps(manifest, indent=2))
        _remove_old_layout(media_dir, demo.video_id)
        result[demo.video_id] = MediaFiles(
            renditions.mp4, renditions.poster, renditions.duration_seconds, renditions.hls_dir
        )
    return result


def _remove_old_layout(media_dir: Path, video_id: str) -> None:
    """Earlier versions kept ``<id>.mp4`` and ``<id>.jpg`` beside the manifest."""
    for name in (f"{video_id}.mp4", f"{video_id}.jpg", f"{video_id}.tmp.mp4"):
        (media_dir / name).unlink(missing_ok=True)
