"""The user directory: one item per Cognito user, keyed by the user's ``sub``.

A record is created on first sign-up (idempotently: a second sign-up never
resets premium) and found by id, by username or by e-mail. Admin listings
page through the ``email-index`` (every user item carries ``entity="user"``
and a lower-cased e-mail), so an e-mail prefix search is a key condition,
never a Scan. Premium state on the same item belongs to
:class:`app.entitlements.EntitlementStore`, which alone changes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
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
from app.errors import BadRequestError, UserNotFoundError
from app.tables import USERS_EMAIL_INDEX, USERS_USERNAME_INDEX

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SIGNUP_ACTOR = "signup"
NO_EMAIL_SORT_PREFIX = "~"
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
    """Creates, finds and lists user records."""

    def __init__(
        self,
        client: DynamoDBClient,
        users_table: str,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._client = client
        self._table = users_table
        self._clock = clock

    def create_on_signup(self, user_id: str, username: str, email: str | None) -> UserRecord:
        """The user's record, created now if there is none yet (not premium, version 0).

        Safe to call on every sign-in: an existing record is returned as it is.
        ``email`` may be empty (a pool that does not require one); such a user
        is listed after all users with an e-mail.

        :raises BadRequestError: malformed id, username or e-mail.
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
        fields = {name: value for name, value in item.items() if name != "user_id"}
        try:
            with unavailable_on_errors():
                # UpdateItem, not PutItem: a put replaces a whole item, premium included,
                # whatever IAM allows; an update names every attribute it touches, so the
                # roles' dynamodb:Attributes condition can leave premium out (docs/deploy.md).
                self._client.update_item(
                    TableName=self._table,
                    Key={"user_id": item["user_id"]},
                    UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in fields),
                    ConditionExpression="attribute_not_exists(#user_id)",
                    ExpressionAttributeNames={f"#{name}": name for name in item},
                    ExpressionAttributeValues={f":{name}": value for name, value in fields.items()},
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            return self.get(user_id)
        return _record_from_item(item)

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
        """
        if not isinstance(identifier, str) or not identifier.strip():
            raise UserNotFoundError("no such user")
        identifier = identifier.strip()
        if "@" in identifier:
            found = self._query_one(
                USERS_EMAIL_INDEX,
                "#e = :e AND #el = :v",
                {"#e": "entity", "#el": "email_lower"},
                {":e": s("user"), ":v": s(identifier.lower())},
            )
            if found:
                return found
        else:
            try:
                return self.get(identifier)
            except UserNotFoundError:
                pass
        if len(identifier) <= _USERNAME_MAX and _TEXT.match(identifier):
            found = self._query_one(
                USERS_USERNAME_INDEX, "#u = :v", {"#u": "username"}, {":v": s(identifier)}
            )
            if found:
                return found
        raise UserNotFoundError(f"no user matches {identifier!r}")

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

    def _query_one(
        self, index: str, condition: str, names: dict[str, str], values: Item
    ) -> UserRecord | None:
        with unavailable_on_errors():
            response = self._client.query(
                TableName=self._table,
                IndexName=index,
                KeyConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                Limit=1,
            )
        items = response.get("Items", [])
        return _record_from_item(items[0]) if items else None


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
