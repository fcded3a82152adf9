"""Paging cursors and limits: opaque on the way out, strictly checked on the way in."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.dynamo import MAX_PAGE_SIZE, check_limit, decode_cursor, encode_cursor, parse_limit
from app.errors import BadRequestError

AUDIT_KEY = {"user_id": "S", "event_id": "S", "entity": "S"}
key_values = st.text(min_size=1, max_size=200)


def _raw(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


@given(user_id=key_values, event_id=key_values)
def test_a_cursor_decodes_back_to_the_key_it_was_made_from(user_id: str, event_id: str) -> None:
    key = {"user_id": {"S": user_id}, "event_id": {"S": event_id}, "entity": {"S": "audit"}}
    cursor = encode_cursor(key)
    assert cursor is not None
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(cursor, key_types=AUDIT_KEY, fixed={"entity": "audit"}) == key


def test_no_key_means_no_cursor_and_no_cursor_means_the_first_page() -> None:
    assert encode_cursor(None) is None
    assert encode_cursor({}) is None
    assert decode_cursor(None, key_types=AUDIT_KEY) is None


def test_number_keys_are_accepted_when_the_listing_expects_them() -> None:
    key = {"n": {"N": "-12.5"}}
    assert decode_cursor(encode_cursor(key), key_types={"n": "N"}) == key
    with pytest.raises(BadRequestError):
        decode_cursor(_raw({"n": {"N": "12e400"}}), key_types={"n": "N"})


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "%%%",
        "A" * 5000,
        base64.urlsafe_b64encode(b"\x00\x01\x02").decode(),
        _raw([]),
        _raw("text"),
        _raw({"user_id": {"S": "u"}, "event_id": {"S": "e"}}),  # a key missing
        _raw({"user_id": {"S": "u"}, "event_id": {"S": "e"}, "entity": {"S": "audit"}, "x": 1}),
        _raw({"user_id": {"N": "1"}, "event_id": {"S": "e"}, "entity": {"S": "audit"}}),
        _raw({"user_id": {"S": ""}, "event_id": {"S": "e"}, "entity": {"S": "audit"}}),
        _raw({"user_id": {"S": 7}, "event_id": {"S": "e"}, "entity": {"S": "audit"}}),
        _raw({"user_id": "u", "event_id": {"S": "e"}, "entity": {"S": "audit"}}),
        _raw({"user_id": {"S": "u", "N": "1"}, "event_id": {"S": "e"}, "entity": {"S": "audit"}}),
        _raw({"user_id": {"S": "u"}, "event_id": {"S": "e"}, "entity": {"S": "user"}}),
        _raw({"user_id": {"S": ["u"]}, "event_id": {"S": "e"}, "entity": {"S": "audit"}}),
    ],
)
def test_anything_but_a_cursor_issued_for_this_listing_is_a_bad_request(cursor: str) -> None:
    with pytest.raises(BadRequestError):
        decode_cursor(cursor, key_types=AUDIT_KEY, fixed={"entity": "audit"})


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "text",
    [
        "[" * 3000,  # an anonymous caller's ~4 KiB cursor: json alone raises RecursionError
        "[" * 1500 + "]" * 1500,
        '{"a":' * 500 + "{}" + "}" * 500,
        '{"user_id": {"S": ' + "[" * 2000,
        '{"user_id": {"S": "u"}, "event_id": {"S": "e"}, "entity": {"S": [[["audit"]]]}}',
    ],
    ids=["open", "balanced", "objects", "inside-a-key", "one-level-too-deep"],
)
def test_a_deeply_nested_cursor_is_a_bad_request_not_a_recursion_error(text: str) -> None:
    cursor = _b64(text)
    assert len(cursor) <= 4096  # what the listings accept

    with pytest.raises(BadRequestError, match="malformed cursor"):
        decode_cursor(cursor, key_types=AUDIT_KEY, fixed={"entity": "audit"})


@given(data=st.data(), opener=st.sampled_from(["[", '{"a":', '{"user_id":{"S":']))
def test_a_cursor_nested_to_any_depth_it_can_hold_is_a_bad_request(
    data: st.DataObject, opener: str
) -> None:
    depth = data.draw(st.integers(1, 3072 // len(opener)))  # 4096 base64 characters
    with pytest.raises(BadRequestError):
        decode_cursor(_b64(opener * depth), key_types=AUDIT_KEY)


@given(st.text(max_size=300))
def test_decoding_arbitrary_text_either_works_or_is_a_bad_request(text: str) -> None:
    with contextlib.suppress(BadRequestError):
        decode_cursor(text, key_types=AUDIT_KEY)


@given(st.binary(max_size=300))
def test_decoding_arbitrary_bytes_either_works_or_is_a_bad_request(raw: bytes) -> None:
    with contextlib.suppress(BadRequestError):
        decode_cursor(base64.urlsafe_b64encode(raw).decode(), key_types=AUDIT_KEY)


@pytest.mark.parametrize("limit", [1, 50, 100])
def test_limits_from_1_to_100_are_accepted(limit: int) -> None:
    assert check_limit(limit) == limit


@pytest.mark.parametrize("limit", [0, 101, -5, True, 1.0, "5", None])
def test_other_limits_are_bad_requests(limit: object) -> None:
    with pytest.raises(BadRequestError):
        check_limit(limit)


def test_the_page_size_maximum_is_the_http_api_contract() -> None:
    assert MAX_PAGE_SIZE == 100


@pytest.mark.parametrize(("text", "limit"), [("1", 1), ("7", 7), ("100", 100), ("0042", 42)])
def test_a_page_size_in_text_is_read_as_its_number(text: str, limit: int) -> None:
    assert parse_limit(text, 20) == limit
    assert parse_limit(text) == limit


@pytest.mark.parametrize("text", [None, ""])
def test_an_absent_page_size_is_the_default_or_refused_without_one(text: str | None) -> None:
    assert parse_limit(text, 20) == 20
    with pytest.raises(BadRequestError):
        parse_limit(text)


@pytest.mark.parametrize(
    "text", ["0", "101", "-1", "+5", "5.0", " 5", "5 ", "five", "\u0665", "00100", "9" * 5000]
)
def test_a_page_size_outside_the_rule_is_a_bad_request(text: str) -> None:
    with pytest.raises(BadRequestError):
        parse_limit(text, 20)
