"""End dates at the edges of the calendar: every text is an end date or a 400, never a 500.

``parse_until`` reads the end date of the admin API, the admin web form and the
CLI. Dates next to what ``datetime`` can hold (``0001-01-01``, ``9999-12-31``),
leap days and the widest UTC offsets must come out as an aware UTC moment or a
:class:`~app.errors.BadRequestError` with a message, whatever the form.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.entitlements import MAX_UNTIL_YEAR, MIN_UNTIL_YEAR, EntitlementStore, parse_until
from app.errors import BadRequestError

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OUT_OF_RANGE = f"from {MIN_UNTIL_YEAR} to {MAX_UNTIL_YEAR}-12-31"

offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timedelta(minutes=m))
moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))


def offset_text(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def in_range(year: int) -> bool:
    return MIN_UNTIL_YEAR <= year <= MAX_UNTIL_YEAR


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31",
        "9999-01-01",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:00:00-05:00",
        "9999-12-31T23:59:59",
        "0001-01-01",
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:00:00Z",
        "1969-12-31",
        "99991231",
    ],
)
def test_a_year_outside_the_range_is_a_400_that_says_which_dates_are_accepted(text: str) -> None:
    with pytest.raises(BadRequestError, match=OUT_OF_RANGE):
        parse_until(text, naive_is_utc=True)


@pytest.mark.parametrize(
    "text",
    [
        "9998-12-31",
        "9998-12-31T23:59:59-23:59",
        "9998-12-31T23:59:59+14:00",
        "1970-01-01",
        "1970-01-01T00:00:00+23:59",
        "2028-02-29",
        "2000-02-29T12:00:00-12:00",
        "2030-12-31T23:59:59.999999+00:00",
    ],
)
def test_the_edges_inside_the_range_are_read_as_utc_moments(text: str) -> None:
    until = parse_until(text)

    assert until is not None and until.tzinfo is UTC
    assert in_range(until.year) or until.year in (MIN_UNTIL_YEAR - 1, MAX_UNTIL_YEAR + 1)


@pytest.mark.parametrize(
    "text",
    [
        "2027-02-29",
        "2100-02-29",
        "1900-02-29",
        "2030-02-30",
        "2030-13-01",
        "2030-00-10",
        "0000-01-01",
    ],
)
def test_a_day_the_calendar_does_not_have_is_a_400(text: str) -> None:
    with pytest.raises(BadRequestError):
        parse_until(text)


def test_a_leap_day_is_a_day_like_any_other() -> None:
    leap = parse_until("2028-02-29")

    assert leap is not None
    assert datetime(2028, 2, 29, tzinfo=UTC) <= leap <= datetime(2028, 3, 1, tzinfo=UTC)


@given(moment=moments, offset=offsets, form=st.sampled_from(["date", "offset", "z", "naive"]))
def test_any_date_or_moment_in_any_offset_is_an_end_date_or_a_400(
    moment: datetime, offset: timedelta, form: str
) -> None:
    text = {
        "date": moment.date().isoformat(),
        "offset": moment.isoformat() + offset_text(offset),
        "z": moment.isoformat() + "Z",
        "naive": moment.isoformat(),
    }[form]

    try:
        until = parse_until(text, naive_is_utc=True)
    except BadRequestError as refused:
        assert not in_range(moment.year), (text, refused)
        assert OUT_OF_RANGE in str(refused)
        return
    assert in_range(moment.year), text
    assert until is not None and until.tzinfo is UTC
    if form == "date":
        day = datetime.combine(moment.date(), datetime.min.time(), tzinfo=UTC)
        assert day <= until <= day + timedelta(days=1)
    else:
        zone = timezone(offset) if form == "offset" else UTC
        assert until == moment.replace(tzinfo=zone).astimezone(UTC)


@given(st.text(max_size=40))
def test_any_text_is_an_end_date_none_or_a_400(text: str) -> None:
    try:
        until = parse_until(text, naive_is_utc=True)
    except BadRequestError:
        return
    assert until is None or until.tzinfo is UTC


@given(
    day=st.dates(min_value=date(MAX_UNTIL_YEAR - 1, 1, 1), max_value=date(MAX_UNTIL_YEAR, 12, 31))
)
def test_the_latest_end_dates_are_stored_by_the_store_rules(day: date) -> None:
    """The store's own checks (future, rounding to the second) hold up to the last day."""
    until = parse_until(day.isoformat())
    store = EntitlementStore(_NoWrites(), "users", "audit", clock=lambda: NOW)  # type: ignore[arg-type]

    with pytest.raises(_Reached):  # validation passed: the store went on to read the user
        store.set_premium("u", True, until, actor="admin")


class _Reached(Exception):
    """The store got past validating its arguments."""


class _NoWrites:
    def get_item(self, **_: object) -> dict[str, object]:
        raise _Reached
