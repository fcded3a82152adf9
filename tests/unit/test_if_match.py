"""``If-Match`` by RFC 9110: strong comparison, entity-tag lists, ``*`` as a forced write."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import BadRequestError
from app.http.params import (
    MAX_ENTITY_TAGS,
    IfMatch,
    MalformedIfMatchError,
    PreconditionFailedError,
    PreconditionRequiredError,
    parse_if_match,
)

versions = st.integers(0, 10**18 - 1)
whitespace = st.text(alphabet=" \t", max_size=2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"7"', {7}),
        ('"0"', {0}),
        (' "7" ', {7}),
        ('"7", "8"', {7, 8}),
        ('"7","8"', {7, 8}),
        ('W/"7", "8"', {8}),
        ('"x", "8"', {8}),
        ('"a,b", "9"', {9}),  # a comma may sit inside an entity-tag
        ('"7",, ,"8",', {7, 8}),  # empty list elements are allowed (RFC 9110 §5.6.1)
        (f'"{10**18 - 1}"', {10**18 - 1}),
    ],
)
def test_strong_entity_tags_name_the_versions_a_change_may_start_from(
    value: str, expected: set[int]
) -> None:
    assert parse_if_match(value) == IfMatch(forced=False, versions=frozenset(expected))


def test_a_star_is_a_forced_write() -> None:
    assert parse_if_match("*") == IfMatch(forced=True)
    assert parse_if_match(" * ").forced


@pytest.mark.parametrize(
    "value",
    [
        'W/"7"',  # weak: never matches under strong comparison
        'W/"7", W/"8"',
        '"seven"',  # a tag we never issue
        '"07"',  # octet for octet: "07" is not the ETag "7"
        '"+7"',
        '""',
        f'"{10**18}"',
    ],
)
def test_entity_tags_that_cannot_match_any_version_are_412(value: str) -> None:
    with pytest.raises(PreconditionFailedError) as failed:
        parse_if_match(value)
    assert (failed.value.status, failed.value.code) == (412, "precondition_failed")


@pytest.mark.parametrize(
    "value",
    [
        "7",  # a bare version is not an entity-tag
        '"7',  # unbalanced quotes
        '7"',
        "W/7",
        "W/",
        'w/"7"',  # the weak prefix is case-sensitive
        '"7" "8"',  # a list needs commas
        '"7"x',
        '*, "7"',  # "*" stands alone
        "**",
        '"7\x00"',
        '"\x7f"',
        ",",
        '"' + "7" * 2000 + '"',
        ", ".join(['"1"'] * (MAX_ENTITY_TAGS + 1)),
    ],
)
def test_anything_but_star_or_entity_tags_is_a_400(value: str) -> None:
    with pytest.raises(MalformedIfMatchError):
        parse_if_match(value)
    assert issubclass(MalformedIfMatchError, BadRequestError)


@pytest.mark.parametrize("value", [None, "", "   ", "\t"])
def test_a_missing_if_match_is_428(value: str | None) -> None:
    with pytest.raises(PreconditionRequiredError):
        parse_if_match(value)


@given(
    tags=st.lists(st.tuples(st.booleans(), versions), min_size=1, max_size=MAX_ENTITY_TAGS),
    spaces=st.lists(whitespace, min_size=2 * MAX_ENTITY_TAGS, max_size=2 * MAX_ENTITY_TAGS),
)
def test_any_list_of_version_tags_parses_to_its_strong_versions_or_is_412(
    tags: list[tuple[bool, int]], spaces: list[str]
) -> None:
    value = ",".join(
        f'{spaces[2 * i]}{"W/" if weak else ""}"{version}"{spaces[2 * i + 1]}'
        for i, (weak, version) in enumerate(tags)
    )
    strong = frozenset(version for weak, version in tags if not weak)

    if strong:
        assert parse_if_match(value) == IfMatch(forced=False, versions=strong)
    else:
        with pytest.raises(PreconditionFailedError):
            parse_if_match(value)


@given(st.text(max_size=60))
def test_any_header_value_is_an_answer_or_a_typed_refusal(value: str) -> None:
    try:
        parsed = parse_if_match(value)
    except (PreconditionRequiredError, MalformedIfMatchError, PreconditionFailedError):
        return
    assert parsed.forced or parsed.versions
