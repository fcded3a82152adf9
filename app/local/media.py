"""Demo media, generated on the spot with the ffmpeg binary of the imageio-ffmpeg wheel.

Each demo video is H.264/AAC in MP4 with ``+faststart`` (the index at the front,
so a browser can start playing before the whole file arrives) and a JPEG
poster. Files are cached in the state folder: a second ``make dev`` reuses them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.ops.media import encode_clip, make_poster, probe_duration


@dataclass(frozen=True)
class DemoVideo:
    video_id: str
    title: str
    description: str
    tier: Literal["free", "premium"]
    seconds: int
    pattern: str
    tone_hz: int


DEMO_VIDEOS: tuple[DemoVideo, ...] = (
    DemoVideo(
        "free-sampler",
        "Free sampler",
        "A taste of the catalog, free for every signed-in viewer.",
        "free",
        12,
        "testsrc2",
        440,
    ),
    DemoVideo(
        "premium-aurora",
        "Aurora (premium)",
        "Twenty seconds of colour bars for our premium members.",
        "premium",
        20,
        "smptehdbars",
        523,
    ),
    DemoVideo(
        "premium-mandelbrot",
        "Mandelbrot zoom (premium)",
        "A premium journey into the Mandelbrot set.",
        "premium",
        24,
        "mandelbrot",
        659,
    ),
)


@dataclass(frozen=True)
class MediaFiles:
    video: Path
    poster: Path
    duration_seconds: float


def ensure_demo_media(media_dir: Path) -> dict[str, MediaFiles]:
    """Generate (or reuse) the demo clips and posters under ``media_dir``."""
    media_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = media_dir / "manifest.json"
    manifest: dict[str, float] = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
    result: dict[str, MediaFiles] = {}
    for demo in DEMO_VIDEOS:
        video = media_dir / f"{demo.video_id}.mp4"
        poster = media_dir / f"{demo.video_id}.jpg"
        if demo.video_id not in manifest or not video.exists() or not poster.exists():
            tmp = video.with_suffix(".tmp.mp4")
            encode_clip(tmp, seconds=demo.seconds, pattern=demo.pattern, tone_hz=demo.tone_hz)
            tmp.replace(video)
            make_poster(video, poster)
            manifest[demo.video_id] = probe_duration(video)
            manifest_path.write_text(json.dumps(manifest, indent=2))
        result[demo.video_id] = MediaFiles(video, poster, manifest[demo.video_id])
    return result
