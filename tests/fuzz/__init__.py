"""Fuzz tests (schemathesis and hypothesis) and the small AWS world they share with tests/faults.

:func:`build_world` fills one AWS emulator (any endpoint) with what the API
needs, under a unique prefix: a Cognito user pool and app client with an
``admin`` group and three signed-in users (alice premium, bob free, carol
admin), the four tables of :mod:`app.tables` with the users' records, a
private bucket, a free and a premium video in the catalog, and an ECDSA
CloudFront key in Secrets Manager. :class:`World` hands out
:class:`~app.config.Settings` for the web app and the handlers, fresh
:class:`~app.services.Services`, fresh tokens, and :meth:`World.snapshot` / :meth:`World.restore`,
which put the tables' items, the bucket and the key back into an emulator
that restarted empty (moto keeps its state in memory only). The app's own
clients find the emulator through ``AWS_ENDPOINT_URL``, exactly as in
``vidgate dev``; setting that variable is the caller's job. :func:`shared_world`
builds one world per emulator for the test session, for tests that only read
it or touch throwaway ids.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3

from app.catalog import Video, VideoCatalog
from app.config import Need, Settings, load_settings
from app.entitlements import EntitlementStore
from app.keys import KeyPair, generate_key_pair, store_private_key
from app.local.bootstrap import ensure_session_key
from app.local.emulator import EMULATOR_ENV
from app.services import Services
from app.tables import create_tables
from app.users import UserDirectory

PASSWORD = "Fuzz-Fault-Passw0rd!"  # throwaway emulator users
KEY_PAIR_ID = "KFUZZFAULTKEY1"
FREE_VIDEO = "free-clip"
PREMIUM_VIDEO = "premium-clip"
VIDEO_IDS = (FREE_VIDEO, PREMIUM_VIDEO)
# The publishing pipeline's queue, MediaConvert (the ingest and publish functions) and the
# Stripe webhook (a function of its own, POST /webhooks/stripe) are not part of this API.
ALL_NEEDS = frozenset(Need) - {Need.INGEST, Need.TRANSCODE, Need.STRIPE_WEBHOOK}
"""Every setting the web app, the viewer API and the admin API read."""


@dataclass(frozen=True)
class Account:
    username: str
    sub: str
    groups: tuple[str, ...]
    premium: bool
    access_token: str
    id_token: str


@dataclass
class World:
    """What :func:`build_world` made in the emulator at ``endpoint``."""

    endpoint: str
    prefix: str
    pool_id: str
    client_id: str
    tables: dict[str, str]
    bucket: str
    secret_id: str
    key: KeyPair
    accounts: dict[str, Account] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment the app reads (as ``vidgate dev`` or the SAM template set it)."""
        return {
            **EMULATOR_ENV,
            "AWS_ENDPOINT_URL": self.endpoint,
            "VIDGATE_USER_POOL_ID": self.pool_id,
            "VIDGATE_CLIENT_ID": self.client_id,
            "VIDGATE_JWKS_URL": f"{self.endpoint}/{self.pool_id}/.well-known/jwks.json",
            "VIDGATE_USERS_TABLE": self.tables["users"],
            "VIDGATE_VIDEOS_TABLE": self.tables["videos"],
            "VIDGATE_AUDIT_TABLE": self.tables["audit"],
            "VIDGATE_SESSIONS_TABLE": self.tables["sessions"],
            "VIDGATE_SESSION_KEY_ID": self.session_key_alias,
            "VIDGATE_BUCKET": self.bucket,
            "VIDGATE_CDN_URL": "http://127.0.0.1:9",  # grants are judged here, not fetched
            "VIDGATE_SIGNING_KEY_SECRET": self.secret_id,
            "VIDGATE_KEY_PAIR_ID": KEY_PAIR_ID,
            "VIDGATE_SECRET_KEY": "fuzz-and-fault-secret-key-" + "k" * 32,
            "VIDGATE_BASE_URL": "http://localhost",
            # Fuzzing and faults open many streams per user; the limits have their own tests.
            "VIDGATE_STREAM_LIMIT_FREE": "100",
            "VIDGATE_STREAM_LIMIT_PREMIUM": "100",
        }

    @property
    def session_key_alias(self) -> str:
        """The web sessions' KMS key, by alias: the same name after the emulator restarts."""
        return f"alias/{self.prefix}-session-tokens"

    def settings(self, **overrides: str) -> Settings:
        return load_settings({**self.env, **overrides}, ALL_NEEDS)

    def services(self, **overrides: str) -> Services:
        """A fresh composition root (its own clients, JWKS cache and claims cache)."""
        return Services(self.settings(**overrides), session=_session())

    def client(self, service: str) -> Any:
        return _session().client(service, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    def sign_in(self, username: str) -> Account:
        """New tokens for ``username`` (a token the verifier has not cached yet)."""
        account = self.accounts[username]
        tokens = self.client("cognito-idp").initiate_auth(
            ClientId=self.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
        )["AuthenticationResult"]
        return Account(
            account.username,
            account.sub,
            account.groups,
            account.premium,
            tokens["AccessToken"],
            tokens["IdToken"],
        )

    def seed(self) -> None:
        """Create the tables, the users' records, the videos, the bucket and the key."""
        dynamodb = self.client("dynamodb")
        create_tables(dynamodb, self.tables)
        directory = UserDirectory(dynamodb, self.tables["users"])
        entitlements = EntitlementStore(dynamodb, self.tables["users"], self.tables["audit"])
        for account in self.accounts.values():
            directory.create_on_signup(
                account.sub, account.username, f"{account.username}@example.com"
            )
            if account.premium:
                entitlements.set_premium(account.sub, True, None, actor="fuzz-world")
        _put_videos(VideoCatalog(dynamodb, self.tables["videos"]))
        self.client("s3").create_bucket(Bucket=self.bucket)
        store_private_key(self.client("secretsmanager"), self.secret_id, self.key.private_pem)
        ensure_session_key(self.client("kms"), self.session_key_alias)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Every item of every table (a real outage loses no data; a restarted emulator does)."""
        dynamodb = self.client("dynamodb")
        return {
            table: [
                item
                for page in dynamodb.get_paginator("scan").paginate(TableName=table)
                for item in page["Items"]
            ]
            for table in self.tables.values()
        }

    def restore(self, snapshot: dict[str, list[dict[str, Any]]]) -> None:
        """Put tables, items, bucket and key back into an emulator that restarted empty.

        The user pool is not recreated: tokens issued before stay valid, since
        the emulator signs every pool's tokens with one fixed key and the
        verifier already holds it.
        """
        dynamodb = self.client("dynamodb")
        create_tables(dynamodb, self.tables)
        for table, items in snapshot.items():
            for item in items:
                dynamodb.put_item(TableName=table, Item=item)
        self.client("s3").create_bucket(Bucket=self.bucket)
        store_private_key(self.client("secretsmanager"), self.secret_id, self.key.private_pem)
        ensure_session_key(self.client("kms"), self.session_key_alias)


def _session() -> boto3.Session:
    return boto3.Session(
        region_name=EMULATOR_ENV["AWS_REGION"],
        aws_access_key_id=EMULATOR_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=EMULATOR_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def _put_videos(catalog: VideoCatalog) -> None:
    for offset, video_id in enumerate(VIDEO_IDS):
        catalog.put(
            Video(
                video_id=video_id,
                title=video_id.replace("-", " ").title(),
                description=f"about {video_id}",
                tier="free" if video_id == FREE_VIDEO else "premium",
                object_key=f"videos/{video_id}/{video_id}.mp4",
                content_type="video/mp4",
                duration_seconds=12.5,
                poster_key=f"posters/{video_id}.jpg",
                size_bytes=1000,
                created_at=datetime(2026, 1, 1, 0, offset, tzinfo=UTC),
            )
        )


def _create_account(
    cognito: Any, world: World, username: str, groups: tuple[str, ...], premium: bool
) -> Account:
    user = cognito.admin_create_user(
        UserPoolId=world.pool_id,
        Username=username,
        UserAttributes=[
            {"Name": "email", "Value": f"{username}@example.com"},
            {"Name": "email_verified", "Value": "true"},
        ],
        MessageAction="SUPPRESS",
    )["User"]
    cognito.admin_set_user_password(
        UserPoolId=world.pool_id, Username=username, Password=PASSWORD, Permanent=True
    )
    for group in groups:
        cognito.admin_add_user_to_group(
            UserPoolId=world.pool_id, Username=username, GroupName=group
        )
    sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
    world.accounts[username] = Account(username, sub, groups, premium, "", "")
    return world.sign_in(username)


def build_world(endpoint: str) -> World:
    """A fresh, uniquely named world in the emulator at ``endpoint``."""
    prefix = f"fz{uuid.uuid4().hex[:10]}"
    session = _session()
    cognito: Any = session.client("cognito-idp", endpoint_url=endpoint)
    pool_id = cognito.create_user_pool(PoolName=f"{prefix}-pool")["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=f"{prefix}-web",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    cognito.create_group(UserPoolId=pool_id, GroupName="admin")
    world = World(
        endpoint=endpoint,
        prefix=prefix,
        pool_id=pool_id,
        client_id=client_id,
        tables={name: f"{prefix}-{name}" for name in ("users", "videos", "audit", "sessions")},
        bucket=f"{prefix}-media",
        secret_id=f"{prefix}/cloudfront-key",
        key=generate_key_pair("ecdsa-p256"),
    )
    people = {"alice": ((), True), "bob": ((), False), "carol": (("admin",), False)}
    for username, (groups, premium) in people.items():
        world.accounts[username] = _create_account(cognito, world, username, groups, premium)
    world.seed()
    return world


@cache
def shared_world(endpoint: str) -> World:
    """One world per emulator for the whole test session (tests that change it use their own)."""
    return build_world(endpoint)
