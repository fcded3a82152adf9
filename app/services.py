"""The composition root shared by the Lambda handlers and the web app.

``Services`` builds each collaborator once per process, lazily, from validated
:class:`~app.config.Settings`: boto3 clients, the token verifiers (with one
JWKS cache), the stores and the CloudFront signer. Nothing here is built per
request. Lambda handlers keep one module-level instance; the Flask app keeps
one on ``app.extensions``. What a request path needs only once built (the
JWKS cache, the key loader, the stores the handler modules do not import)
is imported where it is built, keeping it off the handlers' cold import.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from app.auth import CognitoVerifier
from app.catalog import VideoCatalog
from app.config import Settings
from app.dynamo import dynamodb_client
from app.errors import ConfigurationError
from app.playback import Playback, PlaybackRule
from app.signing import UrlSigner

if TYPE_CHECKING:
    from app.auth.jwks import JwksCache
    from app.entitlements import EntitlementStore
    from app.streams import StreamStore
    from app.user_pool import UserPool
    from app.users import UserDirectory
    from app.viewing_events import ViewingEvents

COGNITO_CLIENT_CONFIG = Config(
    # One retry only: a person is waiting, and the emulator answers operations
    # it lacks with a retryable 500.
    retries={"mode": "standard", "max_attempts": 2},
    connect_timeout=3,
    read_timeout=10,
)
"""botocore settings of the ``cognito-idp`` client."""


class Services:
    """Process-wide collaborators, created on first use and then reused."""

    viewing_events: ViewingEvents | None = None
    """The viewing-events emitter grants and stream ends report to (None: none are sent)."""

    def __init__(self, settings: Settings, *, session: boto3.Session | None = None) -> None:
        self.settings = settings
        self.session = session or boto3.Session(region_name=settings.region)

    def _cognito_settings(self) -> Any:
        if self.settings.cognito is None:
            raise ConfigurationError("Cognito settings were not loaded (Need.COGNITO)")
        return self.settings.cognito

    @cached_property
    def dynamodb(self) -> Any:
        return dynamodb_client(self.session)

    @cached_property
    def jwks(self) -> JwksCache:
        from app.auth.jwks import JwksCache

        return JwksCache(self._cognito_settings().jwks_url)

    def _verifier(self, token_use: str) -> CognitoVerifier:
        cognito = self._cognito_settings()
        return CognitoVerifier(
            issuer=cognito.issuer,
            client_id=cognito.client_id,
            token_use=token_use,  # type: ignore[arg-type]
            jwks=self.jwks,
            leeway_seconds=cognito.leeway_seconds,
        )

    @cached_property
    def access_verifier(self) -> CognitoVerifier:
        """Verifies access tokens: the only tokens the HTTP API accepts."""
        return self._verifier("access")

    @cached_property
    def id_verifier(self) -> CognitoVerifier:
        return self._verifier("id")

    @cached_property
    def entitlements(self) -> EntitlementStore:
        from app.entitlements import EntitlementStore

        return EntitlementStore(self.dynamodb, self.settings.users_table, self.settings.audit_table)

    @cached_property
    def streams(self) -> StreamStore:
        """Playback sessions: stream slots per plan, heartbeats, resume positions."""
        from app.streams import StreamStore

        settings = self.settings
        return StreamStore(
            self.dynamodb,
            settings.users_table,
            settings.audit_table,
            limits={"premium": settings.stream_limit_premium, "free": settings.stream_limit_free},
            heartbeat_seconds=settings.heartbeat_seconds,
        )

    @cached_property
    def users(self) -> UserDirectory:
        from app.users import UserDirectory

        return UserDirectory(self.dynamodb, self.settings.users_table)

    @cached_property
    def catalog(self) -> VideoCatalog:
        return VideoCatalog(self.dynamodb, self.settings.videos_table)

    @cached_property
    def cognito_idp(self) -> Any:
        """Cognito user-pool calls (sign-in, sign-up, sign-out, lookups)."""
        return self.session.client("cognito-idp", config=COGNITO_CLIENT_CONFIG)

    @cached_property
    def user_pool(self) -> UserPool:
        """Admin calls on the pool: current group membership (cached <= 30 s), global sign-out."""
        from app.user_pool import UserPool

        return UserPool(self.cognito_idp, self._cognito_settings().user_pool_id)

    @cached_property
    def s3(self) -> Any:
        return self.session.client("s3")

    @cached_property
    def secretsmanager(self) -> Any:
        return self.session.client("secretsmanager")

    @cached_property
    def signer(self) -> UrlSigner:
        """The CloudFront signer; its private key is read from Secrets Manager once.

        :raises SigningKeyUnavailableError: the secret cannot be read or parsed
            (nothing is cached then: the next use tries again). Never a default key.
        """
        settings = self.settings
        if not (settings.signing_secret_id and settings.key_pair_id and settings.cdn_url):
            raise ConfigurationError("signing settings were not loaded (Need.SIGNING)")
        from app.keys import load_private_key_from_secret

        key = load_private_key_from_secret(self.secretsmanager, settings.signing_secret_id)
        return UrlSigner(settings.key_pair_id, key, base_url=settings.cdn_url)

    @cached_property
    def playback_rule(self) -> PlaybackRule:
        """May this viewer play this video, without signing (the watch page's question)."""
        return PlaybackRule(self.entitlements, self.catalog)

    @cached_property
    def playback(self) -> Playback:
        """Grants (the playback rule, then a signature); building it loads the signing key."""
        return Playback(
            self.entitlements,
            self.catalog,
            self.signer,
            ttl_seconds=self.settings.url_ttl_seconds,
            streams=self.streams,
            events=self.viewing_events,
        )
