"""Operator side of the CloudFront signing key: ``vidgate keys create`` and ``vidgate keys rotate``.

:func:`create_signing_key` makes a key pair (:func:`app.keys.generate_key_pair`),
stores the private half in a NEW Secrets Manager secret named
``<prefix>/<label>`` (:func:`app.keys.store_private_key`) and returns the
public PEM and the secret's ARN: the two values of one key slot of
``infra/template.yaml`` (``SigningPublicKeyA`` / ``SigningKeySecretArnA``, or
slot B).

Every key gets its own secret, rather than a new version of one secret, so
that switching keys is one CloudFormation update that changes the secret ARN
and the Key-Pair-Id together. The playback function loads its key once per
execution environment; with a shared secret whose ``AWSCURRENT`` label moved,
fresh environments would sign with the new key under the old Key-Pair-Id (or
the reverse) until the next deploy, and CloudFront would refuse those URLs.

:func:`rotate_signing_key` creates the next key the same way and returns a
:class:`RotationPlan`: the new key goes into the empty slot while the old one
stays trusted by the key group, the active slot switches, and only after every
URL signed with the old key has expired is the old slot emptied and its secret
scheduled for deletion (:func:`retire_signing_key`). docs/deploy.md walks
through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from app.errors import ConfigurationError
from app.keys import KeyAlgorithm, KeyPair, generate_key_pair, store_private_key

Slot = Literal["A", "B"]
SLOTS: tuple[Slot, Slot] = ("A", "B")
DEFAULT_SECRET_PREFIX = "vidgate/cloudfront-signing-key"  # noqa: S105 - a name, not a secret
DEFAULT_RECOVERY_DAYS = 7
PROPAGATION_MINUTES = 15
"""How long to wait after adding a public key to the key group before signing with it."""


class SigningKeyExistsError(ConfigurationError):
    """A secret with the new key's name already exists; nothing was stored."""


def _other(slot: Slot) -> Slot:
    return "B" if slot == "A" else "A"


