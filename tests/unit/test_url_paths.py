"""The one object-key <-> URL-path encoding: round trips, canonical form, refusals."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from requests.utils import requote_uri

from app.errors import BadRequestError
from app.signing import InvalidObjectKeyError, object_key_to_path, path_to_object_key

CANONICAL = re.compile(r"(/([A-Za-z0-9\-._~]|%[0-9A-F]{2})*)+")

segments = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="/"),
    min_size=1,
    max_size=24,
).filter(lambda segment: segment not in (".", ".."))
valid_keys = st.builds(
    lambda parts, trailing: "/".join(parts) + ("/" if trailing else ""),
    st.lists(segments, min_size=1, max_size=6),
    st.booleans(),
).filter(lambda key: len(key.encode("utf-8")) <= 1024)


@given(valid_keys)
@example("videos/a b+c%d?e#f&g=h.mp4")
@example("vidéos/日本語/🎬 trailer.mp4")
@example("a/%2e%2e/b")
@example("folder/")
@example("a*b?c\\d")
def test_every_valid_key_survives_the_round_trip(key: str) -> None:
    assert path_to_object_key(object_key_to_path(key)) == key


@given(valid_keys)
@settings(max_examples=300)
def test_a_path_never_holds_characters_that_need_more_encoding(key: str) -> None:
    path = object_key_to_path(key)
    assert CANONICAL.fullmatch(path)
    assert quote(path, safe="/%") == path
    assert requote_uri(path) == path  # what `requests` would send is the path itself
    assert not set(path) & set(" +?#*\\\"'<>")


@given(st.text(max_size=60))
@example("/a%2Fb")
@example("/%61")
def test_any_accepted_path_is_the_one_canonical_name_of_its_key(path: str) -> None:
    try:
        key = path_to_object_key(path)
    except InvalidObjectKeyError:
        return
    assert object_key_to_path(key) == path


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("videos/intro.mp4", "/videos/intro.mp4"),
        ("videos/a b.mp4", "/videos/a%20b.mp4"),
        ("videos/a+b.mp4", "/videos/a%2Bb.mp4"),
        ("videos/100%.mp4", "/videos/100%25.mp4"),
        ("videos/what?.mp4", "/videos/what%3F.mp4"),
        ("videos/#1.mp4", "/videos/%231.mp4"),
        ("videos/é.mp4", "/videos/%C3%A9.mp4"),
        ("videos/star*.mp4", "/videos/star%2A.mp4"),
        ("videos/~tilde_-.mp4", "/videos/~tilde_-.mp4"),
        ("hls/v1/", "/hls/v1/"),
    ],
)
def test_keys_encode_to_the_expected_path(key: str, path: str) -> None:
    assert object_key_to_path(key) == path
    assert path_to_object_key(path) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/videos/a.mp4",
        "videos//a.mp4",
        "./a.mp4",
        "videos/../premium/a.mp4",
        "videos/..",
        "videos/.",
        "a\x00b",
        "a\nb",
        "a\x7fb",
        "a\x85b",
        "a\ud800b",
        "x" * 1025,
        "é" * 513,
    ],
)
def test_keys_that_could_escape_or_confuse_are_refused(key: str) -> None:
    with pytest.raises(InvalidObjectKeyError):
        object_key_to_path(key)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "videos/a.mp4",
        "/",
        "//videos/a.mp4",
        "/videos/../premium/a.mp4",
        "/videos/%2e%2e/premium/a.mp4",
        "/videos/%2E%2E/premium/a.mp4",
        "/videos/./a.mp4",
        "/videos/%61.mp4",
        "/videos/a%2fb.mp4",
        "/videos/a%2Fb.mp4",
        "/videos/%c3%a9.mp4",
        "/videos/a b.mp4",
        "/videos/a+b.mp4",
        "/videos/a%ZZ.mp4",
        "/videos/a%C3.mp4",
        "/videos/a%00.mp4",
        "/videos/a?x=1",
        "/videos/é.mp4",
    ],
)
def test_paths_that_are_not_canonical_are_refused(path: str) -> None:
    with pytest.raises(InvalidObjectKeyError):
        path_to_object_key(path)


def test_a_double_encoded_dot_segment_names_a_literal_key_not_a_parent() -> None:
    assert path_to_object_key("/videos/%252e%252e/premium/a.mp4") == "videos/%2e%2e/premium/a.mp4"


def test_the_refusal_is_both_a_bad_request_and_a_value_error() -> None:
    with pytest.raises(BadRequestError):
        path_to_object_key("/a/../b")
    with pytest.raises(ValueError, match="empty"):
        object_key_to_path("")
