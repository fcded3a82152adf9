"""Header parameters of the admin API: ``If-Match``."""

from __future__ import annotations

import re

from app.errors import BadRequestError, VidgateError

_ETAG = re.compile(r'^(?:W/)?"?(\d{1,18})"?$')


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
