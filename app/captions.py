"""Captions: WebVTT files checked line by line, stored as HLS subtitle renditions.

:func:`validate_webvtt` refuses a file with the line that is wrong and why
(:class:`InvalidCaptionsError`); webvtt-py reads a valid file but cannot say
which line of a bad one is wrong, so the checks are written here, after the
W3C WebVTT syntax (docs/uploads.md#captions). :class:`CaptionStore` writes
``videos/<id>/hls/subs/<lang>.vtt`` with a one-segment subtitle media playlist
beside it, and rewrites the master playlist: one ``EXT-X-MEDIA:TYPE=SUBTITLES``
per language in group ``subs`` and ``SUBTITLES="subs"`` on every variant, every
other line kept as it was (:func:`with_subtitles`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.catalog import hls_folder
from app.errors import BadRequestError, DependencyUnavailableError, NotFoundError

GROUP_ID = "subs"
SUBS_FOLDER = "subs/"
MAX_CAPTION_BYTES = 1024 * 1024
MAX_LABEL = 64
VTT_CONTENT_TYPE = "text/vtt; charset=utf-8"
PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
# BCP 47 language tag (the common subset: language, optional script, region, variants).
_LANG = re.compile(
    r"^[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*$"
)
_TIMESTAMP = r"(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})"
_TIMING = re.compile(rf"^{_TIMESTAMP}[ \t]+-->[ \t]+{_TIMESTAMP}(?:[ \t]+(.*))?$")
_SETTING = re.compile(r"^(vertical|line|position|size|align|region):\S+$")


class InvalidCaptionsError(BadRequestError):
    """A WebVTT file that breaks the syntax: the line number and what is wrong (400)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason
        self.friendly = f"The captions file is not valid WebVTT: line {line}: {reason}"


class InvalidLanguageError(BadRequestError):
    """Not a BCP 47 language tag, or a bad label (400)."""


class NoHlsError(NotFoundError):
    """The video has no HLS master playlist to attach captions to (404)."""

    friendly = "This video has no HLS renditions yet, so captions cannot be added."


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    line: int


@dataclass(frozen=True)
class Track:
    """One subtitle rendition: its language tag and the name players show."""

    language: str
    label: str

    @property
    def uri(self) -> str:
        return f"{SUBS_FOLDER}{self.language}.m3u8"


def check_language(language: str, label: str) -> Track:
    """A :class:`Track` for a BCP 47 tag (normalised: ``pt-br`` → ``pt-BR``) and a label.

    :raises InvalidLanguageError: a malformed tag or an empty, long or quoted label.
    """
    if not isinstance(language, str) or len(language) > 35 or not _LANG.match(language):
        raise InvalidLanguageError("the language must be a BCP 47 tag such as en, pt-BR or zh-Hant")
    label = label.strip() if isinstance(label, str) else ""
    if not label or len(label) > MAX_LABEL or '"' in label or any(ord(c) < 32 for c in label):
        raise InvalidLanguageError(f"the label must be 1-{MAX_LABEL} characters, without quotes")
    return Track(_normalise_tag(language), label)


def _normalise_tag(tag: str) -> str:
    parts = tag.split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif len(part) == 2 and part.isalpha():
            out.append(part.upper())
        else:
            out.append(part.lower())
    return "-".join(out)


def _seconds(hours: str | None, minutes: str, seconds: str, millis: str) -> float:
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000


