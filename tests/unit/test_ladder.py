"""The ladder: which rungs a source gets, their sizes, H.264 levels and CODECS strings."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.ladder import (
    DEFAULT_LADDER,
    H264_LEVELS,
    MIN_DIMENSION,
    Ladder,
    LadderError,
    PlannedRendition,
    UnsupportedSourceError,
    VideoRung,
    avc_codecs,
    keyframe_interval_frames,
    level_fits,
    level_name,
    minimum_level,
    output_frame_rate,
    plan,
    progressive_rendition,
)

FPS25 = Fraction(25)
FPS30 = Fraction(30)


def sizes(planned: tuple[PlannedRendition, ...]) -> dict[str, tuple[int, int]]:
    return {r.name: (r.width, r.height) for r in planned}


def test_a_1080p_source_gets_every_rung_at_its_own_size() -> None:
    planned = plan(DEFAULT_LADDER, 1920, 1080, FPS25)
    assert sizes(planned) == {
        "1080p": (1920, 1080),
        "720p": (1280, 720),
        "480p": (854, 480),
        "360p": (640, 360),
        "240p": (426, 240),
    }


def test_a_720p_source_gets_no_1080p_rung() -> None:
    assert list(sizes(plan(DEFAULT_LADDER, 1280, 720, FPS25))) == ["720p", "480p", "360p", "240p"]


def test_a_480p_source_starts_at_480p() -> None:
    assert sizes(plan(DEFAULT_LADDER, 854, 480, FPS25)) == {
        "480p": (854, 480),
        "360p": (640, 360),
        "240p": (426, 240),
    }


def test_an_odd_853x480_source_gets_even_sizes_never_wider_than_itself() -> None:
    assert sizes(plan(DEFAULT_LADDER, 853, 480, FPS25)) == {
        "480p": (852, 480),
        "360p": (640, 360),
        "240p": (426, 240),
    }


def test_a_portrait_source_turns_the_rung_frames() -> None:
    assert sizes(plan(DEFAULT_LADDER, 720, 1280, FPS30)) == {
        "720p": (720, 1280),
        "480p": (480, 854),
        "360p": (360, 640),
        "240p": (240, 426),
    }


def test_a_tiny_source_still_gets_the_lowest_rung_at_its_own_size() -> None:
    planned = plan(DEFAULT_LADDER, 160, 90, FPS25)
    assert sizes(planned) == {"240p": (160, 90)}
    assert planned[0].level == 12  # 60 macroblocks at 25 fps, 300 kb/s peak (High: 1.25 x 384)


def test_a_4_3_source_fits_the_height_of_each_rung() -> None:
    assert sizes(plan(DEFAULT_LADDER, 1440, 1080, FPS25)) == {
        "1080p": (1440, 1080),
        "720p": (960, 720),
        "480p": (640, 480),
        "360p": (480, 360),
        "240p": (320, 240),
    }


def test_a_wide_source_fits_the_width_of_each_rung() -> None:
    assert sizes(plan(DEFAULT_LADDER, 1920, 800, FPS25))["720p"] == (1280, 534)


def test_a_source_just_under_a_rung_does_not_get_it() -> None:
    assert "720p" not in sizes(plan(DEFAULT_LADDER, 1278, 718, FPS25))
    assert "720p" in sizes(plan(DEFAULT_LADDER, 1280, 720, FPS25))


@pytest.mark.parametrize(("width", "height"), [(0, 0), (0, 720), (1280, 0), (-2, 4)])
def test_a_source_without_a_picture_size_is_refused(width: int, height: int) -> None:
    with pytest.raises(UnsupportedSourceError):
        plan(DEFAULT_LADDER, width, height, FPS25)


@pytest.mark.parametrize(("width", "height"), [(1, 1), (15, 15), (4000, 10), (10, 4000)])
def test_a_picture_too_small_for_any_rendition_is_refused(width: int, height: int) -> None:
    with pytest.raises(UnsupportedSourceError):
        plan(DEFAULT_LADDER, width, height, FPS25)


def test_the_smallest_picture_allowed_is_min_dimension_square() -> None:
    assert sizes(plan(DEFAULT_LADDER, MIN_DIMENSION, MIN_DIMENSION, FPS25)) == {
        "240p": (MIN_DIMENSION, MIN_DIMENSION)
    }


def test_a_source_without_a_frame_rate_is_refused() -> None:
    with pytest.raises(UnsupportedSourceError):
        plan(DEFAULT_LADDER, 1280, 720, Fraction(0))


@given(
    width=st.integers(min_value=16, max_value=8192),
    height=st.integers(min_value=16, max_value=8192),
    fps=st.sampled_from([Fraction(24000, 1001), FPS25, FPS30, Fraction(50), Fraction(60)]),
)
def test_every_plan_keeps_the_rules(width: int, height: int, fps: Fraction) -> None:
    try:
        planned = plan(DEFAULT_LADDER, width, height, fps)
    except UnsupportedSourceError:
        # Only pictures so thin that the lowest rendition falls under the minimum.
        assert min(width, height) * 426 / max(width, height) < MIN_DIMENSION + 2
        return
    order = [DEFAULT_LADDER.rungs.index(r.rung) for r in planned]
    assert order == sorted(set(order))  # largest first, each rung once
    for r in planned:
        assert r.width <= width and r.height <= height
        assert r.width % 2 == 0 and r.height % 2 == 0
        assert min(r.width, r.height) >= MIN_DIMENSION
        # The aspect ratio is kept up to the rounding to even pixels.
        assert abs(r.width * height / width - r.height) <= 2 * (1 + height / width)
        # The lowest level that fits: this one does, the one below does not.
        stream = {
            "width": r.width,
            "height": r.height,
            "frame_rate": r.frame_rate,
            "peak_kbps": r.rung.peak_kbps,
            "buffer_kbits": r.rung.buffer_kbits,
            "profile": r.rung.profile,
        }
        index = [level.level_idc for level in H264_LEVELS].index(r.level)
        assert level_fits(H264_LEVELS[index], **stream)  # type: ignore[arg-type]
        assert index == 0 or not level_fits(H264_LEVELS[index - 1], **stream)  # type: ignore[arg-type]


def test_the_level_rises_with_the_frame_rate() -> None:
    at_30 = {r.name: r.level for r in plan(DEFAULT_LADDER, 1920, 1080, FPS30)}
    at_60 = {r.name: r.level for r in plan(DEFAULT_LADDER, 1920, 1080, Fraction(60))}
    assert at_30 == {"1080p": 40, "720p": 31, "480p": 31, "360p": 30, "240p": 21}
    at_25 = {r.name: r.level for r in plan(DEFAULT_LADDER, 1920, 1080, FPS25)}
    assert at_25["480p"] == 30  # 1620 macroblocks x 25 = 40500, the 3.0 limit: no higher
    assert at_60 == {"1080p": 42, "720p": 32, "480p": 31, "360p": 31, "240p": 30}


def test_macroblock_rate_boundary_between_levels_3_1_and_3_2() -> None:
    def level(fps: Fraction) -> int:
        return minimum_level(
            width=1280,
            height=720,
            frame_rate=fps,
            peak_kbps=4500,
            buffer_kbits=9000,
            profile="high",
        )

    assert level(Fraction(30)) == 31  # 3600 macroblocks x 30 = 108000, the 3.1 limit
    assert level(Fraction(3001, 100)) == 32


def test_high_profile_allows_a_quarter_more_bit_rate_than_main() -> None:
    def level(peak: int, profile: str) -> int:
        return minimum_level(
            width=640,
            height=360,
            frame_rate=FPS25,
            peak_kbps=peak,
            buffer_kbits=peak,
            profile=profile,  # type: ignore[arg-type]
        )

    assert level(12_500, "high") == 30
    assert level(12_500, "main") == 31
    assert level(12_501, "high") == 31


def test_nothing_above_level_5_2_exists() -> None:
    with pytest.raises(UnsupportedSourceError):
        minimum_level(
            width=8192,
            height=8192,
            frame_rate=Fraction(120),
            peak_kbps=1000,
            buffer_kbits=1000,
            profile="high",
        )


def test_each_default_rung_declares_the_lowest_level_that_fits_it_at_30_fps() -> None:
    for rung in DEFAULT_LADDER.rungs:
        assert rung.level == minimum_level(
            width=rung.width,
            height=rung.height,
            frame_rate=FPS30,
            peak_kbps=rung.peak_kbps,
            buffer_kbits=rung.buffer_kbits,
            profile=rung.profile,
        ), rung.name


@pytest.mark.parametrize(
    ("profile", "level", "codecs"),
    [
        ("high", 40, "avc1.640028"),
        ("high", 31, "avc1.64001f"),
        ("high", 21, "avc1.640015"),
        ("main", 31, "avc1.4d401f"),
        ("baseline", 30, "avc1.42c01e"),
    ],
)
def test_codecs_strings_come_from_profile_and_level(profile: str, level: int, codecs: str) -> None:
    assert avc_codecs(profile, level) == codecs  # type: ignore[arg-type]


def test_a_planned_rendition_reports_its_own_level_in_codecs() -> None:
    by_name = {r.name: r for r in plan(DEFAULT_LADDER, 1920, 1080, Fraction(60))}
    assert by_name["1080p"].codecs == "avc1.64002a"
    assert by_name["240p"].codecs == "avc1.64001e"
    assert progressive_rendition(plan(DEFAULT_LADDER, 854, 480, FPS25)).codecs == "avc1.64001e"
    assert by_name["1080p"].resolution == "1920x1080"


def test_the_audio_rendition_is_aac_lc() -> None:
    assert DEFAULT_LADDER.audio.codecs == "mp4a.40.2"


def test_level_names() -> None:
    assert [level_name(level.level_idc) for level in H264_LEVELS[:3]] == ["1.0", "1.1", "1.2"]
    assert level_name(42) == "4.2"


def test_frame_rates_above_the_maximum_are_divided() -> None:
    assert output_frame_rate(Fraction(120), Fraction(60)) == 60
    assert output_frame_rate(Fraction(100), Fraction(60)) == 50
    assert output_frame_rate(Fraction(60), Fraction(60)) == 60
    assert output_frame_rate(Fraction(30000, 1001), Fraction(60)) == Fraction(30000, 1001)
    assert plan(DEFAULT_LADDER, 1280, 720, Fraction(120))[0].frame_rate == 60


def test_keyframe_interval_in_frames() -> None:
    assert keyframe_interval_frames(DEFAULT_LADDER, FPS25) == 50
    assert keyframe_interval_frames(DEFAULT_LADDER, Fraction(30000, 1001)) == 60
    assert keyframe_interval_frames(DEFAULT_LADDER, Fraction(1, 10)) == 1


def test_the_progressive_rendition_is_the_middle_one() -> None:
    def middle(width: int, height: int) -> str:
        return progressive_rendition(plan(DEFAULT_LADDER, width, height, FPS25)).name

    assert middle(1920, 1080) == "480p"
    assert middle(1280, 720) == "480p"
    assert middle(854, 480) == "360p"
    assert middle(640, 360) == "360p"
    assert middle(160, 90) == "240p"


def rung(name: str, width: int, height: int, level: int = 31) -> VideoRung:
    return VideoRung(name, width, height, 1000, 1500, 3000, "high", level)


@pytest.mark.parametrize(
    "change",
    [
        {"rungs": ()},
        {"rungs": (rung("a", 640, 360), rung("b", 1280, 720))},
        {"rungs": (rung("a", 640, 360), rung("a", 426, 240))},
        {"rungs": (rung("audio", 640, 360),)},
        {"rungs": (rung("a", 641, 360),)},
        {"rungs": (rung("a", 1920, 1080, level=31),)},
        {"rungs": (VideoRung("a", 640, 360, 2000, 1500, 3000, "high", 31),)},
        {"segment_seconds": 5},
        {"keyframe_seconds": 0},
    ],
)
def test_a_ladder_that_contradicts_itself_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(LadderError):
        dataclasses.replace(DEFAULT_LADDER, **change)  # type: ignore[arg-type]


def test_the_default_ladder_segments_are_whole_key_frame_intervals() -> None:
    ladder: Ladder = DEFAULT_LADDER
    assert ladder.segment_seconds == 4
    assert ladder.segment_seconds % ladder.keyframe_seconds == 0
