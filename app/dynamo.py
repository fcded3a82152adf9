"""What every DynamoDB adapter shares: the client, failing closed, paging, paired reads.

The client is built once per process by a composition root with short
timeouts and botocore's standard retry mode, so a DynamoDB outage turns into
a :class:`~app.errors.DependencyUnavailableError` (HTTP 503, no grant) within
seconds instead of hanging a request. Paging cursors are opaque to callers:
base64url JSON of a DynamoDB key, checked for shape on the way back in so a
tampered cursor is a 400, never a 500. Every listing pages by the one
page-size rule here: :data:`MAX_PAGE_SIZE`, checked by :func:`check_limit`
and, for text, :func:`parse_limit`. :func:`batch_get_pair` reads two items of
two tables (each described by a :class:`KeyRead`) in one round trip.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import ContextDecorator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from app import json_input
from app.errors import BadRequestError, DependencyUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]
"""A low-level DynamoDB item: attribute name -> ``{"S": ...}`` / ``{"N": ...}`` / ..."""

T = TypeVar("T")
U = TypeVar("U")


def client_config() -> Config:
    """Short timeouts and botocore's standard retries (3 retries after the first try).

    A new object each time: botocore rewrites a config's ``retries`` in place.
    """
    return Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=2,
        read_timeout=5,
    )


CLIENT_CONFIG = client_config()
"""The same settings as one shared object (for tests building their own clients)."""


# Error codes meaning "DynamoDB cannot serve this now" (after botocore's own retries).
UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ResourceNotFoundException",
        "InternalServerError",
        "ServiceUnavailable",
        "LimitExceededException",
    }
)

MAX_CURSOR_LENGTH = 4096
MAX_PAGE_SIZE = 100
"""The most items one page of any listing holds: the HTTP API's documented ``limit`` maximum."""
_PAGE_SIZE_DIGITS = 4  # enough for MAX_PAGE_SIZE; longer text is refused before int()
_KEY_VALUE_MAX = 2048
_CURSOR_DEPTH = 2  # {"name": {"S": "..."}}
_SCALAR_TYPES = frozenset({"S", "N"})
_NUMBER = re.compile(r"^-?\d{1,38}(\.\d{1,38})?$")


def dynamodb_client(session: boto3.Session | None = None) -> DynamoDBClient:
    """A DynamoDB client with short timeouts and standard retries.

    Build it once per process (composition root) and share it: boto3 clients
    are thread-safe. The endpoint comes from boto3's own configuration
    (``AWS_ENDPOINT_URL[_DYNAMODB]`` locally, the regional endpoint on AWS).
    """
    return (session or boto3.Session()).client("dynamodb", config=client_config())


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means DynamoDB could not be reached or could not answer."""
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(exc) in UNAVAILABLE_CODES or int(status or 0) >= 500
    return False


# Lower-case on purpose: it reads as a context manager, like contextlib.suppress.
class unavailable_on_errors(ContextDecorator):
    """Turn "DynamoDB is down / throttling / table missing" into DependencyUnavailableError.

    Use as ``with unavailable_on_errors(): ...`` or as a decorator. Other
    errors (validation, conditional check failures) pass through unchanged,
    so callers can still map those to their own domain errors.
    """

    def __init__(self, what: str = "DynamoDB") -> None:
        self.what = what

    def __enter__(self) -> unavailable_on_errors:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and is_unavailable(exc):
            detail = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
            raise DependencyUnavailableError(f"{self.what} is unavailable ({detail})") from exc


# --- two items, one round trip ------------------------------------------------------

BATCH_GET_CALLS = 3
"""BatchGetItem calls one :func:`batch_get_pair` makes at most while keys come back unprocessed."""
_BATCH_BACKOFF_SECONDS = 0.02


@dataclass(frozen=True)
class KeyRead(Generic[T]):
    """One item to read in :func:`batch_get_pair`: where, which attributes, what it becomes.

    ``parse`` turns the item (None when there is none) into the caller's value.
    """

    table: str
    key: Item
    parse: Callable[[Item | None], T]
    projection: str | None = None
    names: Mapping[str, str] | None = None

    def request(self) -> dict[str, Any]:
        """This read's entry in ``RequestItems``: strongly consistent."""
        entry: dict[str, Any] = {"Keys": [self.key], "ConsistentRead": True}
        if self.projection is not None:
            entry["ProjectionExpression"] = self.projection
        if self.names:
            entry["ExpressionAttributeNames"] = dict(self.names)
        return entry


def batch_get_pair(
    client: DynamoDBClient,
    first: KeyRead[T],
    second: KeyRead[U],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, U]:
    """Two items of two tables, read strongly consistent in one BatchGetItem: one round trip.

    DynamoDB may answer with some keys unprocessed (throttling); those are
    asked for again, at most :data:`BATCH_GET_CALLS` calls in all with a short
    backoff, then it fails closed.

    :raises DependencyUnavailableError: DynamoDB cannot be read, or keeps keys unprocessed.
    :raises ValueError: both reads are in the same table (one key per table here).
    """
    if first.table == second.table:
        raise ValueError("batch_get_pair reads one key from each of two tables")
    pending: Mapping[str, Any] = {first.table: first.request(), second.table: second.request()}
    found: dict[str, Item] = {}
    for call in range(BATCH_GET_CALLS):
        if call:
            sleep(_BATCH_BACKOFF_SECONDS * 2 ** (call - 1))
        with unavailable_on_errors():
            response = client.batch_get_item(RequestItems=pending)
        for table, items in response.get("Responses", {}).items():
            if items:
                found[table] = items[0]
        pending = response.get("UnprocessedKeys") or {}
        if not pending:
            return first.parse(found.get(first.table)), second.parse(found.get(second.table))
    raise DependencyUnavailableError(f"DynamoDB left keys unprocessed {BATCH_GET_CALLS} times")


