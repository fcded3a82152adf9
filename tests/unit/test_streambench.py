"""The streaming bench's helpers on tiny inputs: playlists, byte counting, ratios (no timings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.local.streambench import (
    ByteCounter,
    Variant,
    longest_demo,
    master_variants,
    media_uris,
    ratio,
    throughput_mb_s,
)

MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",DEFAULT=YES,URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1572188,AVERAGE-BANDWIDTH=1535880,RESOLUTION=854x480,AUDIO="audio"
480p/index.m3u8
#EXT-X-STREAM-INF:AVERAGE-BANDWIDTH=3135817,BANDWIDTH=3188354,RESOLUTION=1280x720,AUDIO="audio"
720p/index.m3u8
"""

MEDIA = """#EXTM3U
#EXT-X-TARGETDURATION:4
#EXT-X-MAP:URI="init_720p.mp4"
#EXTINF:4.000000,
seg_00000.m4s
#EXTINF:2.500000,
seg_00001.m4s
#EXT-X-ENDLIST
"""


def test_master_variants_read_bandwidth_not_average_bandwidth() -> None:
    assert master_variants(MASTER) == [
        Variant(1572188, "480p/index.m3u8"),
        Variant(3188354, "720p/index.m3u8"),
    ]


def test_a_master_without_variants_or_bandwidth_is_refused() -> None:
    with pytest.raises(ValueError, match="no variant"):
        master_variants("#EXTM3U\n#EXT-X-VERSION:7\n")
    with pytest.raises(ValueError, match="BANDWIDTH"):
        master_variants("#EXTM3U\n#EXT-X-STREAM-INF:AVERAGE-BANDWIDTH=5\nx.m3u8\n")


def test_media_uris_start_with_the_init_segment() -> None:
    assert media_uris(MEDIA) == ["init_720p.mp4", "seg_00000.m4s", "seg_00001.m4s"]


def test_byte_counter_counts_media_bodies_inside_the_window_only() -> None:
    now = [0.0]
    counter = ByteCounter(clock=lambda: now[0])
    counter.on_request({"requestId": "1", "request": {"url": "http://h/videos/v/hls/a.m4s"}})
    counter.on_request({"requestId": "2", "request": {"url": "http://h/static/player.js"}})
    counter.on_data({"requestId": "1", "dataLength": 100})
    counter.on_data({"requestId": "2", "dataLength": 999})  # not media
    now[0] = 5.0
    counter.on_data({"requestId": "1", "dataLength": 50})
    counter.on_data({"requestId": "3", "dataLength": 7})  # never announced
    assert counter.total(until=4.0) == 100
    assert counter.total(until=5.0) == 150
    assert counter.requests == 1


def test_ratios_and_rates() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(1.0, 0.0) == float("inf")
    assert throughput_mb_s([500_000, 1_500_000], 2.0) == 1.0


def test_longest_demo_reads_the_media_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(
        json.dumps({"a": {"duration": 20.0}, "b": {"duration": 60.0}, "c": {"duration": 24}})
    )
    assert longest_demo(tmp_path) == ("b", 60.0)
