"""The adaptive-streaming ladder, as data: the renditions a video is encoded into.

A :class:`Ladder` holds the H.264 video rungs (size, average and peak bit rate,
VBV buffer, profile, level), the AAC-LC audio rendition and the segment and
key-frame timing. :func:`plan` chooses the rungs for one source and sizes them
(never above the source, aspect ratio kept, even dimensions, the lowest H.264
level their size and frame rate need). Nothing here runs an encoder: the local ffmpeg
transcoder and a cloud transcoding job both read the same data. The rules are
in docs/hls-renditions.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Profile = Literal["baseline", "main", "high"]

# profile_idc and the constraint-flag byte an encoder signals for it (x264 sets
# constraint_set0+1 for Baseline and constraint_set1 for Main) (docs/hls-renditions.md#hls-5).
_PROFILE_BYTES: dict[str, tuple[int, int]] = {
    "baseline": (0x42, 0xC0),
    "main": (0x4D, 0x40),
    "high": (0x64, 0x00),
}
# High profile allows 1.25x the bit rate and buffer of Table A-1 (cpbBrVclFactor 1250/1000).
_BIT_RATE_FACTOR: dict[str, float] = {"baseline": 1.0, "main": 1.0, "high": 1.25}

# The smallest width or height a rendition may have; a rung that would be smaller is dropped.
MIN_DIMENSION = 16


@dataclass(frozen=True)
class LevelLimits:
    """One row of H.264 Table A-1 (docs/hls-renditions.md#hls-4)."""

    level_idc: int  # 31 means level 3.1
    max_macroblocks_per_second: int
    max_frame_macroblocks: int
    max_kbps: int  # Baseline/Main; High allows 1.25x
    max_buffer_kbits: int  # Baseline/Main; High allows 1.25x


H264_LEVELS: tuple[LevelLimits, ...] = (
    LevelLimits(10, 1_485, 99, 64, 175),
    LevelLimits(11, 3_000, 396, 192, 500),
    LevelLimits(12, 6_000, 396, 384, 1_000),
    LevelLimits(13, 11_880, 396, 768, 2_000),
    LevelLimits(20, 11_880, 396, 2_000, 2_000),
    LevelLimits(21, 19_800, 792, 4_000, 4_000),
    LevelLimits(22, 20_250, 1_620, 4_000, 4_000),
    LevelLimits(30, 40_500, 1_620, 10_000, 10_000),
    LevelLimits(31, 108_000, 3_600, 14_000, 14_000),
    LevelLimits(32, 216_000, 5_120, 20_000, 20_000),
    LevelLimits(40, 245_760, 8_192, 20_000, 25_000),
    LevelLimits(41, 245_760, 8_192, 50_000, 62_500),
    LevelLimits(42, 522_240, 8_704, 50_000, 62_500),
    LevelLimits(50, 589_824, 22_080, 135_000, 135_000),
    LevelLimits(51, 983_040, 36_864, 240_000, 240_000),
    LevelLimits(52, 2_073_600, 36_864, 240_000, 240_000),
)


class LadderError(ValueError):
    """A ladder definition that contradicts itself."""


class UnsupportedSourceError(ValueError):
    """The source cannot be encoded by the ladder (its size or frame rate is unusable)."""


def level_name(level_idc: int) -> str:
    """``31`` → ``"3.1"``."""
    return f"{level_idc // 10}.{level_idc % 10}"


def _macroblocks(pixels: int) -> int:
    return math.ceil(pixels / 16)


def level_fits(
    level: LevelLimits,
    *,
    width: int,
    height: int,
    frame_rate: Fraction,
    peak_kbps: int,
    buffer_kbits: int,
    profile: Profile,
) -> bool:
    """Whether a stream of this size, rate and VBV fits the level's limits."""
    mb_w, mb_h = _macroblocks(width), _macroblocks(height)
    frame_mbs = mb_w * mb_h
    side_limit = math.sqrt(8 * level.max_frame_macroblocks)
    factor = _BIT_RATE_FACTOR[profile]
    return (
        frame_mbs <= level.max_frame_macroblocks
        and mb_w <= side_limit
        and mb_h <= side_limit
        and frame_mbs * frame_rate <= level.max_macroblocks_per_second
        and peak_kbps <= level.max_kbps * factor
        and buffer_kbits <= level.max_buffer_kbits * factor
    )


def minimum_level(
    *,
    width: int,
    height: int,
    frame_rate: Fraction,
    peak_kbps: int,
    buffer_kbits: int,
    profile: Profile,
) -> int:
    """The lowest H.264 level (``level_idc``) whose limits the stream fits.

    :raises UnsupportedSourceError: if no level up to 5.2 fits.
    """
    for level in H264_LEVELS:
        if level_fits(
            level,
            width=width,
            height=height,
            frame_rate=frame_rate,
            peak_kbps=peak_kbps,
            buffer_kbits=buffer_kbits,
            profile=profile,
        ):
            return level.level_idc
    raise UnsupportedSourceError(
        f"{width}x{height} at {float(frame_rate):.3f} fps exceeds every H.264 level"
    )


def avc_codecs(profile: Profile, level_idc: int) -> str:
    """The RFC 6381 ``CODECS`` value ``avc1.PPCCLL`` (docs/hls-renditions.md#hls-5)."""
    profile_idc, constraints = _PROFILE_BYTES[profile]
    return f"avc1.{profile_idc:02x}{constraints:02x}{level_idc:02x}"


@dataclass(frozen=True)
class VideoRung:
    """One H.264 rendition of the ladder, for a 16:9 landscape frame.

    ``level`` is the rung's level at its full size and up to 30 frames a second.
    :func:`plan` encodes each source at the lowest level its real size and rate
    need, which is lower for a smaller picture and higher above 30 fps
    (docs/hls-renditions.md#hls-4).
    """

    name: str
    width: int
    height: int
    average_kbps: int
    peak_kbps: int
    buffer_kbits: int
    profile: Profile
    level: int


@dataclass(frozen=True)
class AudioRendition:
    """The one audio rendition every variant plays (an HLS audio group)."""

    name: str
    group_id: str
    bitrate_kbps: int
    channels: int
    sample_rate: int
    # MPEG-4 Audio Object Type 2 is AAC-LC (docs/hls-renditions.md#hls-5).
    object_type: int = 2

    @property
    def codecs(self) -> str:
        return f"mp4a.40.{self.object_type}"


@dataclass(frozen=True)
class Ladder:
    """Video rungs from the largest down, the audio rendition, and segment timing."""

    rungs: tuple[VideoRung, ...]
    audio: AudioRendition
    segment_seconds: int
    keyframe_seconds: int
    max_frame_rate: Fraction

    def __post_init__(self) -> None:
        if not self.rungs:
            raise LadderError("a ladder needs at least one rung")
        names = [r.name for r in self.rungs] + [self.audio.name]
        if len(set(names)) != len(names):
            raise LadderError(f"rendition names repeat: {names}")
        heights = [r.height for r in self.rungs]
        if heights != sorted(heights, reverse=True) or len(set(heights)) != len(heights):
            raise LadderError("rungs must go from the largest down")
        # A segment must end on a key frame (docs/hls-renditions.md#hls-2).
        if self.keyframe_seconds <= 0 or self.segment_seconds % self.keyframe_seconds:
            raise LadderError("the segment duration must be a multiple of the key-frame interval")
        for rung in self.rungs:
            if rung.width % 2 or rung.height % 2:
                raise LadderError(f"{rung.name}: 4:2:0 video needs even dimensions")
            if not rung.average_kbps <= rung.peak_kbps <= rung.buffer_kbits:
                raise LadderError(f"{rung.name}: needs average <= peak <= buffer")
            needed = minimum_level(
                width=rung.width,
                height=rung.height,
                frame_rate=Fraction(30),
                peak_kbps=rung.peak_kbps,
                buffer_kbits=rung.buffer_kbits,
                profile=rung.profile,
            )
            if rung.level < needed:
                raise LadderError(f"{rung.name}: level {level_name(rung.level)} is too low")


# Sizes and rates after Apple's HLS authoring ladder (docs/hls-renditions.md#hls-1);
# peak = 1.5x average, VBV buffer = 2x peak.
DEFAULT_LADDER = Ladder(
    rungs=(
        VideoRung("1080p", 1920, 1080, 6000, 9000, 18000, "high", 40),
        VideoRung("720p", 1280, 720, 3000, 4500, 9000, "high", 31),
        VideoRung("480p", 854, 480, 1400, 2100, 4200, "high", 31),
        VideoRung("360p", 640, 360, 730, 1100, 2200, "high", 30),
        VideoRung("240p", 426, 240, 200, 300, 600, "high", 21),  # fits a 500 kb/s line with audio
    ),
    audio=AudioRendition("audio", "audio", bitrate_kbps=128, channels=2, sample_rate=48_000),
    segment_seconds=4,
    keyframe_seconds=2,
    max_frame_rate=Fraction(60),
)


@dataclass(frozen=True)
class PlannedRendition:
    """A rung as it will be encoded for one source: its real size, frame rate and level."""

    rung: VideoRung
    width: int
    height: int
    frame_rate: Fraction
    level: int

    @property
    def name(self) -> str:
        return self.rung.name

    @property
    def codecs(self) -> str:
        return avc_codecs(self.rung.profile, self.level)

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"


def output_frame_rate(source: Fraction, maximum: Fraction) -> Fraction:
    """The source's own rate, or the largest whole fraction of it within ``maximum``."""
    if source <= 0:
        raise UnsupportedSourceError("the source has no usable frame rate")
    divisor = math.ceil(source / maximum)
    return source / divisor


def keyframe_interval_frames(ladder: Ladder, frame_rate: Fraction) -> int:
    """Frames between key frames (at least one)."""
    return max(1, round(ladder.keyframe_seconds * frame_rate))


def _even(value: float, limit: int) -> int:
    """The nearest even number (halves up), never above ``limit`` rounded down to even."""
    return min(2 * math.floor(value / 2 + 0.5), limit - limit % 2)


def _scale_into(width: int, height: int, rung: VideoRung) -> float:
    """The factor that fits the source inside the rung's frame (turned for portrait)."""
    box_w, box_h = (rung.height, rung.width) if height > width else (rung.width, rung.height)
    return min(box_w / width, box_h / height)


def plan(
    ladder: Ladder, width: int, height: int, frame_rate: Fraction
) -> tuple[PlannedRendition, ...]:
    """Choose and size the rungs for a source of ``width`` x ``height`` (display size).

    A rung is chosen when the source reaches its frame in at least one dimension, so
    no rendition is larger than the source; a smaller source still gets the lowest
    rung, at the source's own size. Largest first.

    :raises UnsupportedSourceError: zero or tiny sizes, or no usable frame rate.
    """
    if width <= 0 or height <= 0:
        raise UnsupportedSourceError(f"the source has no picture size ({width}x{height})")
    rate = output_frame_rate(frame_rate, ladder.max_frame_rate)
    chosen = [r for r in ladder.rungs if _scale_into(width, height, r) <= 1]
    if not chosen:
        chosen = [ladder.rungs[-1]]
    planned: list[PlannedRendition] = []
    for rung in chosen:
        scale = min(_scale_into(width, height, rung), 1.0)
        out_w, out_h = _even(width * scale, width), _even(height * scale, height)
        if min(out_w, out_h) < MIN_DIMENSION:
            continue
        level = minimum_level(
            width=out_w,
            height=out_h,
            frame_rate=rate,
            peak_kbps=rung.peak_kbps,
            buffer_kbits=rung.buffer_kbits,
            profile=rung.profile,
        )
        planned.append(PlannedRendition(rung, out_w, out_h, rate, level))
    if not planned:
        raise UnsupportedSourceError(
            f"a {width}x{height} picture is too small: every rendition needs at least "
            f"{MIN_DIMENSION}x{MIN_DIMENSION} pixels"
        )
    return tuple(planned)


def progressive_rendition(planned: tuple[PlannedRendition, ...]) -> PlannedRendition:
    """The middle rendition (the upper one of two): the MP4 fallback and the first variant."""
    return planned[(len(planned) - 1) // 2]
