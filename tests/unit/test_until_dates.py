"""The one conversion between an end date as people give it and the stored instant.

A date D means "through D" (its last day, UTC) and is stored as D + 1 day at
00:00 UTC; the text shown back (forms, CLI) is D again, so saving an unchanged
form is no change and an end date never creeps a day per save.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.entitlements import (
    MAX_UNTIL_YEAR,
    MIN_UNTIL_YEAR,
    describe_end,
    end_after_day,
    last_day_included,
    parse_until,
    until_text,
)
from app.errors import BadRequestError

# Every day that has a next midnight a datetime can hold.
# Every end date parse_until accepts (years MIN_UNTIL_YEAR..MAX_UNTIL_YEAR).
days = st.dates(min_value=date(MIN_UNTIL_YEAR, 1, 1), max_value=date(MAX_UNTIL_YEAR, 12, 31))
# Stored ends are aware UTC instants to the second.
instants = st.datetimes(
    min_value=datetime(MIN_UNTIL_YEAR, 1, 2), max_value=datetime(MAX_UNTIL_YEAR, 12, 31, 23, 59, 59)
).map(lambda moment: moment.replace(microsecond=0, tzinfo=UTC))


@given(days)
@example(date(2030, 12, 31))
@example(date(2028, 2, 29))
def test_the_date_an_admin_enters_is_the_date_shown_again(day: date) -> None:
    stored = parse_until(day.isoformat())
    assert stored == end_after_day(day)
    assert stored is not None
    assert last_day_included(stored) == day
    assert until_text(stored) == day.isoformat()
    assert describe_end(stored) == f"through {day.isoformat()} UTC"


@given(instants)
@example(datetime(2031, 1, 1, tzinfo=UTC))
@example(datetime(2030, 12, 31, 18, 0, 0, tzinfo=UTC))
def test_any_stored_end_reads_back_as_itself_through_its_text(until: datetime) -> None:
    assert parse_until(until_text(until)) == until
    assert parse_until(until_text(until), naive_is_utc=True) == until


@given(days)
def test_saving_the_shown_text_again_and_again_never_moves_the_end(day: date) -> None:
    stored = parse_until(day.isoformat())
    for _ in range(3):
        stored = parse_until(until_text(stored))
    assert stored == end_after_day(day)


def test_the_reported_creep_is_gone() -> None:
    stored = parse_until("2030-12-31")
    assert stored == datetime(2031, 1, 1, tzinfo=UTC)
    assert until_text(stored) == "2030-12-31"
    assert describe_end(stored) == "through 2030-12-31 UTC"


def test_an_end_with_a_time_of_day_is_shown_as_that_moment() -> None:
    evening = datetime(2030, 12, 31, 18, 0, tzinfo=UTC)
    assert last_day_included(evening) is None
    assert until_text(evening) == "2030-12-31T18:00:00Z"
    assert describe_end(evening) == "until 2030-12-31 18:00:00 UTC"
    paris = datetime(2031, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    assert until_text(paris) == "2030-12-31", "midnight UTC given in another zone"
    assert until_text(None) == ""


@pytest.mark.parametrize(
    "text",
    ["9999-12-31", "9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"],
    ids=["no-next-midnight", "past-the-last-instant", "before-the-first-instant"],
)
def test_dates_at_the_edge_of_the_calendar_are_a_clear_400_not_an_overflow(text: str) -> None:
    with pytest.raises(BadRequestError):
        parse_until(text)
    with pytest.raises(BadRequestError):
        end_after_day(date.max)
