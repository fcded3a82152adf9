"""Inputs at the edges, shared by the fuzzers: JSON nested past Python's recursion limit,
and end dates at the edges of the calendar.

Python's json module raises RecursionError (not ValueError) on deep nesting, and
``datetime`` overflows a day or a UTC offset away from ``0001-01-01`` and
``9999-12-31``: both used to be 500s. Every API that reads JSON or an end date
must answer these with a 400.
"""

from __future__ import annotations

import base64

from hypothesis import strategies as st

MAX_CURSOR_JSON_BYTES = 3072
"""A cursor is at most 4096 base64url characters (docs/openapi.yaml): 3072 bytes of JSON."""


def b64url(text: str) -> str:
    """``text`` as an unpadded base64url cursor."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@st.composite
def deep_json(draw: st.DrawFn, max_bytes: int) -> str:
    """JSON text of at most ``max_bytes``, nested as deep as that allows: arrays, objects,
    or inside a cursor's key; left open or closed."""
    opener = draw(st.sampled_from(["[", '{"a":', '{"user_id":{"S":', '[{"x":[']))
    closer = "".join({"[": "]", "{": "}"}[c] for c in opener if c in "[{")[::-1]
    closed = draw(st.booleans())
    depth = draw(st.integers(1, (max_bytes - 1) // len(opener + closer if closed else opener)))
    return opener * depth + ("1" + closer * depth if closed else "")


deep_cursors = deep_json(MAX_CURSOR_JSON_BYTES).map(b64url)

DEEP_CURSORS = [
    b64url("[" * MAX_CURSOR_JSON_BYTES),
    b64url("[" * 1500 + "]" * 1500),
    b64url('{"a":' * 500 + "{}" + "}" * 500),
    b64url('{"user_id":{"S":' + "[" * 3000),
]
"""Deterministic cases: each far past the recursion limit, each a valid cursor in length."""

CALENDAR_EDGES = [
    "0001-01-01",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:00:00-05:00",
    "9998-12-31",
    "9998-12-31T23:59:59-23:59",
    "1970-01-01T00:00:00+23:59",
    "2028-02-29",
    "2027-02-29",
    "2100-02-29",
    "2000-02-29",
    "2030-06-30T23:59:60Z",
    "2030-12-31T24:00:00Z",
    "2030-01-01T00:00:00+24:00",
    "2030-01-01T00:00:00-23:59",
    "2030-01-01T00:00:00+14:00",
    "20301231",
    "2030W011",
]


def _offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


end_dates = st.one_of(
    st.sampled_from(CALENDAR_EDGES),
    st.dates().map(lambda day: day.isoformat()),
    st.builds(
        lambda moment, minutes: moment.isoformat() + _offset(minutes),
        st.datetimes(),
        st.integers(-(24 * 60 - 1), 24 * 60 - 1),
    ),
)
"""End dates as text: the edges above, any date, any moment in any UTC offset."""
