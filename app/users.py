"""The user directory: one item per Cognito user, keyed by the user's ``sub``.

A record is created on first sign-up (idempotently: a second sign-up never
resets premium) and found by id, by username or by e-mail. Admin listings
page through the ``email-index`` (every user item carries ``entity="user"``
and a lower-cased e-mail), so an e-mail prefix search is a key condition,
never a Scan. Premium state on the same item belongs to
:class:`app.entitlements.EntitlementStore`, which alone changes it.

E-mail addresses are unique, compared in lower case: with the user item,
one transaction writes a claim item keyed ``email#<lower-cased e-mail>``
naming its owner, so a second user with the same address is refused
(:class:`~app.errors.EmailInUseError`) however the two sign-ups interleave.
A lookup that matches more than one user (records from before the claims)
is :class:`~app.errors.AmbiguousUserError`, never a pick. A password reset
records when the user's web sessions ended (:meth:`UserDirectory.end_sessions`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from app.dynamo import (
    Item,
    check_limit,
    decode_cursor,
    error_code,
    format_time,
    get_bool,
    get_n,
    get_s,
    get_time,
    query_page,
    s,
    unavailable_on_errors,
    utc_now,
)
from app.entitlements import Entitlement, entitlement_from_item, validate_user_id
from app.errors import (
    AmbiguousUserError,
    BadRequestError,
    DependencyUnavailableError,
    EmailInUseError,
    UserNotFoundError,
)
from app.tables import USERS_EMAIL_INDEX, USERS_USERNAME_INDEX
from app.ttl_cache import TtlCache

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SIGNUP_ACTOR = "signup"
NO_EMAIL_SORT_PREFIX = "~"
EMAIL_CLAIM_PREFIX = "email#"
"""Key prefix of e-mail claim items; no user id contains ``#`` (app.entitlements)."""
EMAIL_CLAIM_ENTITY = "email-claim"
SESSIONS_ENDED_TTL_SECONDS = 30.0
"""How old a cached "sessions ended at" may be: a reset ends web sessions within this time."""
_THROTTLED_REASONS = frozenset(
    {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
_TEXT = re.compile(r"^[^\x00-\x1f\x7f]+$")
_USERNAME_MAX = 128
_EMAIL_MAX = 254


@dataclass(frozen=True)
class UserRecord:
    """A user as the directory knows them, premium fields included."""

    user_id: str
    username: str
    email: str
    premium: bool
    premium_until: datetime | None
    version: int
    created_at: datetime | None
    updated_at: datetime | None
    updated_by: str | None

    @property
    def entitlement(self) -> Entitlement:
        return Entitlement(
            user_id=self.user_id,
            premium=self.premium,
            premium_until=self.premium_until,
            version=self.version,
            updated_at=self.updated_at,
            updated_by=self.updated_by,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "username": self.username,
            "email": self.email,
            "premium": self.premium,
            "premium_until": _iso(self.premium_until),
            "version": self.version,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "updated_by": self.updated_by,
        }


UserPage = tuple[list[UserRecord], str | None]
"""A page of users and the cursor of the next page (None on the last)."""


class UserDirectory:
    """Creates, finds and lists user records.

    :param sessions_ended_ttl: seconds a read of :meth:`sessions_ended_at` is reused.
    :param monotonic: the clock of that cache.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        users_table: str,
        *,
        clock: Callable[[], datetime] = utc_now,
        sessions_ended_ttl: float = SESSIONS_ENDED_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._table = users_table
        self._clock = clock
        self._sessions_ended: TtlCache[str, datetime | None] = TtlCache(
            sessions_ended_ttl, clock=monotonic
        )

    def create_on_signup(self, user_id: str, username: str, email: str | None) -> UserRecord:
        """The user's record, created now if there is none yet (not premium, version 0).

        Safe to call on every sign-in: an existing record is returned as it is.
        ``email`` may be empty (a pool that does not require one); such a user
        is listed after all users with an e-mail. The e-mail's claim is
        written in the same transaction as the record.

        :raises BadRequestError: malformed id, username or e-mail.
        :raises EmailInUseError: another user's record has this e-mail (any case).
        """
        validate_user_id(user_id)
        username = _check_text(username, "username", _USERNAME_MAX)
        if email is None or (isinstance(email, str) and not email.strip()):
            email = ""
        else:
            email = _check_text(email, "email", _EMAIL_MAX)
            if "@" not in email:
                raise BadRequestError("email must contain @")
        stamp = format_time(self._clock())
        # No premium, premium_until or version: absent, they mean not premium at version 0
        # (app.entitlements), so whoever creates records never writes an entitlement.
        item: Item = {
            "user_id": s(user_id),
            "entity": s("user"),
            "username": s(username),
            "email": s(email),
            # A user without an e-mail still appears in the listing, after everyone else.
            "email_lower": s(email.lower() if email else NO_EMAIL_SORT_PREFIX + username.lower()),
            "created_at": s(stamp),
            "updated_at": s(stamp),
            "updated_by": s(SIGNUP_ACTOR),
        }
        try:
            return self.get(user_id)  # an existing record is returned as it is, unchecked
        except UserNotFoundError:
            pass
        if not email:
            return self._put_without_email(user_id, item)
        # Records written before e-mail claims existed have no claim item: ask the index too.
        others = [u for u in self._by_email(email.lower(), limit=2) if u.user_id != user_id]
        if others:
            raise EmailInUseError(f"{email!r} belongs to user {others[0].user_id}")
        claim: Item = {
            "user_id": s(EMAIL_CLAIM_PREFIX + email.lower()),
            "entity": s(EMAIL_CLAIM_ENTITY),
            "owner": s(user_id),
            "created_at": s(stamp),
        }
        try:
            with unavailable_on_errors():
                # Updates, not puts: a put replaces a whole item, premium included, whatever
                # IAM allows; an update names every attribute it touches, so the roles'
                # dynamodb:Attributes condition can leave premium out (docs/deploy.md).
                record_update: Any = _create_only(
                    self._table, item, "attribute_not_exists(#user_id)"
                )
                claim_update: Any = _create_only(
                    self._table,
                    claim,
                    # A claim this user already holds (a retry) is fine.
                    "attribute_not_exists(#user_id) OR #owner = :owner",
                )
                self._client.transact_write_items(
                    TransactItems=[{"Update": record_update}, {"Update": claim_update}]
                )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = [
                str(reason.get("Code", "None"))
                for reason in exc.response.get("CancellationReasons", [])
            ]
            if _THROTTLED_REASONS.intersection(reasons):
                raise DependencyUnavailableError("DynamoDB is throttling sign-ups") from exc
            if reasons[:1] == ["ConditionalCheckFailed"]:
                return self.get(user_id)  # created meanwhile (a concurrent retry)
            if reasons[1:2] == ["ConditionalCheckFailed"]:
                raise EmailInUseError(f"{email!r} is claimed by another user") from exc
            raise
        return _record_from_item(item)

    def email_in_use(self, email: str) -> bool:
        """Whether any user's record has ``email`` (compared in lower case)."""
        lowered = email.strip().lower()
        if not lowered or len(lowered) > _EMAIL_MAX or not _TEXT.match(lowered):
            return False
        with unavailable_on_errors():
            claim = self._client.get_item(
                TableName=self._table,
                Key={"user_id": s(EMAIL_CLAIM_PREFIX + lowered)},
                ConsistentRead=True,
                ProjectionExpression="user_id",
            ).get("Item")
        return bool(claim) or bool(self._by_email(lowered, limit=1))

    def get(self, user_id: str) -> UserRecord:
        """:raises UserNotFoundError: no record has this id."""
        try:
            validate_user_id(user_id)
        except BadRequestError:
            raise UserNotFoundError("no such user") from None
        with unavailable_on_errors():
            response = self._client.get_item(
                TableName=self._table, Key={"user_id": s(user_id)}, ConsistentRead=True
            )
        item = response.get("Item")
        if not item:
            raise UserNotFoundError(f"no user {user_id}")
        return _record_from_item(item)

    def find(self, identifier: str) -> UserRecord:
        """The user whose id, username or e-mail (any case) is ``identifier``.

        :raises UserNotFoundError: nobody matches.
        :raises AmbiguousUserError: the e-mail or username matches more than one user.
        """
        if not isinstance(identifier, str) or not identifier.strip():
            raise UserNotFoundError("no such user")
        identifier = identifier.strip()
        if "@" in identifier:
            if len(identifier) <= _EMAIL_MAX and _TEXT.match(identifier):
                found = self._one(self._by_email(identifier.lower(), limit=2), identifier)
                if found:
                    return found
        else:
            try:
                return self.get(identifier)
            except UserNotFoundError:
                pass
        if len(identifier) <= _USERNAME_MAX and _TEXT.match(identifier):
            found = self._one(
                self._query(USERS_USERNAME_INDEX, "#u = :v", {"#u": "username"},
                            {":v": s(identifier)}, limit=2),
                identifier,
            )  # fmt: skip
            if found:
                return found
        raise UserNotFoundError(f"no user matches {identifier!r}")

    def end_sessions(self, user_id: str) -> datetime:
        """Record that every web session of the user signed in until now is over.

        Sessions opened before the returned moment end on their next request in
        this process at once, in other processes within ``sessions_ended_ttl``.
        Sessions keep whole seconds, so the moment is rounded up: one opened in
        the very second of the call ends too, never one from before it survives.

        :raises UserNotFoundError: no record has this id.
        """
        validate_user_id(user_id)
        clock = self._clock().astimezone(UTC)
        now = clock.replace(microsecond=0) + timedelta(seconds=1 if clock.microsecond else 0)
        try:
            with unavailable_on_errors():
                self._client.update_item(
                    TableName=self._table,
                    Key={"user_id": s(user_id)},
                    UpdateExpression="SET #se = :now",
                    ConditionExpression="attribute_exists(user_id) AND #e = :user",
                    ExpressionAttributeNames={"#se": "sessions_ended_at", "#e": "entity"},
                    ExpressionAttributeValues={":now": s(format_time(now)), ":user": s("user")},
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise UserNotFoundError(f"no user {user_id}") from exc
            raise
        self._sessions_ended.put(user_id, now)
        return now

    def sessions_ended_at(self, user_id: str) -> datetime | None:
        """When the user's web sessions were last ended (None: never), at most
        ``sessions_ended_ttl`` seconds old."""
        return self._sessions_ended.get_or_load(user_id, lambda: self._read_sessions_ended(user_id))

    def list(self, limit: int, cursor: str | None, email_prefix: str | None = None) -> UserPage:
        """Users in e-mail order, ``limit`` (``app.dynamo.check_limit``) at a time; optionally by
        e-mail prefix.

        :raises BadRequestError: bad limit, or a cursor not issued for this listing.
        """
        limit = check_limit(limit)
        prefix = (email_prefix or "").strip().lower()
        if len(prefix) > _EMAIL_MAX:
            raise BadRequestError("email prefix is too long")
        start = decode_cursor(
            cursor,
            key_types={"user_id": "S", "entity": "S", "email_lower": "S"},
            fixed={"entity": "user"},
        )
        if start is not None and not start["email_lower"]["S"].startswith(prefix):
            raise BadRequestError("cursor does not belong to this listing")
        names = {"#e": "entity"}
        values: Item = {":e": s("user")}
        condition = "#e = :e"
        if prefix:
            condition += " AND begins_with(#el, :prefix)"
            names["#el"] = "email_lower"
            values[":prefix"] = s(prefix)
        items, next_cursor = query_page(
            self._client,
            {
                "TableName": self._table,
                "IndexName": USERS_EMAIL_INDEX,
                "KeyConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            },
            limit=limit,
            start_key=start,
            key_attributes=("user_id", "entity", "email_lower"),
        )
        return [_record_from_item(item) for item in items], next_cursor

    # --- internals -----------------------------------------------------------------

    def _put_without_email(self, user_id: str, item: Item) -> UserRecord:
        try:
            with unavailable_on_errors():
                self._client.update_item(
                    **_create_only(self._table, item, "attribute_not_exists(#user_id)")
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return self.get(user_id)
        return _record_from_item(item)

    def _read_sessions_ended(self, user_id: str) -> datetime | None:
        validate_user_id(user_id)
        with unavailable_on_errors():
            item = self._client.get_item(
                TableName=self._table,
                Key={"user_id": s(user_id)},
                ConsistentRead=True,
                ProjectionExpression="#se",
                ExpressionAttributeNames={"#se": "sessions_ended_at"},
            ).get("Item")
        return get_time(item, "sessions_ended_at") if item else None

    def _by_email(self, email_lower: str, *, limit: int) -> Sequence[UserRecord]:
        return self._query(
            USERS_EMAIL_INDEX,
            "#e = :e AND #el = :v",
            {"#e": "entity", "#el": "email_lower"},
            {":e": s("user"), ":v": s(email_lower)},
            limit=limit,
        )

    def _query(
        self, index: str, condition: str, names: dict[str, str], values: Item, *, limit: int
    ) -> Sequence[UserRecord]:
        with unavailable_on_errors():
            response = self._client.query(
                TableName=self._table,
                IndexName=index,
                KeyConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                Limit=limit,
            )
        return [_record_from_item(item) for item in response.get("Items", [])]

    @staticmethod
    def _one(found: Sequence[UserRecord], identifier: str) -> UserRecord | None:
        if len(found) > 1:
            raise AmbiguousUserError(
                f"{identifier!r} matches more than one user", matches=tuple(found)
            )
        return found[0] if found else None


def _check_text(value: object, what: str, longest: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequestError(f"{what} is required")
    value = value.strip()
    if len(value) > longest or not _TEXT.match(value):
        raise BadRequestError(f"{what} is malformed")
    return value


def _record_from_item(item: Mapping[str, Any]) -> UserRecord:
    user_id = get_s(item, "user_id") or ""
    entitlement = entitlement_from_item(user_id, item)
    return UserRecord(
        user_id=user_id,
        username=get_s(item, "username") or "",
        email=get_s(item, "email") or "",
        premium=get_bool(item, "premium"),
        premium_until=entitlement.premium_until,
        version=get_n(item, "version"),
        created_at=get_time(item, "created_at"),
        updated_at=entitlement.updated_at,
        updated_by=entitlement.updated_by,
    )


def _iso(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None


def _create_only(table: str, item: Item, condition: str) -> dict[str, Any]:
    """An UpdateItem (or transaction Update) that writes ``item`` as a new item.

    Every attribute is named in the request, so IAM's ``dynamodb:Attributes``
    condition sees exactly what is written; ``condition`` may name any of them
    as ``#name`` (and ``:name`` for its value in ``item``).
    """
    fields = {name: value for name, value in item.items() if name != "user_id"}
    return {
        "TableName": table,
        "Key": {"user_id": item["user_id"]},
        "UpdateExpression": "SET " + ", ".join(f"#{name} = :{name}" for name in fields),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {f"#{name}": name for name in item},
        "ExpressionAttributeValues": {f":{name}": value for name, value in fields.items()},
    }
