"""Premium entitlements and their audit trail, in DynamoDB.

A user's premium state lives on the user item (``users`` table) with a
version number. Reading it is on the hot path of every premium grant: one
strongly consistent GetItem of the few attributes it needs, built by hand on
the low-level client (:meth:`EntitlementStore.get`), or the same read as part
of a batch with the video's (:meth:`EntitlementStore.read_of`). A change is one
TransactWriteItems: the user item is updated only if its version is still
the one the caller saw, and the audit record is written in the same
transaction, so there is never a change without its record or a record
without its change. A lost race is reported, never retried silently.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from app.dynamo import (
    Item,
    KeyRead,
    b,
    check_limit,
    decode_cursor,
    error_code,
    format_time,
    get_bool,
    get_n,
    get_s,
    get_time,
    n,
    query_page,
    s,
    unavailable_on_errors,
    utc_now,
)
from app.errors import (
    BadRequestError,
    DependencyUnavailableError,
    UserNotFoundError,
    VersionConflictError,
)
from app.tables import AUDIT_ALL_INDEX

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

AuditAction = Literal["grant", "revoke", "update", "end_stream"]

# "#" never occurs in a Cognito sub; keys with it are the directory's own items (app.users).
_USER_ID = re.compile(r"^[^\x00-\x1f\x7f#]{1,128}$")
_ACTOR_MAX = 256

# What an entitlement is made of, names behind placeholders so no attribute
# ever collides with a DynamoDB reserved word: the hot-path read projects
# exactly these, and a premium change writes them.
_NAMES = {
    "#id": "user_id",
    "#p": "premium",
    "#pu": "premium_until",
    "#v": "version",
    "#ua": "updated_at",
    "#ub": "updated_by",
}
# What was bought through Stripe (app.purchases): read with the entitlement, never written here.
_PAID_NAMES = {"#su": "stripe_until", "#pd": "paid"}
_GET_PROJECTION = ", ".join([*_NAMES, *_PAID_NAMES])
_GET_NAMES = {**_NAMES, **_PAID_NAMES}

_THROTTLED_REASONS = frozenset(
    {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
_CONFLICT_REASONS = frozenset({"ConditionalCheckFailed", "TransactionConflict"})


def validate_user_id(user_id: object) -> str:
    """``user_id`` (a Cognito ``sub``) if it is a usable key, else BadRequestError."""
    if not isinstance(user_id, str) or not _USER_ID.match(user_id):
        raise BadRequestError("malformed user id")
    return user_id


@dataclass(frozen=True)
class Entitlement:
    """A user's premium state at one version. No record means not premium, version 0.

    ``premium``/``premium_until``/``version`` are the admin grant; ``stripe_until``
    (subscription) and ``paid`` (video id -> purchase or rental) come from Stripe
    webhooks only (:mod:`app.purchases`).
    """

    user_id: str
    premium: bool
    premium_until: datetime | None
    version: int
    updated_at: datetime | None = None
    updated_by: str | None = None
    stripe_until: datetime | None = None
    paid: Mapping[str, PaidAccess] = field(default_factory=dict)

    def is_active(self, now: datetime) -> bool:
        """The admin grant: premium, and not past ``premium_until`` (the end is already outside)."""
        return self.premium and (self.premium_until is None or now < self.premium_until)

    def premium_active(self, now: datetime) -> bool:
        """Premium from either source: an active admin grant or a paid subscription."""
        return self.is_active(now) or (self.stripe_until is not None and now < self.stripe_until)

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "premium": self.premium,
            "premium_until": _iso_or_none(self.premium_until),
            "version": self.version,
            "updated_at": _iso_or_none(self.updated_at),
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True)
class Condition:
    """A DynamoDB condition expression with its placeholders."""

    expression: str
    names: Mapping[str, str]
    values: Mapping[str, Any]


def active_condition(video_id: str, now: datetime) -> Condition:
    """:meth:`Entitlement.premium_active` at ``now``, or an owned unrefunded ``video_id``, as
    a condition on the users item: true only where the rule allows a premium video.

    Times are stored to the second (:func:`app.dynamo.format_time`), so ``until > now``
    compares as strings exactly as the rule's ``now < until``. A rental is left out (its
    end is ``started`` + window, which a condition cannot add): it fails the condition
    and the caller reads the item and judges with the rule.
    """
    return Condition(
        "(#cp = :ctrue AND (attribute_not_exists(#cpu) OR #cpu > :cnow)) OR #csu > :cnow"
        " OR (#cpd.#cvid.#ck = :cown AND (attribute_not_exists(#cpd.#cvid.#ce)"
        " OR #cpd.#cvid.#ce > :cnow))",
        {
            "#cp": "premium",
            "#cpu": "premium_until",
            "#csu": "stripe_until",
            "#cpd": "paid",
            "#cvid": video_id,
            "#ck": "kind",
            "#ce": "ended",
        },
        {":ctrue": {"BOOL": True}, ":cnow": s(format_time(now)), ":cown": s("own")},
    )


@dataclass(frozen=True)
class AuditRecord:
    """One premium change: who, what, from which state to which, at which version.

    ``forced``: the change was asked for whatever the state then was (an
    ``If-Match: *``), not against a version the actor had seen.
    """

    user_id: str
    event_id: str
    actor: str
    action: AuditAction
    premium_before: bool
    premium_after: bool
    until_before: datetime | None
    until_after: datetime | None
    version: int
    at: datetime
    forced: bool = False
    source: str = "admin"
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "detail": self.detail,
            "user_id": self.user_id,
            "event_id": self.event_id,
            "actor": self.actor,
            "action": self.action,
            "premium_before": self.premium_before,
            "premium_after": self.premium_after,
            "until_before": _iso_or_none(self.until_before),
            "until_after": _iso_or_none(self.until_after),
            "version": self.version,
            "at": format_time(self.at),
            "forced": self.forced,
        }


@dataclass(frozen=True)
class PaidAccess:
    """One video bought (``own``) or rented (``rent``) through Stripe, as stored on the user item.

    A rental's window starts at its first play (``started``) and lasts
    ``window_seconds``; unstarted, it may be started until ``start_by``. A
    refund sets ``ended``: access stops at that moment.
    """

    video_id: str
    kind: Literal["own", "rent"]
    payment: str
    window_seconds: int = 0
    started: datetime | None = None
    start_by: datetime | None = None
    ended: datetime | None = None

    def ends_at(self) -> datetime | None:
        """When access ends (None: owned for good, or a rental not started yet)."""
        if self.kind == "rent" and self.started is not None:
            window_end = self.started + timedelta(seconds=self.window_seconds)
            return min(window_end, self.ended) if self.ended else window_end
        return self.ended

    def allows(self, now: datetime) -> bool:
        if self.ended is not None and now >= self.ended:
            return False
        if self.kind == "own":
            return True
        if self.started is None:
            return self.start_by is None or now < self.start_by
        return now < self.started + timedelta(seconds=self.window_seconds)

    def needs_start(self, now: datetime) -> bool:
        """A rental playing for the first time: its window starts now (one conditional write)."""
        return self.kind == "rent" and self.started is None and self.allows(now)


def _paid_from_item(item: Mapping[str, Any]) -> dict[str, PaidAccess]:
    paid: dict[str, PaidAccess] = {}
    for video_id, value in (item.get("paid", {}).get("M") or {}).items():
        entry = value.get("M") or {}
        kind = get_s(entry, "kind")
        if kind not in ("own", "rent"):
            continue  # an entry this code does not know grants nothing
        paid[video_id] = PaidAccess(
            video_id=video_id,
            kind=kind,  # type: ignore[arg-type]
            payment=get_s(entry, "payment") or "",
            window_seconds=get_n(entry, "window_seconds"),
            started=get_time(entry, "started"),
            start_by=get_time(entry, "start_by"),
            ended=get_time(entry, "ended"),
        )
    return paid


def entitlement_from_item(user_id: str, item: Mapping[str, Any]) -> Entitlement:
    """The entitlement part of a users-table item (shared with :mod:`app.users`)."""
    return Entitlement(
        user_id=user_id,
        premium=get_bool(item, "premium"),
        premium_until=get_time(item, "premium_until"),
        version=get_n(item, "version"),
        updated_at=get_time(item, "updated_at"),
        updated_by=get_s(item, "updated_by"),
        stripe_until=get_time(item, "stripe_until"),
        paid=_paid_from_item(item),
    )


class EntitlementStore:
    """Reads and changes premium state; every change comes with its audit record."""

    def __init__(
        self,
        client: DynamoDBClient,
        users_table: str,
        audit_table: str,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._client = client
        self._users = users_table
        self._audit = audit_table
        self._clock = clock

    def get(self, user_id: str) -> Entitlement:
        """The current entitlement, read fresh (one consistent GetItem).

        A user without a record is simply not premium (version 0).

        :raises DependencyUnavailableError: DynamoDB cannot be read (fail closed).
        """
        return self._read(validate_user_id(user_id)) or _no_record(user_id)

    def read_of(self, user_id: str) -> KeyRead[Entitlement]:
        """What :meth:`get` reads, as one read of a batch (:func:`app.dynamo.batch_get_pair`).

        :raises BadRequestError: a malformed user id.
        """
        validate_user_id(user_id)

        def parse(item: Item | None) -> Entitlement:
            return entitlement_from_item(user_id, item) if item else _no_record(user_id)

        return KeyRead(
            self._users,
            {"user_id": s(user_id)},
            parse,
            projection=_GET_PROJECTION,
            names=_GET_NAMES,
        )

    def set_premium(
        self,
        user_id: str,
        premium: bool,
        until: datetime | None,
        *,
        actor: str,
        expected_version: int | Collection[int] | None = None,
        forced: bool = False,
    ) -> Entitlement:
        """Grant (``premium=True``, optionally ``until`` an aware future moment) or revoke.

        The change and its audit record are written in one transaction,
        conditioned on the version being ``expected_version`` (one of them, for a
        collection; when None, the version read just before). ``forced`` says
        the caller asked for the change whatever the version (``If-Match: *``):
        it takes no ``expected_version`` and is recorded in the audit record.
        Revoking clears ``premium_until``. Asking for the state the user already
        has writes nothing and returns it unchanged (same version): only a
        change is audited.

        :raises BadRequestError: bad arguments (naive or past ``until``, ``until`` on revoke).
        :raises UserNotFoundError: there is no user record.
        :raises VersionConflictError: someone else changed it first; ``.current`` is their state.
        :raises DependencyUnavailableError: DynamoDB cannot be reached.
        """
        validate_user_id(user_id)
        if not isinstance(premium, bool):
            raise BadRequestError("premium must be true or false")
        if not isinstance(actor, str) or not 0 < len(actor) <= _ACTOR_MAX:
            raise BadRequestError("actor must be a non-empty string")
        accepted = _accepted_versions(expected_version)
        if not isinstance(forced, bool) or (forced and accepted is not None):
            raise BadRequestError("a forced change names no expected version")
        now = self._clock()
        until = _check_until(premium, until, now)

        # The state we change from: needed for the audit record, and it lets a
        # stale expected_version fail before any write.
        current = self._read(user_id)
        if current is None:
            raise UserNotFoundError(f"no user {user_id}")
        if accepted is not None and current.version not in accepted:
            wanted = next(iter(accepted)) if len(accepted) == 1 else sorted(accepted)
            raise VersionConflictError(
                f"user {user_id} is at version {current.version}, not {wanted}",
                expected=wanted,
                current=current,
            )
        if current.premium == premium and current.premium_until == until:
            # Saving the state it already has is no change: no write, no audit record.
            return current
        expected = current.version

        new_version = expected + 1
        token = uuid.uuid4().hex
        event_id = f"{now.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}#{token}"
        stamp = format_time(now)
        values: Item = {
            ":p": b(premium),
            ":v": n(new_version),
            ":expected": n(expected),
            ":now": s(stamp),
            ":actor": s(actor),
        }
        if until is None:
            update = "SET #p = :p, #v = :v, #ua = :now, #ub = :actor REMOVE #pu"
        else:
            update = "SET #p = :p, #pu = :until, #v = :v, #ua = :now, #ub = :actor"
            values[":until"] = s(format_time(until))
        if expected == 0:
            # Items written without a version (by hand, by older code) count as version 0.
            condition = "attribute_exists(#id) AND (attribute_not_exists(#v) OR #v = :expected)"
        else:
            condition = "attribute_exists(#id) AND #v = :expected"
        audit_item: Item = {
            "user_id": s(user_id),
            "event_id": s(event_id),
            "entity": s("audit"),
            "actor": s(actor),
            "action": s(_action(current.premium, premium)),
            "premium_before": b(current.premium),
            "premium_after": b(premium),
            "version": n(new_version),
            "at": s(stamp),
        }
        if current.premium_until is not None:
            audit_item["until_before"] = s(format_time(current.premium_until))
        if until is not None:
            audit_item["until_after"] = s(format_time(until))
        if forced:
            audit_item["forced"] = b(True)

        try:
            with unavailable_on_errors():
                self._client.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": self._users,
                                "Key": {"user_id": s(user_id)},
                                "UpdateExpression": update,
                                "ConditionExpression": condition,
                                "ExpressionAttributeNames": _NAMES,
                                "ExpressionAttributeValues": values,
                            }
                        },
                        {
                            "Put": {
                                "TableName": self._audit,
                                "Item": audit_item,
                                "ConditionExpression": "attribute_not_exists(event_id)",
                            }
                        },
                    ],
                    # Makes botocore's own retries of this call idempotent: a retry
                    # of a write that did land must not look like a lost race.
                    ClientRequestToken=token,
                )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            self._raise_for_cancellation(exc, user_id, expected)
        return Entitlement(
            user_id=user_id,
            premium=premium,
            premium_until=until,
            version=new_version,
            updated_at=_parse(stamp),
            updated_by=actor,
        )

    def list_audit(
        self, user_id: str | None, limit: int, cursor: str | None
    ) -> tuple[list[AuditRecord], str | None]:
        """Audit records newest first: one user's, or everyone's (``user_id=None``).

        :raises BadRequestError: bad ``limit`` (``app.dynamo.check_limit``) or a cursor not
            issued for this listing.
        """
        limit = check_limit(limit)
        request: dict[str, Any]
        if user_id is None:
            start = decode_cursor(
                cursor,
                key_types={"user_id": "S", "event_id": "S", "entity": "S"},
                fixed={"entity": "audit"},
            )
            request = {
                "TableName": self._audit,
                "IndexName": AUDIT_ALL_INDEX,
                "KeyConditionExpression": "#e = :e",
                "ExpressionAttributeNames": {"#e": "entity"},
                "ExpressionAttributeValues": {":e": s("audit")},
                "ScanIndexForward": False,
            }
            key_attributes: tuple[str, ...] = ("user_id", "event_id", "entity")
        else:
            validate_user_id(user_id)
            start = decode_cursor(
                cursor,
                key_types={"user_id": "S", "event_id": "S"},
                fixed={"user_id": user_id},
            )
            request = {
                "TableName": self._audit,
                "KeyConditionExpression": "#u = :u",
                "ExpressionAttributeNames": {"#u": "user_id"},
                "ExpressionAttributeValues": {":u": s(user_id)},
                "ScanIndexForward": False,
                "ConsistentRead": True,
            }
            key_attributes = ("user_id", "event_id")
        items, next_cursor = query_page(
            self._client, request, limit=limit, start_key=start, key_attributes=key_attributes
        )
        return [_audit_from_item(item) for item in items], next_cursor

    # --- internals -----------------------------------------------------------------

    def _read(self, user_id: str) -> Entitlement | None:
        with unavailable_on_errors():
            response = self._client.get_item(
                TableName=self._users,
                Key={"user_id": {"S": user_id}},
                ConsistentRead=True,
                ProjectionExpression=_GET_PROJECTION,
                ExpressionAttributeNames=_GET_NAMES,
            )
        item = response.get("Item")
        if not item:
            return None
        return entitlement_from_item(user_id, item)

    def _raise_for_cancellation(self, exc: ClientError, user_id: str, expected: int) -> None:
        reasons = [
            str(reason.get("Code", "None"))
            for reason in exc.response.get("CancellationReasons", [])
        ]
        if _THROTTLED_REASONS.intersection(reasons):
            raise DependencyUnavailableError("DynamoDB is throttling premium changes") from exc
        # reasons[0] is the user item's update. Anything but a failed version
        # check or a concurrent transaction on it is not a race: let it surface.
        if reasons and reasons[0] not in _CONFLICT_REASONS and "TransactionConflict" not in reasons:
            raise exc
        current = self._read(user_id)
        if current is None:
            raise UserNotFoundError(f"no user {user_id}") from exc
        raise VersionConflictError(
            f"user {user_id} changed concurrently (now version {current.version})",
            expected=expected,
            current=current,
        ) from exc


def _accepted_versions(expected: int | Collection[int] | None) -> frozenset[int] | None:
    """The versions a change may start from (None: whichever it is now)."""
    if expected is None:
        return None
    versions = (expected,) if isinstance(expected, int) else tuple(expected)
    if not versions or any(
        isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in versions
    ):
        raise BadRequestError("expected version must be a whole number >= 0")
    return frozenset(versions)


def _no_record(user_id: str) -> Entitlement:
    """The entitlement of a user without a record: not premium, version 0."""
    return Entitlement(user_id=user_id, premium=False, premium_until=None, version=0)


def _check_until(premium: bool, until: datetime | None, now: datetime) -> datetime | None:
    if until is None:
        return None
    if not isinstance(until, datetime):
        raise BadRequestError("until must be a datetime")
    if not premium:
        raise BadRequestError("until only applies when granting premium")
    if until.tzinfo is None or until.utcoffset() is None:
        raise BadRequestError("until must carry a timezone (ISO-8601 with Z or an offset)")
    # Stored to the second; the stored moment itself must still be in the future.
    stored = until.astimezone(UTC).replace(microsecond=0)
    if stored <= now:
        raise BadRequestError("until must be in the future")
    return stored


def _action(before: bool, after: bool) -> AuditAction:
    if after and not before:
        return "grant"
    if before and not after:
        return "revoke"
    return "update"


def _audit_from_item(item: Mapping[str, Any]) -> AuditRecord:
    action = get_s(item, "action", "update")
    return AuditRecord(
        user_id=get_s(item, "user_id") or "",
        event_id=get_s(item, "event_id") or "",
        actor=get_s(item, "actor") or "",
        action=action if action in ("grant", "revoke", "update", "end_stream") else "update",  # type: ignore[arg-type]
        premium_before=get_bool(item, "premium_before"),
        premium_after=get_bool(item, "premium_after"),
        until_before=get_time(item, "until_before"),
        until_after=get_time(item, "until_after"),
        version=get_n(item, "version"),
        at=get_time(item, "at") or datetime.min.replace(tzinfo=UTC),
        forced=get_bool(item, "forced"),
        source=get_s(item, "source") or "admin",
        detail=get_s(item, "detail") or "",
    )


def _iso_or_none(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).astimezone(UTC)


MAX_UNTIL_LENGTH = 64
MIN_UNTIL_YEAR = 1970
MAX_UNTIL_YEAR = 9998
"""End dates are refused outside these years: one more day or a UTC offset would
take a date in year 9999 (or year 1) past what ``datetime`` can hold."""
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# An end date D ("through D", the last day included) is stored as the instant
# the period ends: D + 1 day at 00:00 UTC. The four functions below are the
# only place that converts between the two; parse_until(until_text(x)) == x.


def end_after_day(day: date) -> datetime:
    """The instant a period that includes ``day`` (its last day, UTC) ends: the next midnight.

    :raises BadRequestError: ``day`` is the last date a datetime can hold (no next midnight).
    """
    try:
        return datetime.combine(day, time(0), tzinfo=UTC) + timedelta(days=1)
    except OverflowError:
        raise BadRequestError(f"until is too far in the future: {day.isoformat()}") from None


def last_day_included(until: datetime) -> date | None:
    """The last day (UTC) a period ending at ``until`` includes, when ``until`` is a midnight.

    The inverse of :func:`end_after_day`; None for an end with a time of day
    (set through the API), which no whole day describes.
    """
    moment = until.astimezone(UTC)
    if moment.time() != time(0) or moment.date() == date.min:
        return None
    return moment.date() - timedelta(days=1)


def until_text(until: datetime | None) -> str:
    """The text :func:`parse_until` reads back as exactly ``until`` ("" for no end).

    ``2030-12-31`` for a period through that day; the UTC moment to the
    second (``2030-12-31T18:00:00Z``) for an end with a time of day. Forms and
    the CLI show this, so what an admin sees is what saving it again means.
    """
    if until is None:
        return ""
    day = last_day_included(until)
    if day is not None:
        return day.isoformat()
    moment = until.astimezone(UTC).replace(tzinfo=None, microsecond=0)
    return moment.isoformat(timespec="seconds") + "Z"


def describe_end(until: datetime) -> str:
    """``through 2030-12-31 UTC`` or ``until 2030-12-31 18:00:00 UTC``: the end, for people.

    The date is the one an admin entered (:func:`until_text`), never the instant after it.
    """
    day = last_day_included(until)
    if day is not None:
        return f"through {day.isoformat()} UTC"
    return f"until {until_text(until).replace('T', ' ').removesuffix('Z')} UTC"


def parse_until(value: object, *, naive_is_utc: bool = False) -> datetime | None:
    """The end of a premium period from its text form; ``None``/``""`` means no end.

    Accepted: an ISO-8601 moment with ``Z`` or an offset; a date ``YYYY-MM-DD``,
    meaning through the end of that day (UTC), so the period ends at the next
    midnight UTC (:func:`end_after_day`). A moment without a timezone is refused
    unless ``naive_is_utc`` (forms and the CLI say "UTC" next to the field).
    Whether it lies in the future is the store's check; the year must be from
    :data:`MIN_UNTIL_YEAR` to :data:`MAX_UNTIL_YEAR`.

    :raises BadRequestError: not text, not a date/moment of those forms, or out of range.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequestError("until must be an ISO-8601 date or moment, or null")
    text = value.strip()
    if not text:
        return None
    if len(text) > MAX_UNTIL_LENGTH:
        raise BadRequestError("until is too long")
    # Every form fromisoformat reads starts with the four-digit year.
    year = text[:4]
    if year.isascii() and year.isdigit() and not MIN_UNTIL_YEAR <= int(year) <= MAX_UNTIL_YEAR:
        raise BadRequestError(
            f"until must be a date from {MIN_UNTIL_YEAR} to {MAX_UNTIL_YEAR}-12-31 "
            "(leave it empty for no end date)"
        )
    if _DATE_ONLY.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise BadRequestError(f"until is not a valid date: {text!r}") from None
        return end_after_day(day)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequestError(
            f"until must be an ISO-8601 date or moment (2026-12-01, 2026-12-01T18:00Z): {text!r}"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        if not naive_is_utc:
            raise BadRequestError("until must carry a timezone (Z or an offset such as +02:00)")
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00-05:00 is past the last datetime in UTC
        raise BadRequestError(f"until is outside the supported dates: {text!r}") from None
