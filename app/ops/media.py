"""ffmpeg for operator tools: probe a media file, take a poster frame, encode a test clip.

The binary comes from the imageio-ffmpeg wheel (no system ffmpeg, no ffprobe).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, replace
from fractions import Fraction
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
    out: Path,
    *,
    seconds: int,
    pattern: str = "testsrc2",
    tone_hz: int = 440,
    size: str = "640x360",
    preset: str = "veryfast",
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
            preset,
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


class MediaProbeError(ValueError):
    """ffmpeg cannot read the file, or reading it stops early (damaged or truncated)."""


@dataclass(frozen=True)
class MediaInfo:
    """What the first video and audio streams of a file are.

    ``width`` x ``height`` is the size the picture is shown at: ffmpeg's decoder
    turns rotated video upright and square pixels are what renditions use, so a
    rotation of 90 degrees swaps the sides and a non-square SAR widens the width.
    Both are 0 and ``frame_rate`` is 0 when there is no video.
    """

    duration: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    frame_rate: Fraction = Fraction(0)
    video_index: int = 0  # which video stream (0:v:N): cover art is skipped


_STREAM = re.compile(r"^\s*Stream #\d+:\d+\S*: (\w+): (.*)$")
_SIZE = re.compile(r"^(\d+)x(\d+)(?:\s|$)")
_SAR = re.compile(r"\bSAR (\d+):(\d+)")
_RATE = re.compile(r"^(\d+(?:\.\d+)?)(k?) (fps|tbr)$")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_DURATION = re.compile(r"^\s*Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_TIME = re.compile(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)")
_NTSC_BASES = (24, 30, 48, 60, 120)


def _split_fields(details: str) -> list[str]:
    """Split a stream description at commas outside parentheses and brackets."""
    fields: list[str] = []
    depth, start = 0, 0
    for i, char in enumerate(details):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            fields.append(details[start:i].strip())
            start = i + 1
    fields.append(details[start:].strip())
    return fields


def _frame_rate(number: str, kilo: str) -> Fraction:
    """ffmpeg prints rates rounded to 2 decimals: 29.97 is 30000/1001."""
    value = float(number) * (1000 if kilo else 1)
    for base in _NTSC_BASES:
        ntsc = Fraction(base * 1000, 1001)
        if abs(value - float(ntsc)) < 0.006:
            return ntsc
    return Fraction(number).limit_denominator(1001) * (1000 if kilo else 1)


def _seconds(match: re.Match[str]) -> float:
    return int(match[1]) * 3600 + int(match[2]) * 60 + float(match[3])


def parse_probe(stderr: str) -> MediaInfo | None:
    """Read the input description ``ffmpeg -i`` prints; ``None`` if no input was opened."""
    lines = stderr.splitlines()
    try:
        first = next(i for i, line in enumerate(lines) if line.startswith("Input #0"))
    except StopIteration:
        return None
    duration: float | None = None
    video: MediaInfo | None = None
    has_audio = False
    video_ordinal = -1
    in_video = False
    for line in lines[first + 1 :]:
        if line.startswith(("Output #", "Stream mapping:", "Input #1")):
            break
        if (m := _DURATION.match(line)) is not None:
            duration = _seconds(m)
            continue
        stream = _STREAM.match(line)
        if stream is None:
            turn = _ROTATION.search(line) if in_video and video is not None else None
            if video is not None and turn is not None and round(float(turn[1])) % 180 == 90:
                video = replace(video, width=video.height, height=video.width)
            continue
        in_video = False
        kind, details = stream[1], stream[2]
        if kind == "Audio":
            has_audio = True
        if kind != "Video":
            continue
        video_ordinal += 1
        if video is not None or "(attached pic)" in details:
            continue
        fields = _split_fields(details)
        size = next((m for f in fields if (m := _SIZE.match(f))), None)
        if size is None:
            continue
        width, height = int(size[1]), int(size[2])
        if (sar := _SAR.search(details)) is not None and int(sar[1]) and int(sar[2]):
            width = round(width * int(sar[1]) / int(sar[2]))
        rates = {m[3]: _frame_rate(m[1], m[2]) for f in fields if (m := _RATE.match(f))}
        rate = rates.get("fps") or rates.get("tbr") or Fraction(0)
        video = MediaInfo(0.0, True, False, width, height, rate, video_ordinal)
        in_video = True
    if duration is None:
        # No container duration (a raw stream): the time ffmpeg reached reading it.
        times = list(_TIME.finditer(stderr))
        duration = _seconds(times[-1]) if times else 0.0
    if video is None:
        return MediaInfo(duration, False, has_audio)
    return replace(video, duration=duration, has_audio=has_audio)


def probe(path: Path) -> MediaInfo:
    """Describe ``path`` by reading every packet of it with ffmpeg (no ffprobe in the wheel).

    Packets are copied, not decoded, so this is fast; ``-xerror`` makes a demuxing
    error (a truncated or damaged file) fail instead of ending the read early.

    :raises MediaProbeError: ffmpeg cannot open the file, or it is damaged or truncated.
    """
    proc = subprocess.run(  # noqa: S603 - fixed argv, the wheel's own ffmpeg
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-xerror",
            "-i",
            str(path.absolute()),  # a name starting with "-" must not read as an option
            "-map",
            "0:v?",
            "-map",
            "0:a?",
            "-c",
            "copy",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        errors="replace",
        stdin=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )
    info = parse_probe(proc.stderr)
    if info is None:
        raise MediaProbeError(f"{path.name} is not a media file ffmpeg can read")
    if proc.returncode != 0 and (info.has_video or info.has_audio):
        raise MediaProbeError(f"{path.name} is damaged or truncated: ffmpeg stops reading it")
    return info


def probe_duration(path: Path) -> float:
    """Duration in seconds of a video file.

    :raises ValueError: if ffmpeg cannot read the file or finds no video stream in it.
    """
    info = probe(path)
    if not info.has_video:
        raise MediaProbeError(f"{path.name} is not a video file ffmpeg can read")
    return info.duration
