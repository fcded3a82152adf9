"""HLS playlists: measured bit rates (RFC 8216 definitions), reading media playlists, the master."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import m3u8
import pytest

from app.ops.hls import (
    AudioGroup,
    PlaylistError,
    Segment,
    VariantStream,
    average_bit_rate,
    hls_files,
    master_playlist,
    peak_bit_rate,
    read_media_playlist,
)
from app.ops.transcode import ProgressParser


def seg(duration: float, size: int) -> Segment:
    return Segment("s.m4s", duration, size)


def test_the_peak_is_the_busiest_single_segment_when_segments_are_the_target_duration() -> None:
    segments = [seg(4, 1000), seg(4, 3000), seg(4, 2000)]
    assert peak_bit_rate(segments, 4) == 6000  # 3000 bytes * 8 / 4 s


def test_the_peak_considers_runs_of_short_segments() -> None:
    # Two 2 s segments together last 4 s (within 0.5-1.5 x target); so does each alone (2 s).
    segments = [seg(2, 1000), seg(2, 1000), seg(4, 1000)]
    assert peak_bit_rate(segments, 4) == 4000  # one 2 s segment: 1000 * 8 / 2


def test_a_run_of_one_and_a_half_targets_counts_and_a_longer_one_does_not() -> None:
    # Target 4 s: the 5 s + 1 s run lasts exactly 6 s; with 1.01 s it lasts 6.01 s.
    assert peak_bit_rate([seg(5, 500), seg(1, 1000)], 4) == 2000  # 1500 * 8 / 6
    assert peak_bit_rate([seg(5, 500), seg(1.01, 1000)], 4) == 800  # the 5 s segment alone


def test_a_segment_of_half_the_target_counts_alone_and_a_shorter_one_does_not() -> None:
    assert peak_bit_rate([seg(2, 1000), seg(4, 400)], 4) == 4000
    assert peak_bit_rate([seg(1.99, 1000), seg(4, 400)], 4) == 1870  # ceil(11200 / 5.99)


def test_when_no_run_qualifies_the_busiest_segment_is_the_peak() -> None:
    assert peak_bit_rate([seg(1, 100)], 4) == 800


def test_the_average_is_all_bytes_over_all_seconds() -> None:
    assert average_bit_rate([seg(4, 1000), seg(4, 3000), seg(2, 1000)]) == 4000
    assert average_bit_rate([]) == 0


def write_playlist(folder: Path, body: str, files: dict[str, int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, size in files.items():
        (folder / name).write_bytes(b"\0" * size)
    path = folder / "index.m3u8"
    path.write_text(body)
    return path


PLAYLIST = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init_360p.mp4"
#EXTINF:4.000000,
seg_00000.m4s
#EXTINF:2.000000,
seg_00001.m4s
#EXT-X-ENDLIST
"""


def test_a_media_playlist_is_read_with_segment_sizes(tmp_path: Path) -> None:
    files = {"init_360p.mp4": 700, "seg_00000.m4s": 4000, "seg_00001.m4s": 1500}
    playlist = read_media_playlist(write_playlist(tmp_path, PLAYLIST, files))
    assert playlist.version == 7
    assert playlist.target_duration == 4
    assert playlist.init_uri == "init_360p.mp4"
    assert [(s.uri, s.duration, s.size) for s in playlist.segments] == [
        ("seg_00000.m4s", 4.0, 4000),
        ("seg_00001.m4s", 2.0, 1500),
    ]
    assert playlist.duration == 6.0
    # The initialization section counts in neither rate.
    assert playlist.average_bit_rate == 7334  # ceil(5500 * 8 / 6)
    assert playlist.peak_bit_rate == 8000