# --- attribute values -------------------------------------------------------------


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(int(value))}


def b(value: bool) -> dict[str, bool]:
    return {"BOOL": bool(value)}


def get_s(item: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    value = item.get(name)
    return value["S"] if value and "S" in value else default


def get_n(item: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = item.get(name)
    return int(value["N"]) if value and "N" in value else default


def get_bool(item: Mapping[str, Any], name: str, default: bool = False) -> bool:
    value = item.get(name)
    return bool(value["BOOL"]) if value and "BOOL" in value else default


def utc_now() -> datetime:
    """The default clock of the stores: now, timezone-aware, in UTC."""
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """``moment`` as stored: ISO-8601 UTC to the second, ``2026-12-01T00:00:00Z``.

    :raises ValueError: for a naive datetime (no timezone), which would be ambiguous.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    """The aware UTC datetime stored as ``text`` (None stays None)."""
    if not text:
        return None
    return datetime.fromisoformat(text).astimezone(UTC)


def get_time(item: Mapping[str, Any], name: str) -> datetime | None:
    return parse_time(get_s(item, name))


# --- cursors -----------------------------------------------------------------------


def encode_cursor(key: Mapping[str, Any] | None) -> str | None:
    """The opaque cursor for ``key`` (a LastEvaluatedKey), or None when there is none."""
    if not key:
        return None
    raw = json.dumps(key, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(
    cursor: str | None,
    *,
    key_types: Mapping[str, str],
    fixed: Mapping[str, str] | None = None,
) -> Item | None:
    """The DynamoDB key behind ``cursor``, checked against the expected shape.

    ``key_types`` names exactly the attributes the key must have and their
    types (``"S"``/``"N"``); ``fixed`` pins string attributes to a value
    (e.g. the partition the query reads), since DynamoDB refuses a start key
    from another partition with a 400 of its own.

    :raises BadRequestError: on anything that is not a cursor we issued for this listing.
    """
    if cursor is None:
        return None
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise BadRequestError("malformed cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        # Bounded nesting: a cursor is a flat key, and deep JSON would be a RecursionError.
        key = json_input.loads(raw.decode("utf-8"), max_depth=_CURSOR_DEPTH)
    except (binascii.Error, ValueError) as exc:
        raise BadRequestError("malformed cursor") from exc
    if not isinstance(key, dict) or set(key) != set(key_types):
        raise BadRequestError("malformed cursor")
    for name, kind in key_types.items():
        value = key[name]
        if (
            not isinstance(value, dict)
            or kind not in _SCALAR_TYPES
            or list(value) != [kind]
            or not isinstance(value[kind], str)
            or not 0 < len(value[kind]) <= _KEY_VALUE_MAX
            or (kind == "N" and not _NUMBER.match(value[kind]))
        ):
            raise BadRequestError("malformed cursor")
    for name, wanted in (fixed or {}).items():
        if key[name] != {"S": wanted}:
            raise BadRequestError("cursor does not belong to this listing")
    return key


def check_limit(limit: object) -> int:
    """``limit`` as an int from 1 to :data:`MAX_PAGE_SIZE`.

    :raises BadRequestError: anything else (a bool is not a number here).
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise BadRequestError(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return limit


def parse_limit(text: str | None, default: int | None = None) -> int:
    """A page size written as text: a query parameter, a form field, a command-line option.

    Absent or empty means ``default``; without a default, that is refused too.

    :raises BadRequestError: not a whole number from 1 to :data:`MAX_PAGE_SIZE`.
    """
    if text is None or text == "":
        return check_limit(default)
    if not (text.isascii() and text.isdigit() and len(text) <= _PAGE_SIZE_DIGITS):
        raise BadRequestError(f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return check_limit(int(text))


def query_page(
    client: DynamoDBClient,
    request: Mapping[str, Any],
    *,
    limit: int,
    start_key: Item | None,
    key_attributes: Collection[str],
) -> tuple[list[Item], str | None]:
    """One page of ``limit`` items of a Query, and the cursor of the next page.

    It reads one item more than asked so the cursor is None exactly when
    nothing follows (no empty last page), following DynamoDB's own
    LastEvaluatedKey when a response is cut short by its 1 MB page size.
    A start key DynamoDB refuses (a cursor for another listing) is a 400.
    """
    items: list[Item] = []
    last_key = start_key
    while True:
        kwargs = dict(request)
        kwargs["Limit"] = limit + 1 - len(items)
        if last_key:
            kwargs["ExclusiveStartKey"] = last_key
        try:
            with unavailable_on_errors():
                response = client.query(**kwargs)
        except ClientError as exc:
            if start_key is not None and error_code(exc) == "ValidationException":
                raise BadRequestError("cursor does not belong to this listing") from exc
            raise
        items.extend(response.get("Items", []))
        last_key = response.get("LastEvaluatedKey")
        if len(items) > limit or not last_key:
            break
    if len(items) > limit:
        items = items[:limit]
        return items, encode_cursor({name: items[-1][name] for name in key_attributes})
    return items, None
