"""WebVTT checks (the wrong line and why), subtitle playlists and the master playlist rewrite."""

from __future__ import annotations

import m3u8
import pytest

from app.captions import (
    InvalidCaptionsError,
    InvalidLanguageError,
    Track,
    check_language,
    subtitle_playlist,
    tracks_in,
    validate_webvtt,
    with_subtitles,
)

GOOD = b"""WEBVTT

1
00:00:00.500 --> 00:00:02.000
Hello

00:02.000 --> 00:04.000 align:start line:0
Two lines
of text

NOTE a comment

01:00:00.000 --> 01:00:01.000
Late cue
"""

MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=1200000,AVERAGE-BANDWIDTH=900000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2",FRAME-RATE=25.000
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2400000,AVERAGE-BANDWIDTH=1800000,RESOLUTION=1280x720,CODECS="avc1.640028,mp4a.40.2",FRAME-RATE=25.000
720p/index.m3u8
"""


def test_a_good_file_gives_its_cues() -> None:
    cues = validate_webvtt(GOOD)
    assert [(c.start, c.end) for c in cues] == [(0.5, 2.0), (2.0, 4.0), (3600.0, 3601.0)]
    assert [c.line for c in cues] == [4, 7, 13]


def test_a_bom_and_crlf_are_accepted() -> None:
    assert len(validate_webvtt(b"\xef\xbb\xbf" + GOOD.replace(b"\n", b"\r\n"))) == 3


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (b"WEBVT\n\n00:00.000 --> 00:01.000\nx\n", 1, "WEBVTT"),
        (b"WEBVTT\n\n00:00.000 --> 00:01.000\nx\n\n00:02.000 -> 00:03.000\ny\n", 6, "timing"),
        (b"WEBVTT\n\n00:00:61.000 --> 00:01:00.000\nx\n", 3, "00-59"),
        (b"WEBVTT\n\n00:00.00 --> 00:01.000\nx\n", 3, "milliseconds"),
        (b"WEBVTT\n\n00:05.000 --> 00:01.000\nx\n", 3, "ends before it starts"),
        (b"WEBVTT\n\n00:00.000 --> 00:01.000 colour:red\nx\n", 3, "cue setting"),
        (b"WEBVTT\n\n00:00.000 --> 00:01.000\nx\n00:02.000 --> 00:03.000\ny\n", 5, "blank line"),
        (b"WEBVTT\n\n1\n2\n00:00.000 --> 00:01.000\n", 3, "timing"),
        (b"WEBVTT\n\n00:00.000 --> 00:01.000\n\xff\xfe\n", 4, "UTF-8"),
        (b"WEBVTT\n\nNOTE only a note\n", 4, "no cues"),
        (b"WEBVTT\n\n00:00.000 --> 00:01.000\nx\n\nSTYLE\n::cue {}\n", 6, "before the first cue"),
    ],
)
def test_a_bad_file_is_refused_with_its_line(data: bytes, line: int, words: str) -> None:
    with pytest.raises(InvalidCaptionsError) as caught:
        validate_webvtt(data)
    assert caught.value.line == line
    assert words in caught.value.reason
    assert f"line {line}" in caught.value.friendly


def test_a_huge_file_is_refused() -> None:
    with pytest.raises(InvalidCaptionsError):
        validate_webvtt(b"WEBVTT\n\n" + b"x" * (1024 * 1024))


@pytest.mark.parametrize(
    ("tag", "normal"),
    [("en", "en"), ("pt-br", "pt-BR"), ("zh-hant-tw", "zh-Hant-TW"), ("es-419", "es-419")],
)
def test_language_tags_are_normalised(tag: str, normal: str) -> None:
    assert check_language(tag, "Label").language == normal


@pytest.mark.parametrize(
    ("tag", "label"),
    [("english", "English"), ("e", "E"), ("en_US", "x"), ("../x", "x"), ("en", ""), ("en", 'a"b')],
)
def test_bad_languages_and_labels_are_refused(tag: str, label: str) -> None:
    with pytest.raises(InvalidLanguageError):
        check_language(tag, label)


def test_the_subtitle_playlist_is_one_vod_segment() -> None:
    text = subtitle_playlist("en.vtt", 61.2)
    parsed = m3u8.loads(text)
    assert parsed.is_endlist and parsed.playlist_type == "vod"
    assert parsed.target_duration == 62
    assert [s.uri for s in parsed.segments] == ["en.vtt"]
    assert parsed.segments[0].duration == pytest.approx(61.2)


def _variants(text: str) -> list[tuple[object, ...]]:
    parsed = m3u8.loads(text)
    return [
        (
            p.uri,
            p.stream_info.bandwidth,
            p.stream_info.average_bandwidth,
            p.stream_info.resolution,
            p.stream_info.codecs,
            p.stream_info.frame_rate,
        )
        for p in parsed.playlists
    ]


def test_the_master_gains_a_subtitle_group_and_keeps_everything_else() -> None:
    tracks = [Track("en", "English"), Track("pt-BR", "Português")]
    rewritten = with_subtitles(MASTER, tracks)
    parsed = m3u8.loads(rewritten)
    subs = [m for m in parsed.media if m.type == "SUBTITLES"]
    assert [(m.group_id, m.language, m.name, m.uri) for m in subs] == [
        ("subs", "en", "English", "subs/en.m3u8"),
        ("subs", "pt-BR", "Português", "subs/pt-BR.m3u8"),
    ]
    assert all(p.stream_info.subtitles == "subs" for p in parsed.playlists)
    assert _variants(rewritten) == _variants(MASTER)
    assert parsed.is_independent_segments and parsed.version == 7
    assert tracks_in(rewritten) == tracks


def test_rewriting_twice_replaces_rather_than_repeats() -> None:
    once = with_subtitles(MASTER, [Track("en", "English")])
    twice = with_subtitles(once, [Track("en", "English"), Track("de", "Deutsch")])
    assert twice.count('SUBTITLES="subs"') == 2
    assert [t.language for t in tracks_in(twice)] == ["en", "de"]


def test_removing_the_last_track_gives_back_the_original() -> None:
    assert with_subtitles(with_subtitles(MASTER, [Track("en", "English")]), []) == MASTER


def test_other_subtitle_groups_are_left_alone() -> None:
    other = MASTER.replace(
        "#EXT-X-STREAM-INF",
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="cc",NAME="x",LANGUAGE="fr",URI="cc/fr.m3u8"\n#EXT-X-STREAM-INF',
        1,
    )
    rewritten = with_subtitles(other, [Track("en", "English")])
    assert 'GROUP-ID="cc"' in rewritten and tracks_in(rewritten) == [Track("en", "English")]
