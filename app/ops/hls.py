"""HLS playlists: read a media playlist, measure its bit rates, write the master playlist.

Bit rates are measured, not estimated, the way RFC 8216 defines them
(docs/hls-renditions.md#hls-3): the peak is the highest rate over any run of
segments lasting 0.5 to 1.5 target durations, the average is all segment
bytes over the playlist's duration; the initialization section counts in neither.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",  # progressive files and fMP4 init segments
    ".m4a": "audio/mp4",
    ".ts": "video/mp2t",
    ".aac": "audio/aac",
    ".vtt": "text/vtt",
}
"""Content-Type per suffix of every file an HLS folder may hold (served as stored)."""


class PlaylistError(ValueError):
    """A media playlist that is not what the transcoder wrote (missing tags or files)."""


@dataclass(frozen=True)
class Segment:
    uri: str
    duration: float
    size: int  # bytes


def peak_bit_rate(segments: Sequence[Segment], target_duration: float) -> int:
    """Bits per second over the busiest run of segments lasting 0.5-1.5 target durations."""
    best = 0.0
    for start in range(len(segments)):
        bits, seconds = 0, 0.0
        for segment in segments[start:]:
            bits += segment.size * 8
            seconds += segment.duration
            if seconds > 1.5 * target_duration:
                break
            if seconds >= 0.5 * target_duration:
                best = max(best, bits / seconds)
    if best == 0.0:
        # Every run is too short or too long (a lone short segment): take segments alone.
        best = max((s.size * 8 / s.duration for s in segments if s.duration > 0), default=0.0)
    return math.ceil(best)


def average_bit_rate(segments: Sequence[Segment]) -> int:
    """Bits per second over the whole playlist."""
    seconds = sum(s.duration for s in segments)
    if seconds <= 0:
        return 0
    return math.ceil(sum(s.size for s in segments) * 8 / seconds)


@dataclass(frozen=True)
class MediaPlaylist:
    path: Path
    version: int
    target_duration: int
    init_uri: str
    segments: tuple[Segment, ...]

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    @property
    def peak_bit_rate(self) -> int:
        return peak_bit_rate(self.segments, self.target_duration)

    @property
    def average_bit_rate(self) -> int:
        return average_bit_rate(self.segments)


def _attribute(line: str, name: str) -> str | None:
    marker = f'{name}="'
    start = line.find(marker)
    if start < 0:
        return None
    start += len(marker)
    return line[start : line.index('"', start)]


def read_media_playlist(path: Path) -> MediaPlaylist:
    """Parse an fMP4 VOD media playlist and size its segments from the files beside it.

    :raises PlaylistError: a required tag is missing or a segment file is absent.
    """
    version = target = 0
    init_uri: str | None = None
    segments: list[Segment] = []
    pending: float | None = None
    ended = False
    try:
        text = path.read_text()
    except OSError as exc:
        raise PlaylistError(f"{path}: cannot be read ({exc.strerror})") from exc
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-VERSION:"):
            version = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            target = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MAP:"):
            init_uri = _attribute(line, "URI")
        elif line.startswith("#EXTINF:"):
            pending = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line == "#EXT-X-ENDLIST":
            ended = True
        elif line and not line.startswith("#"):
            if pending is None:
                raise PlaylistError(f"{path}: {line} has no #EXTINF")
            file = path.parent / line
            if not file.is_file():
                raise PlaylistError(f"{path}: segment {line} is missing")
            segments.append(Segment(line, pending, file.stat().st_size))
            pending = None
    if not (version and target and init_uri and segments and ended):
        raise PlaylistError(f"{path}: not a complete fMP4 VOD media playlist")
    if not (path.parent / init_uri).is_file():
        raise PlaylistError(f"{path}: initialization section {init_uri} is missing")
    return MediaPlaylist(path, version, target, init_uri, tuple(segments))


@dataclass(frozen=True)
class AudioGroup:
    group_id: str
    name: str
    channels: int
    uri: str


@dataclass(frozen=True)
class VariantStream:
    uri: str
    bandwidth: int
    average_bandwidth: int
    codecs: str
    width: int
    height: int
    frame_rate: Fraction
    audio_group: str | None


def master_playlist(
    variants: Sequence[VariantStream], audio: AudioGroup | None, *, version: int
) -> str:
    """The master playlist text; players start with the first variant listed."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{version}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio is not None:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{audio.group_id}",NAME="{audio.name}",'
            f'DEFAULT=YES,AUTOSELECT=YES,CHANNELS="{audio.channels}",URI="{audio.uri}"'
        )
    for v in variants:
        attributes = [
            f"BANDWIDTH={v.bandwidth}",
            f"AVERAGE-BANDWIDTH={v.average_bandwidth}",
            f'CODECS="{v.codecs}"',
            f"RESOLUTION={v.width}x{v.height}",
            f"FRAME-RATE={float(v.frame_rate):.3f}",
        ]
        if v.audio_group is not None:
            attributes.append(f'AUDIO="{v.audio_group}"')
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attributes), v.uri]
    return "\n".join(lines) + "\n"


def hls_files(hls_dir: Path) -> list[tuple[str, Path, str]]:
    """Every file of an HLS folder: (path relative to it, file, Content-Type), sorted."""
    files = []
    for file in sorted(p for p in hls_dir.rglob("*") if p.is_file()):
        content_type = CONTENT_TYPES.get(file.suffix)
        if content_type is None:
            raise PlaylistError(f"{file}: not an HLS file")
        files.append((file.relative_to(hls_dir).as_posix(), file, content_type))
    return files
