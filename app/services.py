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
from app.publishing import Publishing
from app.search import SearchIndex, searchable_catalog
from app.signing import UrlSigner

if TYPE_CHECKING:
    from app.analytics import AnalyticsQueries
    from app.auth.jwks import JwksCache
    from app.billing import BillingStore
    from app.browser_uploads import BrowserUploads
    from app.captions import CaptionStore
    from app.checkout import Checkout
    from app.entitlements import EntitlementStore
    from app.ingest import Ingest, Transcoder
    from app.job_events import JobEvents
    from app.previews import PreviewLog
    from app.purchases import RentalClock, StripeEventProcessor
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

FIREHOSE_CLIENT_CONFIG = Config(
    # Off the request path, but a dead endpoint must not hold the sender for long.
    retries={"mode": "standard", "max_attempts": 2},
    connect_timeout=2,
    read_timeout=5,
)
"""botocore settings of the ``firehose`` client (used only by the background sender)."""


def mediaconvert_client_config() -> Config:
    """A new object each time: botocore rewrites a config's ``retries`` in place."""
    return Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5)


class Services:
    """Process-wide collaborators, created on first use and then reused."""

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
        """The catalog; each write also updates the search index (app.search)."""
        return self._catalog_and_search[0]

    @cached_property
    def search(self) -> SearchIndex:
        """Title search, categories and A-Z over the published catalog."""
        return self._catalog_and_search[1]

    @cached_property
    def previews(self) -> PreviewLog:
        """The audit trail of admin previews (in the audit table)."""
        from app.previews import PreviewLog

        return PreviewLog(self.dynamodb, self.settings.audit_table)

    @cached_property
    def _catalog_and_search(self) -> tuple[VideoCatalog, SearchIndex]:
        return searchable_catalog(self.dynamodb, self.settings.videos_table)

    @cached_property
    def publishing(self) -> Publishing:
        """The publishing transitions (docs/publishing.md) on the same catalog."""
        return Publishing(self.dynamodb, self.settings.videos_table, catalog=self.catalog)

    @cached_property
    def sqs(self) -> Any:
        return self.session.client("sqs")

    @cached_property
    def cognito_idp(self) -> Any:
        """Cognito user-pool calls (sign-in, sign-up, sign-out, lookups)."""
        return self.session.client("cognito-idp", config=COGNITO_CLIENT_CONFIG)

    @cached_property
    def user_pool(self) -> UserPool:
        """Admin calls on the pool: current group membership (cached <= 30 s), global sign-out."""
        from app.user_pool import UserPool

        cognito = self._cognito_settings()
        return UserPool(
            self.cognito_idp, cognito.user_pool_id, admin_needs_totp=cognito.admin_needs_totp
        )

    @cached_property
    def s3(self) -> Any:
        return self.session.client("s3")

    @cached_property
    def browser_uploads(self) -> BrowserUploads:
        """Multipart uploads the admin's browser fills through presigned part URLs."""
        from app.browser_uploads import BrowserUploads

        if not self.settings.bucket:
            raise ConfigurationError("the media bucket was not configured (Need.MEDIA)")
        # Part URLs signed with SigV4 (botocore may still presign S3 with SigV2 by default).
        presigner = self.session.client("s3", config=Config(signature_version="s3v4"))
        return BrowserUploads(
            presigner, self.settings.bucket, max_bytes=self.settings.max_upload_bytes
        )

    @cached_property
    def captions(self) -> CaptionStore:
        from app.captions import CaptionStore

        if not self.settings.bucket:
            raise ConfigurationError("the media bucket was not configured (Need.MEDIA)")
        return CaptionStore(self.s3, self.settings.bucket)

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
            rentals=self.rental_clock,
            streams=self.streams,
            events=self.viewing_events,
        )

    @cached_property
    def viewing_events(self) -> ViewingEvents:
        """The viewing-event emitter (docs/viewing-events.md); never raises, never blocks.

        Without ``VIDGATE_EVENTS_STREAM`` events are off: each one is counted as
        ``disabled``. The HMAC key is read from Secrets Manager on the first event and
        kept for the life of the process.
        """
        from app.viewing_events import DisabledSink, ViewingEvents

        settings = self.settings
        if not settings.events_stream:
            return ViewingEvents(DisabledSink(), _unused_key)
        from app.firehose_sink import FirehoseSink

        client = self.session.client("firehose", config=FIREHOSE_CLIENT_CONFIG)
        secrets, secret_id = self.secretsmanager, settings.events_key_secret

        def load_key() -> bytes:
            answer = secrets.get_secret_value(SecretId=secret_id)
            return str(answer["SecretString"]).encode("utf-8")

        return ViewingEvents(FirehoseSink(client, settings.events_stream), load_key)

    @cached_property
    def analytics(self) -> AnalyticsQueries:
        """The dashboard's and the reports' queries: Athena when configured, else DuckDB."""
        from app.analytics import AnalyticsQueries

        return AnalyticsQueries.from_settings(self.settings, self.session)

    # --- the publishing pipeline in AWS (docs/mediaconvert.md) ------------------------

    @cached_property
    def mediaconvert(self) -> Any:
        """The regional MediaConvert endpoint: account endpoints (DescribeEndpoints) are
        no longer needed."""
        return self.session.client("mediaconvert", config=mediaconvert_client_config())

    @cached_property
    def transcoder(self) -> Transcoder:
        """``processing``, Probe, CreateJob: how the ingest and a retry start a job."""
        from app.ingest import Transcoder
        from app.mediaconvert import JobConfig, MediaConvertJobs

        settings = self.settings
        if not settings.mediaconvert_role_arn or not settings.bucket:
            raise ConfigurationError("transcode settings were not loaded (Need.TRANSCODE)")
        config = JobConfig(settings.mediaconvert_role_arn, settings.mediaconvert_queue_arn or None)
        jobs = MediaConvertJobs(self.mediaconvert, config)
        return Transcoder(self.publishing, jobs, settings.bucket)

    @cached_property
    def ingest(self) -> Ingest:
        from app.ingest import Ingest

        return Ingest(self.transcoder)

    @cached_property
    def job_events(self) -> JobEvents:
        from app.job_events import JobEvents

        return JobEvents(self.transcoder, self.s3, queue_arn=self.settings.mediaconvert_queue_arn)

    # --- selling (docs/selling.md) ------------------------------------------------------

    @cached_property
    def rental_clock(self) -> RentalClock:
        """Starts a rental's window at its first play."""
        from app.purchases import RentalClock

        return RentalClock(self.dynamodb, self.settings.users_table)

    def _billing_table(self) -> str:
        if not self.settings.billing_table:
            raise ConfigurationError("billing settings were not loaded (Need.BILLING)")
        return self.settings.billing_table

    @cached_property
    def billing(self) -> BillingStore:
        from app.billing import BillingStore

        return BillingStore(self.dynamodb, self._billing_table(), self.settings.users_table)

    @cached_property
    def stripe_events(self) -> StripeEventProcessor:
        from app.purchases import StripeEventProcessor

        return StripeEventProcessor(
            self.dynamodb,
            self.settings.users_table,
            self.settings.audit_table,
            self._billing_table(),
        )

    def _secret_text(self, secret_id: str, what: str) -> str:
        from app.errors import DependencyUnavailableError

        try:
            value = self.secretsmanager.get_secret_value(SecretId=secret_id).get("SecretString")
        except Exception as exc:  # any failure to read a secret: fail closed, retried next time
            raise DependencyUnavailableError(f"the {what} cannot be read") from exc
        if not isinstance(value, str) or not value.strip():
            raise DependencyUnavailableError(f"the {what} is empty")
        return value.strip()

    @cached_property
    def stripe_webhook_secret(self) -> str:
        """The webhook endpoint's signing secret (whsec_…), read once from Secrets Manager."""
        if not self.settings.stripe_webhook_secret_id:
            raise ConfigurationError("webhook settings were not loaded (Need.STRIPE_WEBHOOK)")
        return self._secret_text(self.settings.stripe_webhook_secret_id, "webhook signing secret")

    @cached_property
    def stripe(self) -> Any:
        """A ``stripe.StripeClient`` with the secret key from Secrets Manager."""
        if not self.settings.stripe_key_secret_id:
            raise ConfigurationError("Stripe settings were not loaded (Need.STRIPE_API)")
        import stripe

        key = self._secret_text(self.settings.stripe_key_secret_id, "Stripe secret key")
        base = self.settings.stripe_api_base or stripe.DEFAULT_API_BASE
        return stripe.StripeClient(key, base_addresses={"api": base}, max_network_retries=1)

    @cached_property
    def checkout(self) -> Checkout:
        from app.checkout import Checkout

        return Checkout(self.stripe, self.billing, site_url=self.settings.web_base_url)


def _unused_key() -> bytes:
    """The key of a disabled emitter: nothing it pseudonymizes leaves the process."""
    import secrets

    return secrets.token_bytes(32)
