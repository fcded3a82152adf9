"""The local transcoder on real clips, checked by parsing what it wrote.

One 10 s 854x480 clip with audio is transcoded once for the module (three rungs:
480p, 360p, 240p). Playlists are read with the ``m3u8`` package, an independent
parser; init segments are read for their codec configuration; ffmpeg decodes
the outputs and reports where the key frames are.
"""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import m3u8
import pytest

from app.ladder import DEFAULT_LADDER, avc_codecs
from app.ops.media import encode_clip, ffmpeg_exe, probe
from app.ops.transcode import (
    EncodeFailedError,
    NoVideoStreamError,
    Renditions,
    UnreadableSourceError,
    UnsupportedSourceSizeError,
    transcode,
)

pytestmark = pytest.mark.integration

SOURCE_SIZE = (854, 480)
SECONDS = 10
SEGMENT = DEFAULT_LADDER.segment_seconds


def ffmpeg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@dataclass
class Transcoded:
    source: Path
    renditions: Renditions
    progress: list[float]


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Transcoded:
    folder = tmp_path_factory.mktemp("transcode")
    source = folder / "clip.mp4"
    encode_clip(source, seconds=SECONDS, size="{}x{}".format(*SOURCE_SIZE), preset="ultrafast")
    progress: list[float] = []
    renditions = transcode(source, folder / "out", progress=progress.append)
    return Transcoded(source, renditions, progress)


@pytest.fixture(scope="module")
def master(done: Transcoded) -> m3u8.M3U8:
    return m3u8.load(str(done.renditions.master))


def media(done: Transcoded, uri: str) -> m3u8.M3U8:
    return m3u8.load(str(done.renditions.hls_dir / uri))


def segment_files(done: Transcoded, uri: str) -> list[tuple[float, int]]:
    playlist = media(done, uri)
    folder = (done.renditions.hls_dir / uri).parent
    return [(s.duration, (folder / s.uri).stat().st_size) for s in playlist.segments]


def rfc8216_peak(segments: list[tuple[float, int]], target: float) -> float:
    """Every contiguous run lasting 0.5-1.5 target durations; the highest bits per second."""
    rates = []
    for i in range(len(segments)):
        for j in range(i + 1, len(segments) + 1):
            seconds = sum(d for d, _ in segments[i:j])
            if 0.5 * target <= seconds <= 1.5 * target:
                rates.append(sum(size for _, size in segments[i:j]) * 8 / seconds)
    return max(rates)


def average(segments: list[tuple[float, int]]) -> float:
    return sum(size for _, size in segments) * 8 / sum(d for d, _ in segments)


def avc_config(init: Path) -> tuple[int, int, int]:
    """(profile_idc, constraint flags, level_idc) from the avcC record of an init segment."""
    data = init.read_bytes()
    at = data.index(b"avcC") + 4  # the record follows the box type; byte 0 is its version
    return data[at + 1], data[at + 2], data[at + 3]


def aac_object_type(init: Path) -> int:
    """The audioObjectType of the AudioSpecificConfig inside the esds box."""
    data = init.read_bytes()
    at = data.index(b"esds") + 8  # box type, then version and flags

    def descriptor(i: int) -> tuple[int, int]:
        tag, i = data[i], i + 1
        while data[i] & 0x80:  # length bytes with a continuation bit
            i += 1
        return tag, i + 1

    tag, at = descriptor(at)
    assert tag == 0x03  # ES_Descriptor
    at += 3  # ES_ID, flags
    tag, at = descriptor(at)
    assert tag == 0x04  # DecoderConfigDescriptor
    assert data[at] == 0x40  # MPEG-4 Audio
    at += 13
    tag, at = descriptor(at)
    assert tag == 0x05  # DecoderSpecificInfo: the AudioSpecificConfig
    return data[at] >> 3


def key_frame_times(playlist: Path) -> list[float]:
    result = ffmpeg(
        "-skip_frame",
        "nokey",
        "-i",
        str(playlist),
        "-map",
        "0:v:0",
        "-vf",
        "showinfo",
        "-f",
        "null",
        "-",
    )
    assert result.returncode == 0, result.stderr
    return [float(t) for t in re.findall(r"pts_time:\s*([\d.]+).*iskey:1", result.stderr)]


