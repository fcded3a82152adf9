"""``vidgate keys create`` / ``keys rotate`` functions against the emulator's Secrets Manager."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from app.errors import ConfigurationError
from app.keys import load_private_key_from_secret
from app.ops.keys_admin import (
    CreatedKey,
    SigningKeyExistsError,
    create_signing_key,
    key_label,
    retire_signing_key,
    rotate_signing_key,
    sam_overrides,
)
from app.signing import public_key_pem

pytestmark = pytest.mark.integration

WHEN = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def secrets(boto_session: boto3.Session) -> Any:
    return boto_session.client("secretsmanager")


@pytest.fixture
def prefix() -> str:
    return f"vidgate-test/{uuid.uuid4().hex[:8]}"


def test_a_created_key_keeps_its_private_half_in_a_new_secret_and_returns_the_public_half(
    secrets: Any, prefix: str
) -> None:
    created = create_signing_key(secrets, secret_prefix=prefix, now=WHEN)
    assert created.label == "k20261101t120000z"
    assert created.secret_id == f"{prefix}/k20261101t120000z"
    assert created.secret_arn == secrets.describe_secret(SecretId=created.secret_id)["ARN"]
    private = load_private_key_from_secret(secrets, created.secret_id)
    assert public_key_pem(private).decode() == created.public_pem
    assert created.public_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in created.describe("A")


def test_creating_a_key_never_overwrites_an_existing_secret(secrets: Any, prefix: str) -> None:
    first = create_signing_key(secrets, secret_prefix=prefix, now=WHEN)
    with pytest.raises(SigningKeyExistsError):
        create_signing_key(secrets, secret_prefix=prefix, now=WHEN)
    still = load_private_key_from_secret(secrets, first.secret_id)
    assert public_key_pem(still).decode() == first.public_pem


def test_rotation_makes_a_second_key_for_the_other_slot_and_leaves_the_first_alone(
    secrets: Any, prefix: str
) -> None:
    first = create_signing_key(secrets, secret_prefix=prefix, now=WHEN)
    plan = rotate_signing_key(
        secrets, current_slot="A", secret_prefix=prefix, now=WHEN + timedelta(days=90)
    )
    assert (plan.current_slot, plan.new_slot) == ("A", "B")
    assert plan.new_key.secret_id != first.secret_id
    assert plan.new_key.public_pem != first.public_pem
    old = load_private_key_from_secret(secrets, first.secret_id)
    assert public_key_pem(old).decode() == first.public_pem
    text = plan.render()
    assert "SigningPublicKeyB=" in text
    assert f'SigningKeySecretArnB="{plan.new_key.secret_arn}"' in text
    assert "ActiveSigningKey=B" in text
    assert 'SigningPublicKeyA=""' in text  # the old slot is emptied only at the end
    assert text.index("ActiveSigningKey=B") < text.index('SigningPublicKeyA=""')


def test_rotation_from_slot_b_goes_back_to_slot_a(secrets: Any, prefix: str) -> None:
    plan = rotate_signing_key(secrets, current_slot="B", secret_prefix=prefix, now=WHEN)
    assert plan.new_slot == "A"
    assert set(plan.new_key.parameters("A")) == {"SigningPublicKeyA", "SigningKeySecretArnA"}


def test_rotation_refuses_an_unknown_slot(secrets: Any, prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="slot"):
        rotate_signing_key(secrets, current_slot="C", secret_prefix=prefix)  # type: ignore[arg-type]


def test_a_retired_key_is_scheduled_for_deletion_not_deleted_at_once(
    secrets: Any, prefix: str
) -> None:
    created = create_signing_key(secrets, secret_prefix=prefix, now=WHEN)
    when = retire_signing_key(secrets, created.secret_id, recovery_days=7)
    assert when > datetime.now(UTC) + timedelta(days=6)
    with pytest.raises(ValueError):
        retire_signing_key(secrets, created.secret_id, recovery_days=3)


def test_labels_need_an_aware_time() -> None:
    assert key_label(datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)) == "k20270102t030405z"
    with pytest.raises(ValueError):
        key_label(datetime(2027, 1, 2))  # naive on purpose


def test_parameter_overrides_quote_each_value_whole_for_sam() -> None:
    key = CreatedKey("ecdsa-p256", "k1", "s", "arn:x", "-----BEGIN PUBLIC KEY-----\nAB+/=\n")
    text = sam_overrides(key.parameters("A"))
    assert text == (
        'SigningPublicKeyA="-----BEGIN PUBLIC KEY-----\nAB+/=\n" SigningKeySecretArnA="arn:x"'
    )
    with pytest.raises(ValueError):
        sam_overrides({"Odd": 'a "quoted" value'})
