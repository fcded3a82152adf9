"""JSON sent by clients, parsed with a bound on how deeply it nests.

Python's :mod:`json` recurses once per nested array or object, so a few
kilobytes of ``[[[[...`` raise :class:`RecursionError` (an HTTP 500) where any
other malformed JSON raises :class:`ValueError` (a 400). :func:`loads`
measures the nesting first and refuses anything deeper than ``max_depth``
with :class:`JsonTooDeepError`, a :class:`ValueError`, so every caller's
existing "not valid JSON" handling covers it. Nothing vidgate accepts nests
more than a few levels; :data:`MAX_DEPTH` leaves ample room.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 32
"""The deepest nesting of arrays and objects accepted (a grant body is 1, a cursor 2)."""

# A JSON string, written so that no input makes the scan backtrack (an unterminated
# one runs to the end of the text); brackets inside strings do not nest anything.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonTooDeepError(ValueError):
    """The JSON text nests arrays and objects deeper than allowed."""


def nesting_depth(text: str) -> int:
    """How deeply ``text`` nests arrays and objects (0 for a scalar), ignoring strings.

    Brackets are counted, not matched: for malformed text the count is still at
    least as deep as a parser gets before it fails, since up to that point the
    text is valid JSON.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    # C-level all the way (map, accumulate, max): a 64 KiB body costs milliseconds.
    return max(accumulate(map(_STEP.__getitem__, brackets), initial=0))


def loads(text: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(text)``, refusing nesting deeper than ``max_depth``.

    :raises JsonTooDeepError: nested deeper than ``max_depth``.
    :raises ValueError: not valid JSON (``json.JSONDecodeError``).
    """
    # Cheap case first: text with no more openers than the limit cannot exceed it.
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise JsonTooDeepError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except RecursionError:  # unreachable with a sane max_depth; never a 500 all the same
        raise JsonTooDeepError(f"JSON nested deeper than {max_depth} levels") from None
