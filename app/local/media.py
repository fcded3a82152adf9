"""Demo media, generated on the spot with the ffmpeg binary of the imageio-ffmpeg wheel.

Each demo video is H.264/AAC in MP4 with ``+faststart`` (the index at the front,
so a browser can start playing before the whole file arrives) and a JPEG
poster. Files are cached in the state folder: a second ``make dev`` reuses them.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal


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


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _run(args: list[str]) -> None:
    subprocess.run(  # noqa: S603 - fixed argv, the wheel's own ffmpeg
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def encode_clip(
    out: Path, *, seconds: int, pattern: str = "testsrc2", tone_hz: int = 440, size: str = "640x360"
) -> None:
    """Encode a synthetic H.264/AAC MP4 with faststart (used for demos and tests)."""
    source = f"{pattern}=size={size}:rate=25:duration={seconds}"
    if pattern == "mandelbrot":
        source = f"mandelbrot=size={size}:rate=25,trim=duration={seconds}"
    _run(
        [
            "-f",
            "lavfi",
            "-i",
            source,
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={tone_hz}:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-profile:v",
            "main",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "50",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-movflags",
            "+faststart",
            "-shortest",
            str(out),
        ]
    )


def make_poster(video: Path, out: Path, *, at_seconds: float = 1.0) -> None:
    """Take one frame as a JPEG poster."""
    _run(["-ss", f"{at_seconds:.2f}", "-i", str(video), "-frames:v", "1", "-q:v", "4", str(out)])


def probe_duration(path: Path) -> float:
    """Duration in seconds, read by decoding the container with ffmpeg (no ffprobe in the wheel).

    :raises ValueError: if ffmpeg finds no video stream (not a video file).
    """
    proc = subprocess.run(  # noqa: S603
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    duration = None
    for line in proc.stderr.splitlines():
        line = line.strip()
        if line.startswith("Duration:"):
            stamp = line.split(",")[0].split(":", 1)[1].strip()
            if stamp != "N/A":
                hours, minutes, secs = stamp.split(":")
                duration = int(hours) * 3600 + int(minutes) * 60 + float(secs)
    if proc.returncode != 0 or duration is None or "Video:" not in proc.stderr:
        raise ValueError(f"{path.name} is not a video file ffmpeg can read")
    return duration


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
