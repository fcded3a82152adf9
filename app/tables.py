"""The one definition of vidgate's DynamoDB tables.

Both the local bootstrap (:func:`create_tables`, against the AWS emulator or
DynamoDB Local) and the SAM template (:func:`cloudformation_properties`, from
which ``infra/template.yaml`` is generated and checked) read :data:`TABLES`,
so the tables the code is tested against are the tables that get deployed.
Every table is on-demand (PAY_PER_REQUEST); every index projects ALL
attributes because each one answers a listing that shows whole items.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from app.errors import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

AttributeType = Literal["S", "N", "B"]


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index (projection ALL)."""

    name: str
    hash_key: str
    range_key: str | None = None

    def key_schema(self) -> list[dict[str, str]]:
        return _key_schema(self.hash_key, self.range_key)


@dataclass(frozen=True)
class TableSpec:
    """Keys, indexes and TTL of one table; names of the attributes they use."""

    logical: str
    hash_key: str
    range_key: str | None
    attribute_types: Mapping[str, AttributeType]
    indexes: tuple[IndexSpec, ...] = ()
    ttl_attribute: str | None = None
    # Derived: validated in __post_init__ so a typo in TABLES fails on import.
    key_attributes: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        used = {self.hash_key, *([self.range_key] if self.range_key else [])}
        for index in self.indexes:
            used.add(index.hash_key)
            if index.range_key:
                used.add(index.range_key)
        if used != set(self.attribute_types):
            raise ValueError(
                f"table {self.logical}: attribute_types must name exactly the key "
                f"attributes {sorted(used)}, got {sorted(self.attribute_types)}"
            )
        object.__setattr__(self, "key_attributes", frozenset(used))

    def key_schema(self) -> list[dict[str, str]]:
        return _key_schema(self.hash_key, self.range_key)

    def attribute_definitions(self) -> list[dict[str, str]]:
        return [
            {"AttributeName": name, "AttributeType": kind}
            for name, kind in sorted(self.attribute_types.items())
        ]

    def global_secondary_indexes(self) -> list[dict[str, Any]]:
        return [
            {
                "IndexName": index.name,
                "KeySchema": index.key_schema(),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in self.indexes
        ]

    def index(self, name: str) -> IndexSpec:
        for index in self.indexes:
            if index.name == name:
                return index
        raise KeyError(f"table {self.logical} has no index {name!r}")

    def create_table_request(self, table_name: str) -> dict[str, Any]:
        """Keyword arguments of ``CreateTable`` for this table under ``table_name``."""
        request: dict[str, Any] = {
            "TableName": table_name,
            "KeySchema": self.key_schema(),
            "AttributeDefinitions": self.attribute_definitions(),
            "BillingMode": "PAY_PER_REQUEST",
        }
        if self.indexes:
            request["GlobalSecondaryIndexes"] = self.global_secondary_indexes()
        return request


def _key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


USERS_USERNAME_INDEX = "username-index"
USERS_EMAIL_INDEX = "email-index"
VIDEOS_CATALOG_INDEX = "catalog-index"
VIDEOS_ALL_INDEX = "all-index"
VIDEOS_BROWSE_INDEX = "browse-index"
AUDIT_ALL_INDEX = "all-index"
BILLING_PARKED_INDEX = "parked-index"

TABLES: dict[str, TableSpec] = {
    "users": TableSpec(
        logical="users",
        hash_key="user_id",
        range_key=None,
        attribute_types={"user_id": "S", "username": "S", "entity": "S", "email_lower": "S"},
        indexes=(
            IndexSpec(USERS_USERNAME_INDEX, "username"),
            IndexSpec(USERS_EMAIL_INDEX, "entity", "email_lower"),
        ),
    ),
    "videos": TableSpec(
        logical="videos",
        hash_key="video_id",
        range_key=None,
        attribute_types={
            "video_id": "S",
            "catalog": "S",
            "sort_key": "S",
            "entity": "S",
            "browse": "S",
            "browse_sort": "S",
        },
        # catalog-index is sparse (published videos only, for viewers);
        # all-index holds every video, published or not (for admins);
        # browse-index holds only the search index's items (docs/catalog.md).
        indexes=(
            IndexSpec(VIDEOS_CATALOG_INDEX, "catalog", "sort_key"),
            IndexSpec(VIDEOS_ALL_INDEX, "entity", "sort_key"),
            IndexSpec(VIDEOS_BROWSE_INDEX, "browse", "browse_sort"),
        ),
    ),
    "audit": TableSpec(
        logical="audit",
        hash_key="user_id",
        range_key="event_id",
        attribute_types={"user_id": "S", "event_id": "S", "entity": "S"},
        indexes=(IndexSpec(AUDIT_ALL_INDEX, "entity", "event_id"),),
    ),
    "sessions": TableSpec(
        logical="sessions",
        hash_key="session_id",
        range_key=None,
        attribute_types={"session_id": "S"},
        ttl_attribute="expires_at",
    ),
    # Selling (docs/selling.md#data): offers, Stripe customer links, processed
    # webhook event ids (TTL), checkout results and parked webhooks (sparse index).
    "billing": TableSpec(
        logical="billing",
        hash_key="pk",
        range_key=None,
        attribute_types={"pk": "S", "entity": "S", "sort_key": "S"},
        indexes=(IndexSpec(BILLING_PARKED_INDEX, "entity", "sort_key"),),
        ttl_attribute="expires_at",
    ),
}


def cloudformation_properties(logical: str, table_name_ref: object) -> dict[str, Any]:
    """The ``Properties`` of the ``AWS::DynamoDB::Table`` resource for ``logical``.

    ``table_name_ref`` becomes ``TableName`` as given (a string, or an
    intrinsic such as ``{"Fn::Sub": "${AWS::StackName}-users"}``); ``None``
    leaves the name to CloudFormation. A pure value: no AWS call.
    """
    spec = _spec(logical)
    properties: dict[str, Any] = {}
    if table_name_ref is not None:
        properties["TableName"] = table_name_ref
    properties["BillingMode"] = "PAY_PER_REQUEST"
    properties["AttributeDefinitions"] = spec.attribute_definitions()
    properties["KeySchema"] = spec.key_schema()
    if spec.indexes:
        properties["GlobalSecondaryIndexes"] = spec.global_secondary_indexes()
    if spec.ttl_attribute:
        properties["TimeToLiveSpecification"] = {
            "AttributeName": spec.ttl_attribute,
            "Enabled": True,
        }
    properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    properties["SSESpecification"] = {"SSEEnabled": True}
    return properties


def create_tables(
    client: DynamoDBClient,
    names: Mapping[str, str],
    *,
    timeout: float = 300.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Create the tables named in ``names`` (logical -> physical) that do not exist yet.

    Idempotent: an existing table is checked against its definition and left
    as it is; each table is waited for until ACTIVE; TTL is enabled where the
    definition has it. Running it twice changes nothing.

    :raises ConfigurationError: an unknown logical name, or an existing table
        whose keys or indexes differ from the definition.
    :raises TimeoutError: a table did not become ACTIVE within ``timeout`` seconds.
    """
    unknown = sorted(set(names) - set(TABLES))
    if unknown:
        raise ConfigurationError(f"unknown logical table names: {unknown}; known: {sorted(TABLES)}")
    for logical, table_name in names.items():
        spec = TABLES[logical]
        description = _describe(client, table_name)
        if description is None:
            try:
                description = client.create_table(**spec.create_table_request(table_name))[
                    "TableDescription"
                ]
            except ClientError as exc:
                # Someone else created it between our describe and create.
                if _code(exc) != "ResourceInUseException":
                    raise
                description = _describe(client, table_name)
                if description is None:
                    raise
        _check_matches(spec, table_name, description)
        if description.get("TableStatus") != "ACTIVE":
            _wait_active(client, table_name, timeout=timeout, sleep=sleep)
        if spec.ttl_attribute:
            _ensure_ttl(client, table_name, spec.ttl_attribute)


def _spec(logical: str) -> TableSpec:
    try:
        return TABLES[logical]
    except KeyError:
        raise ConfigurationError(
            f"unknown logical table {logical!r}; known: {sorted(TABLES)}"
        ) from None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(client: DynamoDBClient, table_name: str) -> Mapping[str, Any] | None:
    try:
        return client.describe_table(TableName=table_name)["Table"]
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise


def _check_matches(spec: TableSpec, table_name: str, description: Mapping[str, Any]) -> None:
    problems: list[str] = []
    found_keys = [(k["AttributeName"], k["KeyType"]) for k in description.get("KeySchema", [])]
    wanted_keys = [(k["AttributeName"], k["KeyType"]) for k in spec.key_schema()]
    if found_keys != wanted_keys:
        problems.append(f"key schema is {found_keys}, expected {wanted_keys}")
    found_indexes = {
        index["IndexName"]: [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]]
        for index in description.get("GlobalSecondaryIndexes", [])
    }
    wanted_indexes = {
        index.name: [(k["AttributeName"], k["KeyType"]) for k in index.key_schema()]
        for index in spec.indexes
    }
    if found_indexes != wanted_indexes:
        problems.append(f"global secondary indexes are {found_indexes}, expected {wanted_indexes}")
    if problems:
        raise ConfigurationError(
            f"table {table_name} ({spec.logical}) exists but differs from its definition: "
            + "; ".join(problems)
        )


def _wait_active(
    client: DynamoDBClient, table_name: str, *, timeout: float, sleep: Callable[[float], None]
) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        description = _describe(client, table_name) or {}
        indexes = description.get("GlobalSecondaryIndexes", [])
        if description.get("TableStatus") == "ACTIVE" and all(
            index.get("IndexStatus", "ACTIVE") == "ACTIVE" for index in indexes
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {table_name} is not ACTIVE after {timeout:.0f}s")
        sleep(delay)
        delay = min(delay * 2, 5.0)


def _ensure_ttl(client: DynamoDBClient, table_name: str, attribute: str) -> None:
    current = client.describe_time_to_live(TableName=table_name).get("TimeToLiveDescription", {})
    if current.get("AttributeName") == attribute and current.get("TimeToLiveStatus") in (
        "ENABLED",
        "ENABLING",
    ):
        return
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"AttributeName": attribute, "Enabled": True},
    )