def key_label(moment: datetime) -> str:
    """The name part of a key's secret, from the time it was made: ``k20261101t120000z``.

    :raises ValueError: for a naive datetime.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return moment.astimezone(UTC).strftime("k%Y%m%dt%H%M%Sz")


@dataclass(frozen=True)
class CreatedKey:
    """A new signing key: its private half is stored, these are the deploy parameters."""

    algorithm: KeyAlgorithm
    label: str
    secret_id: str
    secret_arn: str
    public_pem: str

    def parameters(self, slot: Slot) -> dict[str, str]:
        """The template parameters that put this key into ``slot``."""
        return {
            f"SigningPublicKey{slot}": self.public_pem,
            f"SigningKeySecretArn{slot}": self.secret_arn,
        }

    def describe(self, slot: Slot) -> str:
        """What ``vidgate keys create`` prints: where the key is and how to deploy it."""
        return "\n".join(
            [
                f"Created {self.algorithm} CloudFront signing key {self.label}.",
                f"Private half: Secrets Manager secret {self.secret_id}",
                f"  ARN: {self.secret_arn}",
                "",
                f"Template parameters for key slot {slot}:",
                f"  SigningKeySecretArn{slot}={self.secret_arn}",
                f"  SigningPublicKey{slot}=",
                self.public_pem.rstrip("\n"),
                "",
                "Deploy with (see docs/deploy.md):",
                f"  ActiveSigningKey={slot} {sam_overrides(self.parameters(slot))}",
            ]
        )


def sam_overrides(parameters: dict[str, str]) -> str:
    """``Name="value"`` pairs for ``sam deploy --parameter-overrides``.

    SAM reads a double-quoted value up to the next double quote, newlines
    included, so a PEM passes whole. PEMs and ARNs hold no quote or backslash.

    :raises ValueError: a value holds ``"`` or ``\\``, which SAM would not read back as is.
    """
    for name, value in parameters.items():
        if '"' in value or "\\" in value:
            raise ValueError(f"{name} holds a quote or backslash; pass it another way")
    return " ".join(f'{name}="{value}"' for name, value in parameters.items())


def _secret_exists(secrets_client: Any, secret_id: str) -> bool:
    try:
        secrets_client.describe_secret(SecretId=secret_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return False
        raise
    return True


def create_signing_key(
    secrets_client: Any,
    *,
    secret_prefix: str = DEFAULT_SECRET_PREFIX,
    algorithm: KeyAlgorithm = "ecdsa-p256",
    now: datetime | None = None,
    generate: Callable[[KeyAlgorithm], KeyPair] = generate_key_pair,
) -> CreatedKey:
    """Make a key pair and store its private half in the new secret ``<prefix>/<label>``.

    :raises SigningKeyExistsError: that secret exists already (never overwritten).
    :raises ValueError: an unknown ``algorithm``.
    :raises botocore.exceptions.ClientError: Secrets Manager refused.
    """
    prefix = secret_prefix.strip().strip("/")
    if not prefix:
        raise ConfigurationError("the secret prefix must not be empty")
    label = key_label(now or datetime.now(UTC))
    secret_id = f"{prefix}/{label}"
    if _secret_exists(secrets_client, secret_id):
        raise SigningKeyExistsError(f"secret {secret_id} exists already; try again in a second")
    pair = generate(algorithm)
    store_private_key(secrets_client, secret_id, pair.private_pem)
    arn = str(secrets_client.describe_secret(SecretId=secret_id)["ARN"])
    return CreatedKey(
        algorithm=pair.algorithm,
        label=label,
        secret_id=secret_id,
        secret_arn=arn,
        public_pem=pair.public_pem.decode("ascii"),
    )


@dataclass(frozen=True)
class RotationPlan:
    """The steps from the key in ``current_slot`` to ``new_key`` in the other slot."""

    current_slot: Slot
    new_slot: Slot
    new_key: CreatedKey
    url_ttl_seconds: int

    def steps(self) -> list[str]:
        old, new = self.current_slot, self.new_slot
        wait_minutes = max(1, -(-self.url_ttl_seconds // 60)) + 5
        return [
            f"1. Done: new key {self.new_key.label} made; its private half is in "
            f"{self.new_key.secret_id}. The key in slot {old} still signs every URL.",
            f"2. Trust the new key too: deploy with {sam_overrides(self.new_key.parameters(new))} "
            f"(ActiveSigningKey stays {old}). The key group now holds both public keys.",
            f"3. Wait about {PROPAGATION_MINUTES} minutes, until every CloudFront edge knows "
            "the new key.",
            f"4. Switch: deploy with ActiveSigningKey={new}. Each playback environment gets "
            "the new secret and the new Key-Pair-Id together; URLs signed with the old key "
            "keep working, since it is still trusted.",
            f"5. Wait at least {wait_minutes} minutes (UrlTtlSeconds plus a margin), so every URL "
            "signed with the old key has expired.",
            f'6. Retire the old key: deploy with SigningPublicKey{old}="" '
            f'SigningKeySecretArn{old}="" (CloudFormation removes it from the key group), '
            "then schedule its secret for deletion "
            f"(aws secretsmanager delete-secret --secret-id <old secret> "
            f"--recovery-window-in-days {DEFAULT_RECOVERY_DAYS}).",
        ]

    def render(self) -> str:
        """What ``vidgate keys rotate`` prints."""
        return "\n".join(
            [
                f"Rotating the CloudFront signing key from slot {self.current_slot} "
                f"to slot {self.new_slot}.",
                "",
                *self.steps(),
                "",
                f"New public key (SigningPublicKey{self.new_slot}):",
                self.new_key.public_pem.rstrip("\n"),
            ]
        )


def rotate_signing_key(
    secrets_client: Any,
    *,
    current_slot: Slot,
    secret_prefix: str = DEFAULT_SECRET_PREFIX,
    algorithm: KeyAlgorithm = "ecdsa-p256",
    url_ttl_seconds: int = 300,
    now: datetime | None = None,
    generate: Callable[[KeyAlgorithm], KeyPair] = generate_key_pair,
) -> RotationPlan:
    """Create the next key (its own new secret) and plan its way into the other slot.

    Nothing about the current key changes: its secret stays as it is and its
    public key stays in the key group until step 6 of the plan.

    :raises ConfigurationError: ``current_slot`` is not "A" or "B".
    """
    if current_slot not in SLOTS:
        raise ConfigurationError(f"the current key slot must be A or B, got {current_slot!r}")
    created = create_signing_key(
        secrets_client,
        secret_prefix=secret_prefix,
        algorithm=algorithm,
        now=now,
        generate=generate,
    )
    return RotationPlan(current_slot, _other(current_slot), created, url_ttl_seconds)


def retire_signing_key(
    secrets_client: Any, secret_id: str, *, recovery_days: int = DEFAULT_RECOVERY_DAYS
) -> datetime:
    """Schedule the secret of a key no longer in the key group for deletion; returns when.

    Only after step 6 of the plan: a secret still named by the stack would take
    the playback function down (503) at its next cold start.

    :raises ValueError: ``recovery_days`` outside Secrets Manager's 7..30.
    """
    if not 7 <= recovery_days <= 30:
        raise ValueError("recovery_days must be between 7 and 30")
    response = secrets_client.delete_secret(SecretId=secret_id, RecoveryWindowInDays=recovery_days)
    when = response["DeletionDate"]
    return when if isinstance(when, datetime) else datetime.fromisoformat(str(when))
