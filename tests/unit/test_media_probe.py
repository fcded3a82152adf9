"""Reading ffmpeg's description of an input: size, rate, rotation, streams, duration."""

from __future__ import annotations

from fractions import Fraction

from app.ops.media import parse_probe

HEADER = """ffmpeg version n9.0.2 Copyright (c) 2000-2026 the FFmpeg developers
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'clip.mp4':
  Metadata:
    major_brand     : isom
  Duration: 00:01:02.50, start: 0.000000, bitrate: 783 kb/s
"""
VIDEO = (
    "  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), "
    "yuv420p(tv, bt709, progressive), 1920x1080 [SAR 1:1 DAR 16:9], 5000 kb/s, "
    "29.97 fps, 29.97 tbr, 30k tbn (default)\n"
)
AUDIO = "  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp\n"
OUTPUT = """Stream mapping:
  Stream #0:0 -> #0:0 (copy)
Output #0, null, to 'pipe:':
  Stream #0:0(und): Video: h264 (High), yuv420p, 320x240, q=2-31
[out#0/null] video:1KiB audio:0KiB
frame= 1875 fps=0.0 q=-1.0 Lsize=N/A time=00:01:02.46 bitrate=N/A speed= 900x
"""


def test_a_video_with_audio() -> None:
    info = parse_probe(HEADER + VIDEO + AUDIO + OUTPUT)
    assert info is not None
    assert (info.width, info.height) == (1920, 1080)
    assert info.frame_rate == Fraction(30000, 1001)
    assert info.duration == 62.5
    assert info.has_video and info.has_audio
    assert info.video_index == 0


def test_a_rotated_phone_video_is_reported_upright() -> None:
    rotated = VIDEO + "    Side data:\n      Display Matrix: rotation of -90.00 degrees\n"
    info = parse_probe(HEADER + rotated + AUDIO)
    assert info is not None
    assert (info.width, info.height) == (1080, 1920)


def test_a_half_turn_keeps_the_sides() -> None:
    rotated = VIDEO + "    Side data:\n      displaymatrix: rotation of 180.00 degrees\n"
    info = parse_probe(HEADER + rotated)
    assert info is not None
    assert (info.width, info.height) == (1920, 1080)


def test_non_square_pixels_widen_the_picture() -> None:
    anamorphic = (
        "  Stream #0:0: Video: h264 (High), yuv420p(progressive), 720x576 [SAR 16:15 DAR 4:3], "
        "25 fps, 25 tbr, 1k tbn\n"
    )
    info = parse_probe(HEADER + anamorphic)
    assert info is not None
    assert (info.width, info.height, info.frame_rate) == (768, 576, Fraction(25))


def test_the_codec_tag_is_not_mistaken_for_a_size() -> None:
    # "0x31637661" looks like WxH; the size is the field that starts with digits x digits.
    info = parse_probe(HEADER + VIDEO)
    assert info is not None
    assert info.width == 1920


def test_cover_art_is_not_the_video() -> None:
    cover = (
        "  Stream #0:2: Video: mjpeg (Baseline), yuvj420p(pc), 600x600 [SAR 1:1 DAR 1:1], "
        "90k tbr, 90k tbn (attached pic)\n"
    )
    audio_with_cover = parse_probe(HEADER + AUDIO + cover)
    assert audio_with_cover is not None
    assert not audio_with_cover.has_video and audio_with_cover.has_audio
    both = parse_probe(HEADER + cover + VIDEO)
    assert both is not None
    assert both.has_video and both.video_index == 1 and both.width == 1920


def test_an_audio_file() -> None:
    info = parse_probe(HEADER + AUDIO)
    assert info is not None
    assert not info.has_video and info.has_audio
    assert info.duration == 62.5
    assert (info.width, info.height, info.frame_rate) == (0, 0, Fraction(0))


def test_only_the_tbr_rate_is_used_when_fps_is_missing() -> None:
    raw = "  Stream #0:0: Video: h264 (High), yuv420p(progressive), 640x360, 59.94 tbr, 1200k tbn\n"
    info = parse_probe(HEADER + raw)
    assert info is not None
    assert info.frame_rate == Fraction(60000, 1001)


def test_without_a_container_duration_the_time_read_is_used() -> None:
    header = HEADER.replace("Duration: 00:01:02.50", "Duration: N/A")
    info = parse_probe(header + VIDEO + OUTPUT)
    assert info is not None
    assert info.duration == 62.46


def test_nothing_opened_is_none() -> None:
    stderr = "[in#0 @ 0x1] Error opening input: Invalid data found when processing input\n"
    assert parse_probe(stderr) is None


def test_output_streams_are_not_read_as_input_streams() -> None:
    info = parse_probe(HEADER + AUDIO + OUTPUT)
    assert info is not None
    assert not info.has_video
