"""DynamoDB targets for the data-layer tests: the AWS emulator and DynamoDB Local.

``ddb_target`` runs each test that asks for it twice, once per engine (test
ids ``[emulator]`` and ``[dynamodb-local]``), against fresh tables created by
:func:`app.tables.create_tables`. DynamoDB Local starts once per session.
Without Java or npm the DynamoDB Local tests fail with the reason, unless
``VIDGATE_ALLOW_SKIP_DYNAMODB_LOCAL=1`` is set, which turns that into a skip.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from app.local.dynamodb_local import DEFAULT_CACHE_DIR, DynamoDBLocal, DynamoDBLocalUnavailableError
from app.local.emulator import Emulator
from app.tables import TABLES, create_tables

ALLOW_SKIP_ENV = "VIDGATE_ALLOW_SKIP_DYNAMODB_LOCAL"
TARGETS = ("emulator", "dynamodb-local")
REGION = "us-east-1"

# The production client settings, with a pool big enough for the 20-thread tests.
TEST_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=10,
    max_pool_connections=32,
)


@dataclass(frozen=True)
class DdbTarget:
    """One DynamoDB engine with a fresh set of tables (logical name -> physical name)."""

    name: str
    endpoint: str
    client: Any
    tables: dict[str, str]


def make_client(endpoint: str, config: Config = TEST_CLIENT_CONFIG) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamoDBLocal]:
    """Amazon's DynamoDB Local, installed once into .cache/ and started once per session."""
    log_path = tmp_path_factory.mktemp("dynamodb-local") / "dynamodb-local.log"
    engine = DynamoDBLocal(DEFAULT_CACHE_DIR, log_path=log_path)
    try:
        engine.start()
    except DynamoDBLocalUnavailableError as exc:
        if os.environ.get(ALLOW_SKIP_ENV) == "1":
            pytest.skip(f"DynamoDB Local unavailable ({ALLOW_SKIP_ENV}=1): {exc}")
        pytest.fail(
            f"DynamoDB Local is required for the data-layer tests: {exc}\n"
            f"(install Java 17+ and npm, or set {ALLOW_SKIP_ENV}=1 to skip these tests)",
            pytrace=False,
        )
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def emulator_dynamodb(emulator: Emulator) -> Any:
    return make_client(emulator.endpoint)


@pytest.fixture(scope="session")
def dynamodb_local_dynamodb(dynamodb_local: DynamoDBLocal) -> Any:
    return make_client(dynamodb_local.endpoint)


@pytest.fixture(params=TARGETS)
def ddb_target(request: pytest.FixtureRequest) -> Iterator[DdbTarget]:
    """A DynamoDB engine and freshly created, uniquely named tables on it."""
    name = request.param
    if name == "emulator":
        endpoint = request.getfixturevalue("emulator").endpoint
        client = request.getfixturevalue("emulator_dynamodb")
    else:
        endpoint = request.getfixturevalue("dynamodb_local").endpoint
        client = request.getfixturevalue("dynamodb_local_dynamodb")
    prefix = f"t{uuid.uuid4().hex[:12]}"
    tables = {logical: f"{prefix}-{logical}" for logical in TABLES}
    create_tables(client, tables)
    yield DdbTarget(name=name, endpoint=endpoint, client=client, tables=tables)
    for table in tables.values():
        with contextlib.suppress(ClientError):
            client.delete_table(TableName=table)
