"""JSON from clients: nesting is bounded, so deep input is a ValueError (a 400), never a
RecursionError (a 500)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.json_input import MAX_DEPTH, JsonTooDeepError, loads, nesting_depth

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:', max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=40,
)


def depth_of(value: Any) -> int:
    """The nesting depth of a parsed value, the slow and obvious way."""
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


def nested(depth: int, *, opener: str = "[") -> str:
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


@given(json_values)
def test_the_measured_depth_is_the_depth_of_the_value_whatever_its_strings_hold(
    value: Any,
) -> None:
    text = json.dumps(value)

    assert nesting_depth(text) == depth_of(value)
    assert nesting_depth(json.dumps(value, indent=2)) == depth_of(value)


@pytest.mark.parametrize("opener", ["[", "{"])
def test_nesting_up_to_the_limit_parses_and_one_level_more_is_refused(opener: str) -> None:
    assert depth_of(loads(nested(MAX_DEPTH, opener=opener))) == MAX_DEPTH
    with pytest.raises(JsonTooDeepError):
        loads(nested(MAX_DEPTH + 1, opener=opener))


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,  # far past Python's recursion limit: json alone raises RecursionError
        "[" * 5000 + "]" * 5000,
        '{"a":' * 5000 + "1" + "}" * 5000,
        '[{"a":[' * 2000,
        "]" * 10 + "[" * 5000,
        '"unterminated' + "[" * 5000,
    ],
    ids=["open-brackets", "balanced-arrays", "objects", "mixed", "closers-first", "after-a-quote"],
)
def test_deep_or_malformed_text_is_a_value_error_never_a_recursion_error(text: str) -> None:
    with pytest.raises(ValueError):
        loads(text)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"a": "[" * 5000, "b": ['\\"[[[', "{"]})

    assert nesting_depth(text) == 2
    assert loads(text)["a"] == "[" * 5000


def test_a_lower_limit_applies_when_asked() -> None:
    assert loads('{"k": {"S": "v"}}', max_depth=2) == {"k": {"S": "v"}}
    with pytest.raises(JsonTooDeepError):
        loads('{"k": {"S": ["v"]}}', max_depth=2)
