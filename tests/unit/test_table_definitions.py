"""The one table definition, as CloudFormation properties and as CreateTable requests."""

from __future__ import annotations

import pytest

from app.errors import ConfigurationError
from app.tables import TABLES, IndexSpec, TableSpec, cloudformation_properties


def test_there_are_exactly_the_five_logical_tables() -> None:
    assert set(TABLES) == {"users", "videos", "audit", "sessions", "billing"}


def test_users_properties_are_on_demand_encrypted_recoverable_with_both_indexes() -> None:
    props = cloudformation_properties("users", {"Fn::Sub": "${AWS::StackName}-users"})

    assert props["TableName"] == {"Fn::Sub": "${AWS::StackName}-users"}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "user_id", "KeyType": "HASH"}]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert "TimeToLiveSpecification" not in props
    indexes = {i["IndexName"]: i for i in props["GlobalSecondaryIndexes"]}
    assert indexes["username-index"]["KeySchema"] == [
        {"AttributeName": "username", "KeyType": "HASH"}
    ]
    assert indexes["email-index"]["KeySchema"] == [
        {"AttributeName": "entity", "KeyType": "HASH"},
        {"AttributeName": "email_lower", "KeyType": "RANGE"},
    ]
    assert all(i["Projection"] == {"ProjectionType": "ALL"} for i in indexes.values())
    assert all("ProvisionedThroughput" not in i for i in indexes.values())


def test_every_key_attribute_is_defined_and_no_other() -> None:
    for logical in TABLES:
        props = cloudformation_properties(logical, None)
        defined = {a["AttributeName"] for a in props["AttributeDefinitions"]}
        used = {k["AttributeName"] for k in props["KeySchema"]}
        for index in props.get("GlobalSecondaryIndexes", []):
            used |= {k["AttributeName"] for k in index["KeySchema"]}
        assert defined == used, logical
        assert "TableName" not in props


def test_sessions_expire_by_ttl_and_audit_sorts_by_event_id() -> None:
    sessions = cloudformation_properties("sessions", "s")
    assert sessions["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    audit = cloudformation_properties("audit", "a")
    assert audit["KeySchema"][1] == {"AttributeName": "event_id", "KeyType": "RANGE"}
    videos = cloudformation_properties("videos", "v")
    assert videos["GlobalSecondaryIndexes"][0]["IndexName"] == "catalog-index"


def test_the_create_table_request_matches_the_template_properties() -> None:
    for logical, spec in TABLES.items():
        request = spec.create_table_request("physical")
        props = cloudformation_properties(logical, "physical")
        for key in ("TableName", "KeySchema", "AttributeDefinitions", "BillingMode"):
            assert request[key] == props[key]
        assert request.get("GlobalSecondaryIndexes") == props.get("GlobalSecondaryIndexes")


def test_an_unknown_logical_table_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        cloudformation_properties("thumbnails", "t")


def test_a_definition_naming_an_undefined_attribute_fails_at_import_time() -> None:
    with pytest.raises(ValueError, match="attribute_types"):
        TableSpec(
            logical="broken",
            hash_key="id",
            range_key=None,
            attribute_types={"id": "S"},
            indexes=(IndexSpec("by-name", "name"),),
        )
