"""ffmpeg for operator tools: probe a video, take a poster frame, encode a test clip.

The binary comes from the imageio-ffmpeg wheel (no system ffmpeg, no ffprobe).
"""

from __future__ import annotations

import subprocess
from pathlib import Path


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
