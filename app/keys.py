"""CloudFront signing keys: generating a pair, and keeping the private half in Secrets Manager.

The private key lives only in Secrets Manager (the secret's ``SecretString`` is
the unencrypted PKCS#8 PEM); its public half (SubjectPublicKeyInfo PEM) is what
gets registered in the distribution's key group. A process loads the private
key once at start-up with :func:`load_private_key_from_secret`; a secret that
is missing, unreadable or malformed stops it with
:class:`SigningKeyUnavailableError` naming the secret — there is never a
fallback key (fail closed: no URL without the right key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from app.errors import ConfigurationError, DependencyUnavailableError
from app.signing import RSA_KEY_BITS, PrivateKey, load_private_key, public_key_pem

KeyAlgorithm = Literal["ecdsa-p256", "rsa-2048"]
KEY_ALGORITHMS: tuple[KeyAlgorithm, ...] = get_args(KeyAlgorithm)
DEFAULT_KEY_ALGORITHM: KeyAlgorithm = "ecdsa-p256"


class SigningKeyUnavailableError(ConfigurationError, DependencyUnavailableError):
    """The CloudFront private key could not be read from its secret, or is not a usable key.

    It is a :class:`ConfigurationError` (a process without its key must not
    start) and a :class:`DependencyUnavailableError` (a request that meets it
    gets 503 ``unavailable``, no URL).
    """

    def __init__(self, secret_id: str, reason: str) -> None:
        super().__init__(f"CloudFront signing key in secret {secret_id!r} is unavailable: {reason}")
        self.secret_id = secret_id
        self.reason = reason


@dataclass(frozen=True)
class KeyPair:
    """A freshly generated key pair as PEM: PKCS#8 private key, SubjectPublicKeyInfo public key."""

    algorithm: KeyAlgorithm
    private_pem: bytes
    public_pem: bytes


def generate_key_pair(algorithm: KeyAlgorithm = "ecdsa-p256") -> KeyPair:
    """A new CloudFront key pair: ECDSA P-256 (the default) or RSA-2048.

    :raises ValueError: for any other ``algorithm``.
    """
    key: PrivateKey
    if algorithm == "ecdsa-p256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "rsa-2048":
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    else:
        raise ValueError(f"algorithm must be 'ecdsa-p256' or 'rsa-2048', got {algorithm!r}")
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyPair(algorithm, private_pem, public_key_pem(key))


def store_private_key(secrets_client: Any, secret_id: str, private_pem: bytes) -> None:
    """Store ``private_pem`` as secret ``secret_id``: create it, or put a new value if it differs.

    Idempotent: storing the value the secret already holds adds no version.
    The PEM is validated first, so a bad key is never stored.

    :raises UnsupportedSigningKeyError: when ``private_pem`` is not a usable key.
    :raises botocore.exceptions.ClientError: when Secrets Manager refuses.
    """
    load_private_key(private_pem)
    value = private_pem.decode("ascii")
    try:
        secrets_client.create_secret(
            Name=secret_id,
            SecretString=value,
            Description="vidgate CloudFront signing key (PKCS#8 PEM)",
        )
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceExistsException":
            raise
    try:
        current = secrets_client.get_secret_value(SecretId=secret_id).get("SecretString")
    except ClientError as exc:
        # A secret with no current value yet (e.g. created elsewhere without one).
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        current = None
    if current != value:
        secrets_client.put_secret_value(SecretId=secret_id, SecretString=value)


def load_private_key_from_secret(secrets_client: Any, secret_id: str) -> PrivateKey:
    """Read and parse the private key held by secret ``secret_id``; call once per process.

    :raises SigningKeyUnavailableError: when the secret is missing, cannot be
        read (access denied, endpoint down), is empty, or does not hold an
        RSA-2048 / ECDSA P-256 PEM private key.
    """
    try:
        response = secrets_client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "unknown error")
        raise SigningKeyUnavailableError(secret_id, f"Secrets Manager said {code}") from exc
    except BotoCoreError as exc:
        raise SigningKeyUnavailableError(secret_id, f"Secrets Manager unreachable ({exc})") from exc
    pem: str | bytes | None = response.get("SecretString") or response.get("SecretBinary")
    if not pem:
        raise SigningKeyUnavailableError(secret_id, "the secret holds no value")
    try:
        return load_private_key(pem)
    except ConfigurationError as exc:
        raise SigningKeyUnavailableError(
            secret_id, f"the secret is not a usable key: {exc}"
        ) from exc