def jpeg_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:2] == b"\xff\xd8"
    at = 2
    while True:
        marker, length = data[at + 1], int.from_bytes(data[at + 2 : at + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            return width, height
        at += 2 + length


def top_level_boxes(path: Path) -> list[str]:
    data = path.read_bytes()
    boxes, at = [], 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        boxes.append(data[at + 4 : at + 8].decode())
        if size == 1:
            size = int.from_bytes(data[at + 8 : at + 16], "big")
        at += size
    return boxes


# -- the master playlist ----------------------------------------------------------------


def test_the_master_lists_the_rungs_the_source_reaches_and_no_higher(
    master: m3u8.M3U8,
) -> None:
    assert master.is_variant and master.is_independent_segments
    resolutions = [p.stream_info.resolution for p in master.playlists]
    assert sorted(resolutions, reverse=True) == [(854, 480), (640, 360), (426, 240)]
    assert all(w <= SOURCE_SIZE[0] and h <= SOURCE_SIZE[1] for w, h in resolutions)
    # The middle rung, also the MP4 fallback, is listed first: players start with it.
    assert master.playlists[0].uri == "360p/index.m3u8"


def test_the_audio_is_its_own_rendition_group(master: m3u8.M3U8, done: Transcoded) -> None:
    [audio] = master.media
    assert (audio.type, audio.group_id, audio.uri, audio.channels) == (
        "AUDIO",
        "audio",
        "audio/index.m3u8",
        "2",
    )
    assert audio.default == "YES"
    assert all(p.stream_info.audio == "audio" for p in master.playlists)
    assert not any(p.uri.startswith("audio/") for p in master.playlists)
    assert aac_object_type(done.renditions.hls_dir / "audio" / "init_audio.mp4") == 2


def test_bandwidths_are_measured_from_the_segment_files(
    master: m3u8.M3U8, done: Transcoded
) -> None:
    audio = segment_files(done, "audio/index.m3u8")
    for variant in master.playlists:
        video = segment_files(done, variant.uri)
        target = media(done, variant.uri).target_duration
        peak = rfc8216_peak(video, target) + rfc8216_peak(audio, target)
        info = variant.stream_info
        assert info.bandwidth == pytest.approx(peak, abs=2)
        assert info.average_bandwidth == pytest.approx(average(video) + average(audio), abs=2)
        assert info.average_bandwidth <= info.bandwidth


def test_codecs_and_frame_rate_match_what_was_encoded(master: m3u8.M3U8, done: Transcoded) -> None:
    for variant in master.playlists:
        info = variant.stream_info
        name = variant.uri.split("/")[0]
        profile_idc, constraints, level_idc = avc_config(
            done.renditions.hls_dir / name / f"init_{name}.mp4"
        )
        assert profile_idc == 100  # High
        assert info.codecs == f"avc1.{profile_idc:02x}{constraints:02x}{level_idc:02x},mp4a.40.2"
        assert info.codecs.split(",")[0] == avc_codecs("high", level_idc)
        assert info.frame_rate == 25.0


# -- media playlists and segments -------------------------------------------------------


def test_every_media_playlist_has_its_init_segment_and_4_second_segments(
    master: m3u8.M3U8, done: Transcoded
) -> None:
    uris = [p.uri for p in master.playlists] + ["audio/index.m3u8"]
    for uri in uris:
        playlist = media(done, uri)
        folder = (done.renditions.hls_dir / uri).parent
        assert playlist.is_endlist and playlist.playlist_type == "vod"
        assert playlist.target_duration == SEGMENT
        [init] = playlist.segment_map
        assert (folder / init.uri).stat().st_size > 0
        durations = [s.duration for s in playlist.segments]
        assert sum(durations) == pytest.approx(SECONDS, abs=0.1)
        # AAC frames last 1024/48000 s, so audio segments land within one frame of 4 s.
        assert all(d == pytest.approx(SEGMENT, abs=0.03) for d in durations[:-1]), uri
        assert 0 < durations[-1] <= SEGMENT + 0.03
        for segment in playlist.segments:
            assert (folder / segment.uri).stat().st_size > 0


def test_every_rung_cuts_its_segments_on_the_same_key_frames(
    master: m3u8.M3U8, done: Transcoded
) -> None:
    durations = {p.uri: [s.duration for s in media(done, p.uri).segments] for p in master.playlists}
    assert len(set(map(tuple, durations.values()))) == 1, durations
    keys = {uri: key_frame_times(done.renditions.hls_dir / uri) for uri in durations}
    assert len({tuple(k) for k in keys.values()}) == 1, keys
    key_times = next(iter(keys.values()))
    # An IDR every key-frame interval and none in between (no scene-cut key frames).
    step = DEFAULT_LADDER.keyframe_seconds
    assert key_times == pytest.approx([i * step for i in range(math.ceil(SECONDS / step))])
    starts = [
        sum(durations["360p/index.m3u8"][:i]) for i in range(len(durations["360p/index.m3u8"]))
    ]
    assert all(any(abs(s - k) < 0.001 for k in key_times) for s in starts)


def test_the_hls_folder_holds_only_what_the_playlists_name(done: Transcoded) -> None:
    listed = {key for key, _, _ in done.renditions.hls_files()}
    named = {"master.m3u8"}
    for uri in ["480p/index.m3u8", "360p/index.m3u8", "240p/index.m3u8", "audio/index.m3u8"]:
        folder = uri.split("/")[0]
        playlist = media(done, uri)
        named |= {uri, f"{folder}/{playlist.segment_map[0].uri}"}
        named |= {f"{folder}/{s.uri}" for s in playlist.segments}
    assert listed == named


# -- fallback, poster, progress ----------------------------------------------------------


def test_the_mp4_fallback_is_the_middle_rung_and_plays(done: Transcoded) -> None:
    mp4 = done.renditions.mp4
    assert mp4 == done.renditions.root / "360p.mp4"
    info = probe(mp4)
    assert (info.width, info.height) == (640, 360)
    assert info.has_video and info.has_audio
    assert info.duration == pytest.approx(SECONDS, abs=0.1)
    decoded = ffmpeg("-xerror", "-v", "error", "-i", str(mp4), "-f", "null", "-")
    assert decoded.returncode == 0, decoded.stderr
    boxes = top_level_boxes(mp4)
    assert boxes.index("moov") < boxes.index("mdat")  # +faststart


def test_the_poster_is_a_jpeg_of_the_top_rung_size(done: Transcoded) -> None:
    assert jpeg_size(done.renditions.poster) == SOURCE_SIZE


def test_progress_rises_to_100(done: Transcoded) -> None:
    progress = done.progress
    assert progress == sorted(progress)
    assert progress[-1] == 100.0
    assert any(0 < p < 100 for p in progress)


# -- refusals: a clear error naming the file, nothing left behind -------------------------


def assert_nothing_left(parent: Path, before: set[str], out_dir: Path) -> None:
    assert not out_dir.exists()
    assert {p.name for p in parent.iterdir()} == before


def test_a_file_without_video_is_refused(tmp_path: Path) -> None:
    sound = tmp_path / "sound.m4a"
    result = ffmpeg("-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", str(sound))
    assert result.returncode == 0, result.stderr
    out_dir = tmp_path / "out"
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(NoVideoStreamError) as caught:
        transcode(sound, out_dir)
    assert caught.value.path == sound and "sound.m4a" in str(caught.value)
    assert_nothing_left(tmp_path, before, out_dir)


def test_a_truncated_file_is_refused(tmp_path: Path, done: Transcoded) -> None:
    whole = done.source.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    out_dir = tmp_path / "out"
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(UnreadableSourceError) as caught:
        transcode(cut, out_dir)
    assert "cut.mp4" in str(caught.value)
    assert_nothing_left(tmp_path, before, out_dir)


def test_a_file_that_is_not_media_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    with pytest.raises(UnreadableSourceError):
        transcode(text, tmp_path / "out")
    with pytest.raises(UnreadableSourceError):
        transcode(tmp_path / "missing.mp4", tmp_path / "out2")


def test_a_picture_too_small_for_the_ladder_is_refused(tmp_path: Path) -> None:
    speck = tmp_path / "speck.mkv"
    result = ffmpeg("-f", "lavfi", "-i", "testsrc=size=8x8:duration=1", "-c:v", "ffv1", str(speck))
    assert result.returncode == 0, result.stderr
    out_dir = tmp_path / "out"
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(UnsupportedSourceSizeError) as caught:
        transcode(speck, out_dir)
    assert "speck.mkv" in str(caught.value)
    assert_nothing_left(tmp_path, before, out_dir)


def test_a_failed_encode_leaves_the_previous_output_untouched(
    tmp_path: Path, done: Transcoded
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "previous.txt").write_text("kept")
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(EncodeFailedError):
        transcode(done.source, out_dir, preset="no-such-preset")
    assert (out_dir / "previous.txt").read_text() == "kept"
    assert {p.name for p in tmp_path.iterdir()} == before


def test_an_odd_sized_video_only_source_gets_even_sizes_and_no_audio_group(
    tmp_path: Path,
) -> None:
    # ffmpeg expands % patterns in output names and reads "-x" as an option: neither may leak.
    folder = tmp_path / "50% off %v %d"
    folder.mkdir()
    odd = folder / "-odd.mkv"
    result = ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=427x241:rate=30000/1001:duration=3",
        "-c:v",
        "ffv1",
        str(odd),
    )
    assert result.returncode == 0, result.stderr
    renditions = transcode(odd, folder / "out %d")
    assert renditions.root == folder / "out %d"
    assert sorted(p.name for p in folder.iterdir()) == ["-odd.mkv", "out %d"]
    master = m3u8.load(str(renditions.master))
    [variant] = master.playlists
    assert variant.stream_info.resolution == (426, 240)
    assert variant.stream_info.codecs == "avc1.640015"
    assert variant.stream_info.frame_rate == 29.97
    assert variant.stream_info.audio is None and not master.media
    assert not (renditions.hls_dir / "audio").exists()
    assert probe(renditions.mp4).has_audio is False
    assert renditions.poster.is_file()
