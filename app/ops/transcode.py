"""The local transcoder: one video file in, HLS renditions, an MP4 fallback and a poster out.

It encodes every rung :func:`app.ladder.plan` chooses in one ffmpeg process
(the wheel's ffmpeg: the source is decoded once and split), as CMAF (fMP4)
HLS with the key frames of all rungs on the same frames, so a player can
switch at any segment boundary (docs/hls-renditions.md#hls-2). Layout of
``out_dir``::

    hls/master.m3u8                      written here, from measured segment sizes
    hls/<rung>/index.m3u8, init_<rung>.mp4, seg_00000.m4s, ...
    hls/audio/...                        the audio rendition (an EXT-X-MEDIA group)
    <rung>.mp4                           progressive fallback: the middle rung, +faststart
    poster.jpg

Everything is written to a hidden folder beside ``out_dir`` and renamed into
place only when complete; on any failure that folder is removed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from app.ladder import (
    DEFAULT_LADDER,
    Ladder,
    PlannedRendition,
    UnsupportedSourceError,
    keyframe_interval_frames,
    plan,
    progressive_rendition,
)
from app.ops.hls import (
    AudioGroup,
    MediaPlaylist,
    PlaylistError,
    VariantStream,
    hls_files,
    master_playlist,
    read_media_playlist,
)
from app.ops.media import MediaInfo, MediaProbeError, ffmpeg_exe, probe

ProgressCallback = Callable[[float], None]

HLS_DIR = "hls"
MASTER = "master.m3u8"
MEDIA_PLAYLIST = "index.m3u8"
POSTER = "poster.jpg"
DEFAULT_PRESET = "veryfast"
_ERROR_TAIL = 800  # characters of ffmpeg's stderr kept in an error message


class TranscodeError(Exception):
    """The source could not be turned into renditions; ``path`` names it."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path.name}: {reason}")
        self.path = path


class UnreadableSourceError(TranscodeError):
    """ffmpeg cannot read the file, or it is damaged or truncated."""


class NoVideoStreamError(TranscodeError):
    """The file has no video stream (audio only, or not a video)."""


class UnsupportedSourceSizeError(TranscodeError):
    """The picture size or frame rate cannot be encoded by the ladder."""


class EncodeFailedError(TranscodeError):
    """ffmpeg failed while encoding, remuxing or taking the poster."""


@dataclass(frozen=True)
class Variant:
    """One video rendition as written: what the master playlist says about it."""

    name: str
    width: int
    height: int
    frame_rate: Fraction
    codecs: str
    bandwidth: int
    average_bandwidth: int


@dataclass(frozen=True)
class Renditions:
    """The files :func:`transcode` put in place under ``root``."""

    root: Path
    variants: tuple[Variant, ...]  # in master-playlist order
    has_audio: bool
    audio_name: str
    mp4: Path
    duration_seconds: float

    @property
    def hls_dir(self) -> Path:
        return self.root / HLS_DIR

    @property
    def master(self) -> Path:
        return self.hls_dir / MASTER

    @property
    def poster(self) -> Path:
        return self.root / POSTER

    def playlist(self, name: str) -> Path:
        """The media playlist of a rendition (a rung's name, or the audio's)."""
        return self.hls_dir / name / MEDIA_PLAYLIST

    def hls_files(self) -> list[tuple[str, Path, str]]:
        """(path inside ``hls/``, file, Content-Type) of every HLS file, for an upload."""
        return hls_files(self.hls_dir)


class ProgressParser:
    """Turns ffmpeg's ``-progress`` lines into a percentage of the source's duration."""

    def __init__(self, duration: float) -> None:
        self.duration = duration
        self.percent = 0.0

    def feed(self, line: str) -> float | None:
        """The percentage at the end of each progress block, else ``None``; never decreasing."""
        key, _, value = line.strip().partition("=")
        if key == "out_time_us" and value.lstrip("-").isdigit() and self.duration > 0:
            done = int(value) / 1_000_000 / self.duration * 100
            self.percent = max(self.percent, min(100.0, done))
        elif key == "progress":
            if value == "end":
                self.percent = 100.0
            return self.percent
        return None


def _filter_graph(info: MediaInfo, planned: tuple[PlannedRendition, ...]) -> str:
    rate = planned[0].frame_rate
    # Frame rate is only changed when above the ladder's maximum (docs/hls-renditions.md#hls-2).
    head = f"[0:v:{info.video_index}]"
    if rate != info.frame_rate:
        head += f"fps={rate.numerator}/{rate.denominator},"
    head += f"split={len(planned)}" + "".join(f"[s{i}]" for i in range(len(planned)))
    branches = [
        f"[s{i}]scale={r.width}:{r.height},setsar=1,format=yuv420p[v{i}]"
        for i, r in enumerate(planned)
    ]
    return ";".join([head, *branches])