def validate_webvtt(data: bytes) -> list[Cue]:
    """The cues of a valid WebVTT file.

    :raises InvalidCaptionsError: the first line that breaks the syntax, and why.
    """
    if len(data) > MAX_CAPTION_BYTES:
        raise InvalidCaptionsError(1, f"the file is over {MAX_CAPTION_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidCaptionsError(line, "the file is not UTF-8 text") from exc
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise InvalidCaptionsError(line, "the file contains a NUL character")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    header = lines[0]
    if not (header == "WEBVTT" or header.startswith(("WEBVTT ", "WEBVTT\t"))):
        raise InvalidCaptionsError(1, 'the first line must be "WEBVTT"')
    index = 1
    # The header's own lines run to the first blank line.
    while index < len(lines) and lines[index] != "":
        if "-->" in lines[index]:
            raise InvalidCaptionsError(index + 1, "a blank line must follow the WEBVTT header")
        index += 1
    cues: list[Cue] = []
    seen_cue = False
    while index < len(lines):
        if lines[index] == "":
            index += 1
            continue
        block_start = index
        block: list[str] = []
        while index < len(lines) and lines[index] != "":
            block.append(lines[index])
            index += 1
        first = block[0]
        if first.startswith("NOTE") and (len(first) == 4 or first[4] in " \t"):
            if any("-->" in line for line in block):
                raise InvalidCaptionsError(block_start + 1, 'a NOTE block cannot contain "-->"')
            continue
        if first in ("STYLE", "REGION") or first.startswith(("STYLE ", "REGION ")):
            if seen_cue:
                raise InvalidCaptionsError(
                    block_start + 1, f"a {first.split()[0]} block must come before the first cue"
                )
            continue
        seen_cue = True
        timing_at = 0
        if "-->" not in first:
            if len(block) < 2 or "-->" not in block[1]:
                raise InvalidCaptionsError(
                    block_start + 1,
                    'expected a cue timing like "00:00:01.000 --> 00:00:04.000"',
                )
            timing_at = 1
        cues.append(_cue(block[timing_at], block_start + timing_at + 1))
        for offset, payload in enumerate(block[timing_at + 1 :], start=timing_at + 1):
            if "-->" in payload:
                raise InvalidCaptionsError(
                    block_start + offset + 1,
                    'cue text cannot contain "-->" (a blank line is missing before this cue)',
                )
    if not cues:
        raise InvalidCaptionsError(len(lines), "the file has no cues")
    return cues


def _cue(line: str, number: int) -> Cue:
    match = _TIMING.match(line)
    if match is None:
        raise InvalidCaptionsError(
            number,
            'a cue timing must read "hh:mm:ss.ttt --> hh:mm:ss.ttt" '
            "(minutes and seconds 00-59, three digits of milliseconds)",
        )
    start = _seconds(*match.group(1, 2, 3, 4))
    end = _seconds(*match.group(5, 6, 7, 8))
    if end <= start:
        raise InvalidCaptionsError(number, "the cue ends before it starts")
    for setting in (match.group(9) or "").split():
        if not _SETTING.match(setting):
            raise InvalidCaptionsError(number, f"unknown cue setting {setting!r}")
    return Cue(start, end, number)


def subtitle_playlist(vtt_name: str, duration: float) -> str:
    """A VOD media playlist with the whole WebVTT file as its one segment."""
    duration = max(duration, 0.001)
    return (
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        f"#EXT-X-TARGETDURATION:{math.ceil(duration)}\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        f"#EXTINF:{duration:.3f},\n"
        f"{vtt_name}\n"
        "#EXT-X-ENDLIST\n"
    )


def _attribute(line: str, name: str) -> str | None:
    match = re.search(rf'(?:^|[:,]){name}=("[^"]*"|[^,]*)', line)
    return match.group(1).strip('"') if match else None


def _is_our_subtitles(line: str) -> bool:
    return (
        line.startswith("#EXT-X-MEDIA:")
        and _attribute(line, "TYPE") == "SUBTITLES"
        and _attribute(line, "GROUP-ID") == GROUP_ID
    )


def tracks_in(master: str) -> list[Track]:
    """The subtitle renditions of group ``subs`` a master playlist lists."""
    found: list[Track] = []
    for line in master.splitlines():
        if _is_our_subtitles(line):
            language = _attribute(line, "LANGUAGE") or ""
            found.append(Track(language, _attribute(line, "NAME") or language))
    return found


def _media_line(track: Track, default: bool) -> str:
    return (
        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{GROUP_ID}",NAME="{track.label}",'
        f'LANGUAGE="{track.language}",DEFAULT={"YES" if default else "NO"},'
        f'AUTOSELECT=YES,FORCED=NO,URI="{track.uri}"'
    )


def with_subtitles(master: str, tracks: Sequence[Track]) -> str:
    """``master`` with exactly ``tracks`` as its ``subs`` subtitle group.

    Old ``subs`` renditions are dropped, the new ones go before the first variant,
    each ``EXT-X-STREAM-INF`` gets ``SUBTITLES="subs"`` (or loses it when there are
    no tracks); every other line is kept byte for byte.
    """
    lines = master.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for line in lines:
        if _is_our_subtitles(line):
            continue
        if line.startswith("#EXT-X-STREAM-INF:"):
            line = re.sub(r',SUBTITLES="[^"]*"', "", line)
            line = re.sub(r':SUBTITLES="[^"]*",?', ":", line)
            if tracks:
                line = f'{line},SUBTITLES="{GROUP_ID}"'
        kept.append(line)
    if not tracks:
        return "\n".join(kept)
    media = [_media_line(track, default=False) for track in tracks]
    at = next(
        (i for i, line in enumerate(kept) if line.startswith("#EXT-X-STREAM-INF:")), len(kept)
    )
    return "\n".join([*kept[:at], *media, *kept[at:]])


class CaptionStore:
    """Adds and removes one video's subtitle renditions in the bucket."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def tracks(self, video_id: str, master_key: str) -> list[Track]:
        return tracks_in(self._read(master_key))

    def add(self, video_id: str, master_key: str, track: Track, data: bytes) -> list[Track]:
        """Validate ``data``, store it and its playlist, list it in the master. Returns all tracks.

        :raises InvalidCaptionsError: the file is not valid WebVTT (nothing is written).
        """
        cues = validate_webvtt(data)
        master = self._read(master_key)
        folder = hls_folder(video_id) + SUBS_FOLDER
        vtt_name = f"{track.language}.vtt"
        playlist = subtitle_playlist(vtt_name, max(cue.end for cue in cues))
        self._put(folder + vtt_name, data, VTT_CONTENT_TYPE)
        self._put(folder + f"{track.language}.m3u8", playlist.encode(), PLAYLIST_CONTENT_TYPE)
        tracks = [t for t in tracks_in(master) if t.language != track.language] + [track]
        self._put(master_key, with_subtitles(master, tracks).encode(), PLAYLIST_CONTENT_TYPE)
        return tracks

    def remove(self, video_id: str, master_key: str, language: str) -> list[Track]:
        """Drop one language from the master, then its files. Returns the remaining tracks."""
        master = self._read(master_key)
        tracks = [t for t in tracks_in(master) if t.language != language]
        self._put(master_key, with_subtitles(master, tracks).encode(), PLAYLIST_CONTENT_TYPE)
        folder = hls_folder(video_id) + SUBS_FOLDER
        try:
            for name in (f"{language}.m3u8", f"{language}.vtt"):
                self._s3.delete_object(Bucket=self._bucket, Key=folder + name)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyUnavailableError(f"could not delete captions: {exc}") from exc
        return tracks

    def _read(self, key: str) -> str:
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NoHlsError(f"no master playlist at {key}") from exc
            raise DependencyUnavailableError(f"could not read {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailableError(f"could not read {key}: {exc}") from exc
        return str(body.decode("utf-8"))

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                # Playlists change when captions do: never cached for long.
                CacheControl="no-cache",
            )
        except (ClientError, BotoCoreError) as exc:
            raise DependencyUnavailableError(f"could not write {key}: {exc}") from exc
