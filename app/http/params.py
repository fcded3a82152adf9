"""Query and header parameters shared by the viewer and admin APIs."""

from __future__ import annotations

import re

from app.errors import BadRequestError, VidgateError

_ETAG = re.compile(r'^(?:W/)?"?(\d{1,18})"?$')


def parse_limit(raw: str | None, default: int) -> int:
    """A page size from a query parameter (1..100); absent or empty means ``default``.

    :raises BadRequestError: not a whole number in range.
    """
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= 100:
        raise BadRequestError("limit must be a whole number from 1 to 100")
    return int(raw)


class PreconditionRequiredError(VidgateError):
    """A premium change came without ``If-Match``: a blind write could undo someone's change."""

    status = 428
    code = "precondition_required"


def parse_if_match(value: str | None) -> int | None:
    """The version named by an ``If-Match`` header: ``3``, ``"3"`` or ``W/"3"``; ``*`` is None.

    :raises PreconditionRequiredError: the header is absent or empty.
    :raises BadRequestError: it names no version.
    """
    if value is None or not value.strip():
        raise PreconditionRequiredError(
            "If-Match with the version you read is required (GET /api/admin/users)"
        )
    text = value.strip()
    if text == "*":
        return None
    match = _ETAG.match(text)
    if match is None:
        raise BadRequestError('If-Match must be the user\'s version, e.g. If-Match: "3"')
    return int(match.group(1))