@pytest.mark.parametrize(
    ("body", "files"),
    [
        (PLAYLIST, {"init_360p.mp4": 1, "seg_00000.m4s": 1}),
        (PLAYLIST, {"seg_00000.m4s": 1, "seg_00001.m4s": 1}),
        (PLAYLIST.replace("#EXT-X-ENDLIST\n", ""), {"init_360p.mp4": 1, "seg_00000.m4s": 1}),
        (PLAYLIST.replace("#EXTINF:2.000000,\n", ""), {"init_360p.mp4": 1, "seg_00000.m4s": 1}),
        (
            PLAYLIST.replace('#EXT-X-MAP:URI="init_360p.mp4"\n', ""),
            {"seg_00000.m4s": 1, "seg_00001.m4s": 1},
        ),
    ],
    ids=["missing-segment", "missing-init", "no-endlist", "no-extinf", "no-map"],
)
def test_an_incomplete_media_playlist_is_refused(
    tmp_path: Path, body: str, files: dict[str, int]
) -> None:
    with pytest.raises(PlaylistError):
        read_media_playlist(write_playlist(tmp_path, body, files))


def test_a_missing_media_playlist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlaylistError):
        read_media_playlist(tmp_path / "360p" / "index.m3u8")


def test_the_master_playlist_parses_with_every_attribute() -> None:
    text = master_playlist(
        [
            VariantStream(
                "360p/index.m3u8",
                900_000,
                850_000,
                "avc1.64001e,mp4a.40.2",
                640,
                360,
                Fraction(30000, 1001),
                "audio",
            ),
            VariantStream(
                "240p/index.m3u8",
                500_000,
                450_000,
                "avc1.640015,mp4a.40.2",
                426,
                240,
                Fraction(25),
                "audio",
            ),
        ],
        AudioGroup("audio", "audio", 2, "audio/index.m3u8"),
        version=7,
    )
    master = m3u8.loads(text)
    assert master.is_variant
    assert master.version == 7
    assert master.is_independent_segments
    [audio] = master.media
    assert (audio.type, audio.group_id, audio.uri, audio.channels, audio.default) == (
        "AUDIO",
        "audio",
        "audio/index.m3u8",
        "2",
        "YES",
    )
    first, second = master.playlists
    assert first.uri == "360p/index.m3u8"
    info = first.stream_info
    assert (info.bandwidth, info.average_bandwidth, info.resolution) == (
        900_000,
        850_000,
        (640, 360),
    )
    assert info.codecs == "avc1.64001e,mp4a.40.2"
    assert info.frame_rate == 29.97
    assert info.audio == "audio"
    assert second.stream_info.frame_rate == 25.0


def test_a_master_without_audio_has_no_group() -> None:
    text = master_playlist(
        [VariantStream("240p/index.m3u8", 5, 4, "avc1.640015", 426, 240, Fraction(25), None)],
        None,
        version=7,
    )
    master = m3u8.loads(text)
    assert not master.media
    assert master.playlists[0].stream_info.audio is None
    assert "AUDIO=" not in text


def test_hls_files_are_listed_with_their_content_types(tmp_path: Path) -> None:
    write_playlist(
        tmp_path / "360p", PLAYLIST, {"init_360p.mp4": 1, "seg_00000.m4s": 1, "seg_00001.m4s": 1}
    )
    (tmp_path / "master.m3u8").write_text("#EXTM3U\n")
    assert [(key, kind) for key, _, kind in hls_files(tmp_path)] == [
        ("360p/index.m3u8", "application/vnd.apple.mpegurl"),
        ("360p/init_360p.mp4", "video/mp4"),
        ("360p/seg_00000.m4s", "video/iso.segment"),
        ("360p/seg_00001.m4s", "video/iso.segment"),
        ("master.m3u8", "application/vnd.apple.mpegurl"),
    ]
    (tmp_path / "notes.txt").write_text("stray")
    with pytest.raises(PlaylistError):
        hls_files(tmp_path)


def test_progress_follows_out_time_and_never_goes_back() -> None:
    parser = ProgressParser(duration=10.0)
    seen = [
        parser.feed(line)
        for line in [
            "frame=0",
            "out_time_us=N/A",
            "progress=continue",
            "out_time_us=2500000",
            "progress=continue",
            "out_time_us=-9223372036854775807",
            "progress=continue",
            "out_time_us=7500000",
            "progress=continue",
            "out_time_us=12000000",
            "progress=continue",
            "out_time_us=9000000",
            "progress=end",
        ]
    ]
    assert [p for p in seen if p is not None] == [0.0, 25.0, 25.0, 75.0, 100.0, 100.0]