def encode_arguments(
    source: Path,
    info: MediaInfo,
    planned: tuple[PlannedRendition, ...],
    ladder: Ladder,
    *,
    preset: str,
) -> list[str]:
    """The ffmpeg arguments that encode every rendition into ``hls/``, run in the work folder.

    Output names are relative: ffmpeg expands ``%`` patterns in them, so no outside
    path may appear there; the source is absolute, so a name cannot read as an option.
    """
    gop = keyframe_interval_frames(ladder, planned[0].frame_rate)
    args = ["-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(source.absolute())]
    args += ["-filter_complex", _filter_graph(info, planned)]
    for i in range(len(planned)):
        args += ["-map", f"[v{i}]"]
    if info.has_audio:
        args += ["-map", "0:a:0"]
    # Closed GOPs, no scene-cut key frames, an IDR every keyframe_seconds on every rung:
    # all rungs cut segments on the same frames (docs/hls-renditions.md#hls-2).
    args += [
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-flags",
        "+cgop",
        "-sc_threshold",
        "0",
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-force_key_frames",
        f"expr:gte(t,n_forced*{ladder.keyframe_seconds})",
        "-forced-idr",
        "1",
    ]
    for i, r in enumerate(planned):
        args += [
            f"-b:v:{i}",
            f"{r.rung.average_kbps}k",
            f"-maxrate:v:{i}",
            f"{r.rung.peak_kbps}k",
            f"-bufsize:v:{i}",
            f"{r.rung.buffer_kbits}k",
            f"-profile:v:{i}",
            r.rung.profile,
            f"-level:v:{i}",
            f"{r.level // 10}.{r.level % 10}",
        ]
    audio = ladder.audio
    streams = [f"v:{i},name:{r.name}" for i, r in enumerate(planned)]
    if info.has_audio:
        args += [
            "-c:a",
            "aac",
            "-b:a",
            f"{audio.bitrate_kbps}k",
            "-ac",
            str(audio.channels),
            "-ar",
            str(audio.sample_rate),
        ]
        streams = [f"{s},agroup:{audio.group_id}" for s in streams]
        streams.append(f"a:0,agroup:{audio.group_id},name:{audio.name}")
    args += [
        "-f",
        "hls",
        "-hls_time",
        str(ladder.segment_seconds),
        "-hls_playlist_type",
        "vod",
        "-hls_segment_type",
        "fmp4",
        "-hls_flags",
        "independent_segments",
        "-hls_fmp4_init_filename",
        "init_%v.mp4",
        "-hls_segment_filename",
        f"{HLS_DIR}/%v/seg_%05d.m4s",
        "-var_stream_map",
        " ".join(streams),
        "-progress",
        "pipe:1",
        "-nostats",
        f"{HLS_DIR}/%v/{MEDIA_PLAYLIST}",
    ]
    return args


def _run_with_progress(
    source: Path,
    args: list[str],
    work: Path,
    parser: ProgressParser,
    progress: ProgressCallback | None,
) -> None:
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, the wheel's own ffmpeg
            [ffmpeg_exe(), *args],
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                percent = parser.feed(line)
                if percent is not None and progress is not None:
                    # The encode is 0-99 %; 100 % means every file is in place.
                    progress(min(percent, 99.0))
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != 0:
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace").strip()[-_ERROR_TAIL:]
            raise EncodeFailedError(source, f"ffmpeg failed encoding it: {tail}")


def _run(source: Path, args: list[str], work: Path, what: str) -> None:
    proc = subprocess.run(  # noqa: S603 - fixed argv, the wheel's own ffmpeg
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
        cwd=work,
        capture_output=True,
        text=True,
        errors="replace",
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if proc.returncode != 0:
        raise EncodeFailedError(source, f"ffmpeg failed {what}: {proc.stderr[-_ERROR_TAIL:]}")


def _write_master(
    hls_dir: Path,
    planned: tuple[PlannedRendition, ...],
    ladder: Ladder,
    has_audio: bool,
) -> tuple[Variant, ...]:
    """Measure every media playlist and write the master; the variants in its order."""
    audio = ladder.audio
    audio_playlist: MediaPlaylist | None = None
    audio_group: AudioGroup | None = None
    if has_audio:
        audio_playlist = read_media_playlist(hls_dir / audio.name / MEDIA_PLAYLIST)
        audio_group = AudioGroup(
            audio.group_id, audio.name, audio.channels, f"{audio.name}/{MEDIA_PLAYLIST}"
        )
    # The middle rung first: players start with the first variant listed.
    start = progressive_rendition(planned)
    ordered = [start, *(r for r in planned if r is not start)]
    variants: list[Variant] = []
    streams: list[VariantStream] = []
    versions = [audio_playlist.version] if audio_playlist else []
    for r in ordered:
        video = read_media_playlist(hls_dir / r.name / MEDIA_PLAYLIST)
        versions.append(video.version)
        peak, average = video.peak_bit_rate, video.average_bit_rate
        if audio_playlist is not None:
            # A variant plays with the audio group: their rates add (docs/hls-renditions.md#hls-3).
            peak += audio_playlist.peak_bit_rate
            average += audio_playlist.average_bit_rate
        codecs = r.codecs + (f",{audio.codecs}" if has_audio else "")
        group = audio.group_id if has_audio else None
        uri = f"{r.name}/{MEDIA_PLAYLIST}"
        streams.append(
            VariantStream(uri, peak, average, codecs, r.width, r.height, r.frame_rate, group)
        )
        variants.append(Variant(r.name, r.width, r.height, r.frame_rate, codecs, peak, average))
    text = master_playlist(streams, audio_group, version=max(versions))
    (hls_dir / MASTER).write_text(text)
    return tuple(variants)


def _move_into_place(work: Path, out_dir: Path) -> None:
    old: Path | None = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
        out_dir.rename(old)
    work.rename(out_dir)
    if old is not None:
        shutil.rmtree(old)


def _encode(
    source: Path,
    info: MediaInfo,
    planned: tuple[PlannedRendition, ...],
    work: Path,
    *,
    ladder: Ladder,
    preset: str,
    progress: ProgressCallback | None,
) -> tuple[Variant, ...]:
    hls_dir = work / HLS_DIR
    args = encode_arguments(source, info, planned, ladder, preset=preset)
    _run_with_progress(source, args, work, ProgressParser(info.duration), progress)
    try:
        variants = _write_master(hls_dir, planned, ladder, info.has_audio)
    except PlaylistError as exc:
        raise EncodeFailedError(source, f"ffmpeg left an incomplete playlist: {exc}") from exc

    fallback = progressive_rendition(planned)
    remux = ["-i", f"{HLS_DIR}/{fallback.name}/{MEDIA_PLAYLIST}"]
    if info.has_audio:
        remux += ["-i", f"{HLS_DIR}/{ladder.audio.name}/{MEDIA_PLAYLIST}"]
        remux += ["-map", "0:v:0", "-map", "1:a:0"]
    mp4 = f"{fallback.name}.mp4"
    _run(source, [*remux, "-c", "copy", "-movflags", "+faststart", mp4], work, "remuxing")

    top = planned[0]
    at = min(info.duration / 10, 10.0)
    poster = [
        *("-ss", f"{at:.3f}", "-i", str(source.absolute()), "-map", f"0:v:{info.video_index}"),
        *("-frames:v", "1", "-vf", f"scale={top.width}:{top.height},setsar=1"),
        *("-q:v", "3", POSTER),
    ]
    _run(source, poster, work, "taking the poster")
    return variants


def transcode(
    source: Path,
    out_dir: Path,
    *,
    ladder: Ladder = DEFAULT_LADDER,
    progress: ProgressCallback | None = None,
    preset: str = DEFAULT_PRESET,
) -> Renditions:
    """Encode ``source`` into the ladder's renditions under ``out_dir`` (replaced if present).

    ``progress`` receives percentages (0-100, never decreasing; 100 once complete).

    :raises UnreadableSourceError: ffmpeg cannot read the file, or it is truncated.
    :raises NoVideoStreamError: the file has no video stream.
    :raises UnsupportedSourceSizeError: the ladder cannot encode its picture size.
    :raises EncodeFailedError: ffmpeg failed part-way; nothing is left behind.
    """
    try:
        info = probe(source)
    except MediaProbeError as exc:
        reason = "ffmpeg cannot read it (damaged, truncated or not a media file)"
        raise UnreadableSourceError(source, reason) from exc
    if not info.has_video:
        raise NoVideoStreamError(source, "it has no video stream")
    if info.duration <= 0:
        raise UnreadableSourceError(source, "it has no duration")
    try:
        planned = plan(ladder, info.width, info.height, info.frame_rate)
    except UnsupportedSourceError as exc:
        raise UnsupportedSourceSizeError(source, str(exc)) from exc

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        variants = _encode(
            source, info, planned, work, ladder=ladder, preset=preset, progress=progress
        )
        _move_into_place(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if progress is not None:
        progress(100.0)
    return Renditions(
        root=out_dir,
        variants=variants,
        has_audio=info.has_audio,
        audio_name=ladder.audio.name,
        mp4=out_dir / f"{progressive_rendition(planned).name}.mp4",
        duration_seconds=info.duration,
    )
