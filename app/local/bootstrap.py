"""Idempotent bootstrap of the local stack inside the AWS emulator.

Creates (or finds) the Cognito user pool, app client, ``admin`` group and demo
users; the DynamoDB tables from :mod:`app.tables` (the same definitions the SAM
template uses); the private bucket with all four Block Public Access settings;
a CloudFront signing key pair whose private half lives in Secrets Manager; the
KMS key that seals the web sessions' Cognito tokens (found by its alias); the
publishing pipeline's ingest queue, DLQ, bucket notification and lifecycle
rules (:mod:`app.local.ingest_queue`); and the demo videos, uploaded and
registered in the catalog. Running it twice leaves the same state.

Each demo video is laid out as in AWS: its HLS renditions under
``videos/<id>/hls/`` (:func:`upload_folder` mirrors the transcoder's ``hls``
folder there, each file with its media type), the progressive MP4 under
``videos/<id>/<name>.mp4`` and the public poster at ``posters/<id>.jpg``; the
catalog entry names both the master playlist and the MP4.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.bucket_cors import s3_cors
from app.catalog import Video, VideoCatalog, hls_folder
from app.cognito_triggers import post_confirmation
from app.entitlements import EntitlementStore
from app.errors import VideoNotFoundError
from app.keys import (
    DEFAULT_KEY_ALGORITHM,
    KeyAlgorithm,
    generate_key_pair,
    load_private_key_from_secret,
    store_private_key,
)
from app.local.analytics_setup import ensure_events_key, ensure_events_stream
from app.local.ingest_queue import apply_lifecycle, ensure_ingest_queues, notify_on_upload
from app.local.media import DEMO_VIDEOS, ensure_demo_media
from app.ops.hls import CONTENT_TYPES as HLS_CONTENT_TYPES
from app.search import searchable_catalog
from app.signing import object_key_to_path
from app.tables import create_tables
from app.users import UserDirectory

log = logging.getLogger("vidgate.bootstrap")

PREFIX = "vidgate-local"
ADMIN_GROUP = "admin"
POSTER_PREFIX = "posters/"
MASTER_PLAYLIST = "master.m3u8"
SHA256_METADATA = "sha256"
"""Object metadata holding the uploaded file's SHA-256, so a re-run skips unchanged files."""
MEDIA_TYPES = {**HLS_CONTENT_TYPES, ".jpg": "image/jpeg"}
"""Content-Type per file suffix of what the bootstrap uploads; anything else is refused."""
PASSWORD_POLICY = {
    "MinimumLength": 12,
    "RequireUppercase": True,
    "RequireLowercase": True,
    "RequireNumbers": True,
    "RequireSymbols": True,
    "TemporaryPasswordValidityDays": 3,
}
USER_POOL_SETTINGS: dict[str, Any] = {
    "Policies": {"PasswordPolicy": PASSWORD_POLICY},
    "AliasAttributes": ["email"],
    "AutoVerifiedAttributes": ["email"],
    "UsernameConfiguration": {"CaseSensitive": False},
    "UserAttributeUpdateSettings": {"AttributesRequireVerificationBeforeUpdate": ["email"]},
    "Schema": [{"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True}],
    "AccountRecoverySetting": {"RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]},
    "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": False},
}
"""The user pool as infra/template.yaml configures it (a test compares the two), minus
what only AWS has: the PostConfirmation trigger (called in-process here) and deletion
protection."""


@dataclass(frozen=True)
class DemoUser:
    username: str
    email: str
    password: str
    premium: bool
    groups: tuple[str, ...] = ()


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("alice", "alice@example.com", "Alice-Premium-2026!", premium=True),
    DemoUser("bob", "bob@example.com", "Bob-Free-Viewer-2026!", premium=False),
    DemoUser(
        "carol", "carol@example.com", "Carol-Admin-2026!", premium=False, groups=(ADMIN_GROUP,)
    ),
)

# Object keys deliberately include a space, a plus and non-ASCII for one video,
# so the one key-to-path function is exercised by the demo itself.
OBJECT_KEYS = {
    "free-sampler": "videos/free-sampler/free-sampler.mp4",
    "premium-aurora": "videos/premium-aurora/aurora.mp4",
    "premium-mandelbrot": "videos/premium-mandelbrot/zoom + départ.mp4",
}


@dataclass
class StackState:
    """What the bootstrap made; the basis of ``dev-stack.json``."""

    region: str
    user_pool_id: str
    client_id: str
    issuer: str
    jwks_url: str
    tables: dict[str, str]
    bucket: str
    key_pair_id: str
    key_algorithm: str
    public_key_pem: str
    signing_secret_id: str
    users: list[dict[str, Any]] = field(default_factory=list)
    session_key_id: str = ""
    session_key_alias: str = ""
    events_stream: str = ""
    events_key_secret: str = ""
    queues: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def table_names(prefix: str = PREFIX) -> dict[str, str]:
    return {
        logical: f"{prefix}-{logical}"
        for logical in ("users", "videos", "audit", "sessions", "billing")
    }


def media_type(path: Path) -> str:
    """The Content-Type the edge (and CloudFront) serves ``path`` with.

    :raises ValueError: a suffix not in :data:`MEDIA_TYPES` (never guessed).
    """
    try:
        return MEDIA_TYPES[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"no media type for {path.name!r}") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def upload_if_changed(s3: Any, bucket: str, key: str, path: Path, content_type: str) -> int:
    """Put ``path`` at ``key`` unless the object already has its bytes and type; its size."""
    size = path.stat().st_size
    digest = _sha256(path)
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        head = None
    if (
        head is not None
        and head["ContentLength"] == size
        and head.get("ContentType") == content_type
        and head.get("Metadata", {}).get(SHA256_METADATA) == digest
    ):
        return size
    s3.upload_file(
        str(path),
        bucket,
        key,
        ExtraArgs={"ContentType": content_type, "Metadata": {SHA256_METADATA: digest}},
    )
    return size


def upload_folder(s3: Any, bucket: str, folder: Path, prefix: str) -> list[str]:
    """Mirror local ``folder`` under key ``prefix``: every file, and nothing else there.

    Keys are ``prefix`` + the file's path below ``folder`` (``/``-separated);
    each object gets the Content-Type of :func:`media_type`. Objects under
    ``prefix`` with no local file (an older ladder's rungs) are deleted, so a
    second run leaves exactly the folder. Returns the uploaded keys, sorted.

    :raises ValueError: ``prefix`` does not end with ``/``, ``folder`` is not a
        directory, or a file has an unknown suffix or a name S3 keys refuse
        (checked for every file before anything is uploaded).
    """
    if not prefix.endswith("/"):
        raise ValueError(f"prefix must end with '/', got {prefix!r}")
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a directory")
    files: dict[str, tuple[Path, str]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            key = prefix + path.relative_to(folder).as_posix()
            object_key_to_path(key)  # raises InvalidObjectKeyError (a ValueError)
            files[key] = (path, media_type(path))
    for key, (path, content_type) in files.items():
        upload_if_changed(s3, bucket, key, path, content_type)
    stale = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if item["Key"] not in files
    ]
    for start in range(0, len(stale), 1000):  # DeleteObjects takes at most 1000 keys
        s3.delete_objects(
            Bucket=bucket,
            Delete={"Objects": [{"Key": key} for key in stale[start : start + 1000]]},
        )
    return sorted(files)


def hls_folder_beside(mp4: Path) -> Path | None:
    """The transcoder's ``hls`` folder next to a demo MP4 (``<out>/hls/master.m3u8``), if made."""
    folder = mp4.parent / "hls"
    return folder if (folder / MASTER_PLAYLIST).is_file() else None


def ensure_session_key(kms: Any, alias: str) -> str:
    """The ARN of the KMS key behind ``alias``, created (symmetric, rotating) if it is missing."""
    for page in kms.get_paginator("list_aliases").paginate():
        for found in page["Aliases"]:
            if found["AliasName"] == alias and found.get("TargetKeyId"):
                return str(kms.describe_key(KeyId=found["TargetKeyId"])["KeyMetadata"]["Arn"])
    created = kms.create_key(
        Description="vidgate local: seals the web sessions' Cognito tokens",
        KeySpec="SYMMETRIC_DEFAULT",
        KeyUsage="ENCRYPT_DECRYPT",
    )["KeyMetadata"]
    kms.enable_key_rotation(KeyId=created["KeyId"])
    kms.create_alias(AliasName=alias, TargetKeyId=created["KeyId"])
    return str(created["Arn"])


def key_pair_id_for(public_pem: bytes) -> str:
    """A stable CloudFront-style public key id (K + 13 base32 chars) derived from the key."""
    digest = hashlib.sha256(public_pem).digest()
    return "K" + base64.b32encode(digest).decode()[:13]


class Bootstrap:
    """Builds the local stack's AWS resources through the emulator (any boto3 endpoint)."""

    def __init__(
        self,
        session: boto3.Session,
        *,
        endpoint: str,
        key_algorithm: KeyAlgorithm = DEFAULT_KEY_ALGORITHM,
        media_dir: Path,
        prefix: str = PREFIX,
        media_progress: Callable[[float], None] | None = None,
        site_url: str = "",
    ) -> None:
        self.session = session
        # The front door's origin: the only one the bucket's CORS lets upload parts.
        self.site_url = site_url.rstrip("/")
        # Called while demo media is generated (0-100 per video); it may raise to stop it.
        self.media_progress = media_progress
        self.endpoint = endpoint.rstrip("/")
        self.region = session.region_name or "us-east-1"
        self.key_algorithm = key_algorithm
        self.media_dir = media_dir
        self.prefix = prefix
        # Local-stack code may name the emulator's endpoint; the app never does.
        self.cognito: Any = session.client("cognito-idp", endpoint_url=self.endpoint)
        self.dynamodb: Any = session.client("dynamodb", endpoint_url=self.endpoint)
        self.s3: Any = session.client("s3", endpoint_url=self.endpoint)
        self.secrets: Any = session.client("secretsmanager", endpoint_url=self.endpoint)
        self.kms: Any = session.client("kms", endpoint_url=self.endpoint)
        self.firehose: Any = session.client("firehose", endpoint_url=self.endpoint)
        self.sqs: Any = session.client("sqs", endpoint_url=self.endpoint)

    # -- Cognito ---------------------------------------------------------------
    def _user_pool(self) -> str:
        name = f"{self.prefix}-pool"
        for page in self.cognito.get_paginator("list_user_pools").paginate(MaxResults=60):
            for pool in page["UserPools"]:
                if pool["Name"] == name:
                    return str(pool["Id"])
        created = self.cognito.create_user_pool(PoolName=name, **USER_POOL_SETTINGS)
        return str(created["UserPool"]["Id"])

    def _app_client(self, pool_id: str) -> str:
        name = f"{self.prefix}-web"
        for page in self.cognito.get_paginator("list_user_pool_clients").paginate(
            UserPoolId=pool_id, MaxResults=60
        ):
            for client in page["UserPoolClients"]:
                if client["ClientName"] == name:
                    return str(client["ClientId"])
        created = self.cognito.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=name,
            GenerateSecret=False,
            ExplicitAuthFlows=[
                "ALLOW_USER_PASSWORD_AUTH",
                "ALLOW_USER_SRP_AUTH",
                "ALLOW_REFRESH_TOKEN_AUTH",
            ],
            EnableTokenRevocation=True,
            ReadAttributes=["email", "email_verified"],
            PreventUserExistenceErrors="ENABLED",
        )
        return str(created["UserPoolClient"]["ClientId"])

    def _group(self, pool_id: str) -> None:
        with contextlib.suppress(self.cognito.exceptions.GroupExistsException):
            self.cognito.create_group(
                GroupName=ADMIN_GROUP, UserPoolId=pool_id, Description="vidgate administrators"
            )

    def _demo_user(
        self, pool_id: str, user: DemoUser, directory: UserDirectory, entitlements: EntitlementStore
    ) -> None:
        try:
            found = self.cognito.admin_get_user(UserPoolId=pool_id, Username=user.username)
        except self.cognito.exceptions.UserNotFoundException:
            self.cognito.admin_create_user(
                UserPoolId=pool_id,
                Username=user.username,
                UserAttributes=[
                    {"Name": "email", "Value": user.email},
                    {"Name": "email_verified", "Value": "true"},
                ],
                MessageAction="SUPPRESS",
            )
            found = self.cognito.admin_get_user(UserPoolId=pool_id, Username=user.username)
        self.cognito.admin_set_user_password(
            UserPoolId=pool_id, Username=user.username, Password=user.password, Permanent=True
        )
        for group in user.groups:
            self.cognito.admin_add_user_to_group(
                UserPoolId=pool_id, Username=user.username, GroupName=group
            )
        attributes = {a["Name"]: a["Value"] for a in found["UserAttributes"]}
        # The same PostConfirmation handler Cognito runs in AWS creates the record.
        post_confirmation(
            {
                "version": "1",
                "triggerSource": "PostConfirmation_ConfirmSignUp",
                "region": self.region,
                "userPoolId": pool_id,
                "userName": user.username,
                "request": {"userAttributes": attributes},
                "response": {},
            },
            directory,
        )
        if user.premium:
            current = entitlements.get(attributes["sub"])
            if not current.premium:
                entitlements.set_premium(
                    attributes["sub"],
                    True,
                    None,
                    actor="bootstrap",
                    expected_version=current.version,
                )

    # -- S3 and keys -------------------------------------------------------------
    def _bucket(self) -> str:
        bucket = f"{self.prefix}-videos"
        try:
            self.s3.head_bucket(Bucket=bucket)
        except ClientError:
            self.s3.create_bucket(Bucket=bucket)
        self.s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        self.s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        if self.site_url:
            # The same rules as the template's bucket (app/bucket_cors.py), for the local origin.
            self.s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=s3_cors(self.site_url))
        return bucket

    def _signing_key(self) -> tuple[str, str]:
        """Return (key_pair_id, public_pem); the private half stays in Secrets Manager."""
        secret_id = f"{self.prefix}/cloudfront-signing-key"
        try:
            key = load_private_key_from_secret(self.secrets, secret_id)
            is_ec = isinstance(key, ec.EllipticCurvePrivateKey)
            if is_ec != (self.key_algorithm == "ecdsa-p256"):
                raise LookupError("algorithm changed")
            public_pem = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        except Exception:
            pair = generate_key_pair(self.key_algorithm)
            store_private_key(self.secrets, secret_id, pair.private_pem)
            public_pem = pair.public_pem
        return key_pair_id_for(public_pem), public_pem.decode()

    def _videos(self, bucket: str, catalog: VideoCatalog) -> None:
        media = ensure_demo_media(self.media_dir, progress=self.media_progress)
        for index, demo in enumerate(DEMO_VIDEOS):
            files = media[demo.video_id]
            object_key = OBJECT_KEYS[demo.video_id]
            poster_key = f"{POSTER_PREFIX}{demo.video_id}.jpg"
            size = upload_if_changed(self.s3, bucket, object_key, files.video, "video/mp4")
            upload_if_changed(self.s3, bucket, poster_key, files.poster, "image/jpeg")
            hls_key: str | None = None
            renditions = hls_folder_beside(files.video)
            if renditions is not None:
                upload_folder(self.s3, bucket, renditions, hls_folder(demo.video_id))
                hls_key = hls_folder(demo.video_id) + MASTER_PLAYLIST
            try:
                created_at = catalog.get_any(demo.video_id).created_at
            except VideoNotFoundError:
                # Stable, ordered creation times so the catalog order is the demo order.
                created_at = datetime(2026, 1, 1, 0, 0, index, tzinfo=UTC)
            catalog.put(
                Video(
                    video_id=demo.video_id,
                    title=demo.title,
                    description=demo.description,
                    tier=demo.tier,
                    object_key=object_key,
                    content_type="video/mp4",
                    duration_seconds=round(files.duration_seconds, 3),
                    poster_key=poster_key,
                    size_bytes=size,
                    created_at=created_at,
                    published=True,
                    hls_key=hls_key,
                )
            )

    # -- all -------------------------------------------------------------------------
    def run(self) -> StackState:
        names = table_names(self.prefix)
        create_tables(self.dynamodb, names)
        pool_id = self._user_pool()
        client_id = self._app_client(pool_id)
        self._group(pool_id)
        directory = UserDirectory(self.dynamodb, names["users"])
        entitlements = EntitlementStore(self.dynamodb, names["users"], names["audit"])
        for user in DEMO_USERS:
            self._demo_user(pool_id, user, directory, entitlements)
        bucket = self._bucket()
        # The publishing pipeline: uploads/ -> the ingest queue (+ DLQ); storage tiers.
        queues = ensure_ingest_queues(self.sqs, self.prefix)
        notify_on_upload(self.s3, bucket, queues.ingest_arn)
        apply_lifecycle(self.s3, bucket)
        key_pair_id, public_pem = self._signing_key()
        session_key_alias = f"alias/{self.prefix}-session-tokens"
        session_key_id = ensure_session_key(self.kms, session_key_alias)
        self._videos(bucket, searchable_catalog(self.dynamodb, names["videos"])[0])
        events_key_secret = ensure_events_key(self.secrets, f"{self.prefix}/viewing-events-key")
        events_stream = ensure_events_stream(self.firehose, f"{self.prefix}-events", bucket)
        issuer = f"https://cognito-idp.{self.region}.amazonaws.com/{pool_id}"
        return StackState(
            region=self.region,
            user_pool_id=pool_id,
            client_id=client_id,
            issuer=issuer,
            jwks_url=f"{self.endpoint}/{pool_id}/.well-known/jwks.json",
            tables=names,
            bucket=bucket,
            key_pair_id=key_pair_id,
            key_algorithm=self.key_algorithm,
            public_key_pem=public_pem,
            signing_secret_id=f"{self.prefix}/cloudfront-signing-key",
            users=[
                {
                    "username": u.username,
                    "email": u.email,
                    "password": u.password,
                    "premium": u.premium,
                    "groups": list(u.groups),
                }
                for u in DEMO_USERS
            ],
            session_key_id=session_key_id,
            session_key_alias=session_key_alias,
            events_stream=events_stream,
            events_key_secret=events_key_secret,
            queues=queues.as_document(),
        )
