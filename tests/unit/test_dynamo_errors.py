"""Failing closed: which DynamoDB errors become DependencyUnavailableError (HTTP 503)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from app.dynamo import client_config, dynamodb_client, unavailable_on_errors
from app.errors import DependencyUnavailableError


def _client_error(code: str, status: int = 400) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetItem")


UNAVAILABLE = [
    EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    ConnectionClosedError(endpoint_url="http://127.0.0.1:1"),
    ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
    ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
    _client_error("ProvisionedThroughputExceededException"),
    _client_error("ThrottlingException"),
    _client_error("RequestLimitExceeded"),
    _client_error("ResourceNotFoundException"),
    _client_error("InternalServerError", 500),
    _client_error("ServiceUnavailable", 503),
    _client_error("SomethingNew", 502),
]


@pytest.mark.parametrize("error", UNAVAILABLE, ids=lambda e: type(e).__name__ + str(e)[:40])
def test_outages_throttling_and_missing_tables_fail_closed(error: Exception) -> None:
    with pytest.raises(DependencyUnavailableError) as caught, unavailable_on_errors():
        raise error
    assert caught.value.__cause__ is error
    assert caught.value.status == 503


@pytest.mark.parametrize(
    "error",
    [
        _client_error("ConditionalCheckFailedException"),
        _client_error("ValidationException"),
        _client_error("TransactionCanceledException"),
        ValueError("not a DynamoDB error"),
    ],
    ids=lambda e: str(e)[:40],
)
def test_request_errors_pass_through_for_the_caller_to_judge(error: Exception) -> None:
    with pytest.raises(type(error)) as caught, unavailable_on_errors():
        raise error
    assert caught.value is error


def test_it_also_works_as_a_decorator() -> None:
    @unavailable_on_errors("the catalog")
    def read() -> None:
        raise _client_error("ThrottlingException")

    with pytest.raises(DependencyUnavailableError, match="the catalog"):
        read()


def test_the_shared_client_uses_short_timeouts_and_standard_retries() -> None:
    client = dynamodb_client(
        boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    )
    config: Any = client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (2, 5)
    # botocore's max_attempts counts retries: 3 retries, 4 attempts in all.
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    fresh: Any = client_config()
    assert fresh.retries == {"mode": "standard", "max_attempts": 3}
