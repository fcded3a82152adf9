"""Header parameters of the admin API: ``If-Match``, read by RFC 9110's rules.

``If-Match`` is ``*`` or a comma-separated list of entity-tags
(`RFC 9110 §13.1.1 <https://www.rfc-editor.org/rfc/rfc9110#section-13.1.1>`_),
compared with the strong comparison (§8.8.3.2): a weak tag (``W/"3"``) never
matches, and a strong tag matches only the ETag we send, ``"<version>"``,
octet for octet. ``*`` is kept for an explicit forced write, which the audit
record marks as forced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.errors import BadRequestError, VidgateError

MAX_IF_MATCH_LENGTH = 1024
MAX_ENTITY_TAGS = 16

# One list element: optional whitespace, an entity-tag (or nothing: RFC 9110 §5.6.1
# has recipients accept empty elements), optional whitespace, then "," or the end.
# etagc = %x21 / %x23-7E / obs-text; a quote never appears inside the tag.
_ELEMENT = re.compile(r'[ \t]*(?:(W/)?"([\x21\x23-\x7e\x80-\xff]*)")?[ \t]*(?:,|\Z)')
_VERSION = re.compile(r"0|[1-9][0-9]{0,17}")  # exactly how the ETag writes a version


class PreconditionRequiredError(VidgateError):
    """A premium change came without ``If-Match``: a blind write could undo someone's change."""

    status = 428
    code = "precondition_required"


class MalformedIfMatchError(BadRequestError):
    """``If-Match`` is neither ``*`` nor entity-tags (a bare ``3``, an unbalanced quote)."""


class PreconditionFailedError(VidgateError):
    """No entity-tag in ``If-Match`` can ever match: only weak or foreign tags (RFC 9110: 412)."""

    status = 412
    code = "precondition_failed"


@dataclass(frozen=True)
class IfMatch:
    """What an ``If-Match`` asks for: ``forced`` (``*``: whatever the current version) or
    a change from one of ``versions``, those its strong entity-tags name."""

    forced: bool
    versions: frozenset[int] = frozenset()


def parse_if_match(value: str | None) -> IfMatch:
    """The versions an ``If-Match`` header value lets a change start from.

    :raises PreconditionRequiredError: the header is absent or empty (428).
    :raises MalformedIfMatchError: it is not ``*`` or a list of entity-tags (400).
    :raises PreconditionFailedError: none of its entity-tags could match any version:
        weak (``W/"3"``) or not a version we issue (412).
    """
    if value is None or not value.strip(" \t"):
        raise PreconditionRequiredError(
            "If-Match with the ETag you read is required (GET /api/admin/users)"
        )
    text = value.strip(" \t")
    if text == "*":
        return IfMatch(forced=True)
    if len(text) > MAX_IF_MATCH_LENGTH:
        raise MalformedIfMatchError(f"If-Match is longer than {MAX_IF_MATCH_LENGTH} characters")
    tags = _entity_tags(text)
    versions = frozenset(
        int(opaque) for weak, opaque in tags if not weak and _VERSION.fullmatch(opaque)
    )
    if not versions:
        raise PreconditionFailedError(
            "If-Match names no ETag this user can have: weak tags (W/) never match; "
            'send the ETag as you read it, e.g. If-Match: "3"'
        )
    return IfMatch(forced=False, versions=versions)


def _entity_tags(text: str) -> list[tuple[bool, str]]:
    """``(weak, opaque)`` of each entity-tag of a list.

    :raises MalformedIfMatchError: anything else, ``*`` in a list included.
    """
    tags: list[tuple[bool, str]] = []
    position = 0
    while position < len(text):
        element = _ELEMENT.match(text, position)
        if element is None or element.end() == position:
            raise MalformedIfMatchError(
                'If-Match must be "*" or entity-tags in double quotes, e.g. If-Match: "3"'
            )
        if element.group(2) is not None:
            tags.append((element.group(1) is not None, element.group(2)))
        position = element.end()
    if not tags:
        raise MalformedIfMatchError('If-Match names no entity-tag, e.g. If-Match: "3"')
    if len(tags) > MAX_ENTITY_TAGS:
        raise MalformedIfMatchError(f"If-Match lists more than {MAX_ENTITY_TAGS} entity-tags")
    return tags
