"""The one place that reads the environment.

Infra and code meet only here: the SAM template sets these variables on each
function, ``vidgate dev`` sets them for the local stack. Everything is
validated at start-up and every missing or malformed variable is named in one
:class:`~app.errors.ConfigurationError`. boto3 reads its own standard
variables (``AWS_REGION``, ``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``,
credentials) itself; we only read the region to build the Cognito issuer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from app.errors import ConfigurationError

STREAM_LIMIT_PREMIUM_DEFAULT = 2
STREAM_LIMIT_FREE_DEFAULT = 1
HEARTBEAT_DEFAULT = 60
URL_TTL_DEFAULT = 300
URL_TTL_MAX = 3600
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024**3
LARGEST_UPLOAD_BYTES = 5 * 1024**4  # S3's largest object
_USER_POOL_ID = re.compile(r"^(?P<region>[a-z]{2}(-gov)?-[a-z]+-\d)_[A-Za-z0-9]+$")
# What KMS accepts as a KeyId: key id, key ARN, alias name or alias ARN.
_KMS_KEY_ID = re.compile(
    r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}"
    r"|alias/[A-Za-z0-9/_-]{1,250}"
    r"|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key/[A-Za-z0-9-]{1,64}|alias/[A-Za-z0-9/_-]{1,250}))$"
)


_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_QUEUE_ARN = re.compile(r"^arn:aws[a-z-]*:mediaconvert:[a-z0-9-]+:\d{12}:queues/[\w-]{1,128}$")


class Need(Enum):
    """What a process needs; each handler asks only for its own part."""

    COGNITO = "cognito"
    TABLES = "tables"
    SESSIONS = "sessions"
    MEDIA = "media"
    SIGNING = "signing"
    WEB = "web"
    EVENTS = "events"
    ANALYTICS = "analytics"
    INGEST = "ingest"
    TRANSCODE = "transcode"
    BILLING = "billing"
    STRIPE_API = "stripe_api"
    STRIPE_WEBHOOK = "stripe_webhook"


@dataclass(frozen=True)
class CognitoSettings:
    region: str
    user_pool_id: str
    client_id: str
    issuer: str
    jwks_url: str
    domain: str | None
    leeway_seconds: int
    admin_needs_totp: bool = False


@dataclass(frozen=True)
class Settings:
    region: str
    cognito: CognitoSettings | None = None
    users_table: str = ""
    videos_table: str = ""
    audit_table: str = ""
    sessions_table: str = ""
    session_key_id: str = ""
    bucket: str = ""
    cdn_url: str = ""
    signing_secret_id: str = ""
    key_pair_id: str = ""
    url_ttl_seconds: int = URL_TTL_DEFAULT
    web_secret_key: str = ""
    web_base_url: str = ""
    local_triggers: bool = False
    events_stream: str = ""
    events_key_secret: str = ""
    analytics_database: str = ""
    analytics_workgroup: str = ""
    ingest_queue_url: str = ""
    mediaconvert_role_arn: str = ""
    mediaconvert_queue_arn: str = ""
    billing_table: str = ""
    stripe_key_secret_id: str = ""
    stripe_webhook_secret_id: str = ""
    stripe_api_base: str = ""
    policy_file: str = ""
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    stream_limit_premium: int = STREAM_LIMIT_PREMIUM_DEFAULT
    stream_limit_free: int = STREAM_LIMIT_FREE_DEFAULT
    heartbeat_seconds: int = HEARTBEAT_DEFAULT


# name -> (need, required, help). The README's configuration table mirrors this.
VARIABLES: dict[str, tuple[Need, bool, str]] = {
    "VIDGATE_USER_POOL_ID": (Need.COGNITO, True, "Cognito user pool id, e.g. us-east-1_AbC123"),
    "VIDGATE_CLIENT_ID": (Need.COGNITO, True, "Cognito app client id (no secret)"),
    "VIDGATE_COGNITO_ISSUER": (
        Need.COGNITO,
        False,
        "token issuer; default derived from the pool id",
    ),
    "VIDGATE_JWKS_URL": (Need.COGNITO, False, "JWKS URL; default <issuer>/.well-known/jwks.json"),
    "VIDGATE_COGNITO_DOMAIN": (Need.COGNITO, False, "hosted UI domain; when set, sign-in uses it"),
    "VIDGATE_TOKEN_LEEWAY_SECONDS": (
        Need.COGNITO,
        False,
        "clock leeway for exp/nbf/iat (0-300, default 5)",
    ),
    "VIDGATE_ADMIN_MFA": (
        Need.COGNITO,
        False,
        "'totp': admin rights only with TOTP MFA set up; empty: none required",
    ),
    "VIDGATE_USERS_TABLE": (Need.TABLES, True, "DynamoDB table of users and entitlements"),
    "VIDGATE_VIDEOS_TABLE": (Need.TABLES, True, "DynamoDB table of the video catalog"),
    "VIDGATE_AUDIT_TABLE": (Need.TABLES, True, "DynamoDB table of the premium audit trail"),
    "VIDGATE_SESSIONS_TABLE": (Need.SESSIONS, True, "DynamoDB table of web sessions (TTL)"),
    "VIDGATE_SESSION_KEY_ID": (
        Need.SESSIONS,
        True,
        "KMS key (id, ARN or alias) sealing the sessions' Cognito tokens",
    ),
    "VIDGATE_BUCKET": (Need.MEDIA, True, "private S3 bucket holding the videos"),
    "VIDGATE_MAX_UPLOAD_BYTES": (
        Need.MEDIA,
        False,
        "size cap of a browser upload in bytes (default 20 GiB, at most 5 TiB)",
    ),
    "VIDGATE_CDN_URL": (
        Need.SIGNING,
        True,
        "CloudFront distribution base URL (https://dxxx.cloudfront.net)",
    ),
    "VIDGATE_SIGNING_KEY_SECRET": (
        Need.SIGNING,
        True,
        "Secrets Manager id of the CloudFront private key",
    ),
    "VIDGATE_KEY_PAIR_ID": (Need.SIGNING, True, "CloudFront public key id (Key-Pair-Id)"),
    "VIDGATE_URL_TTL_SECONDS": (
        Need.SIGNING,
        False,
        f"signed URL lifetime (default {URL_TTL_DEFAULT}, max {URL_TTL_MAX})",
    ),
    "VIDGATE_STREAM_LIMIT_PREMIUM": (
        Need.TABLES,
        False,
        f"concurrent streams of a premium viewer (1-100, default {STREAM_LIMIT_PREMIUM_DEFAULT})",
    ),
    "VIDGATE_STREAM_LIMIT_FREE": (
        Need.TABLES,
        False,
        f"concurrent streams of a free viewer (1-100, default {STREAM_LIMIT_FREE_DEFAULT})",
    ),
    "VIDGATE_HEARTBEAT_SECONDS": (
        Need.TABLES,
        False,
        f"player heartbeat interval; a stream silent for two is over (10-600, default "
        f"{HEARTBEAT_DEFAULT})",
    ),
    "VIDGATE_SECRET_KEY": (Need.WEB, True, "secret for the web app's CSRF tokens (32+ chars)"),
    "VIDGATE_BASE_URL": (Need.WEB, False, "public base URL of the web app (hosted-UI callback)"),
    "VIDGATE_MEDIACONVERT_ROLE_ARN": (
        Need.TRANSCODE,
        True,
        "IAM role MediaConvert jobs run as (reads uploads/, writes videos/)",
    ),
    "VIDGATE_MEDIACONVERT_QUEUE_ARN": (
        Need.TRANSCODE,
        False,
        "MediaConvert queue ARN for the jobs (default: the account's Default queue)",
    ),
    "VIDGATE_LOCAL_TRIGGERS": (
        Need.WEB,
        False,
        "1 = the web app runs the PostConfirmation handler itself (local emulator only)",
    ),
    "VIDGATE_EVENTS_STREAM": (
        Need.EVENTS,
        False,
        "Firehose stream of viewing events; unset = events off (counted as disabled)",
    ),
    "VIDGATE_EVENTS_KEY_SECRET": (
        Need.EVENTS,
        False,
        "Secrets Manager id of the HMAC key that pseudonymizes user ids in viewing events",
    ),
    "VIDGATE_ANALYTICS_DATABASE": (
        Need.ANALYTICS,
        False,
        "Glue database of the events table; set = Athena, unset = DuckDB over VIDGATE_BUCKET",
    ),
    "VIDGATE_ANALYTICS_WORKGROUP": (
        Need.ANALYTICS,
        False,
        "Athena workgroup (its result location is in S3)",
    ),
    "VIDGATE_INGEST_QUEUE_URL": (
        Need.INGEST,
        True,
        "SQS queue of the publishing pipeline's ingest messages (re-transcodes are sent there)",
    ),
    "VIDGATE_POLICY_FILE": (
        Need.WEB,
        False,
        "JSON file of the operator's texts for the footer and policy pages (docs/selling.md)",
    ),
    # Selling (docs/selling.md): offers and Stripe bookkeeping, the two Stripe secrets.
    "VIDGATE_BILLING_TABLE": (
        Need.BILLING,
        False,
        "DynamoDB table of offers and Stripe records; without it nothing is for sale",
    ),
    "VIDGATE_STRIPE_KEY_SECRET": (
        Need.STRIPE_API,
        False,
        "Secrets Manager id of the Stripe secret API key (sk_…)",
    ),
    "VIDGATE_STRIPE_API_BASE": (
        Need.STRIPE_API,
        False,
        "Stripe API base URL (default https://api.stripe.com; vidgate dev: the stand-in)",
    ),
    "VIDGATE_STRIPE_WEBHOOK_SECRET": (
        Need.STRIPE_WEBHOOK,
        True,
        "Secrets Manager id of the webhook endpoint's signing secret (whsec_…)",
    ),
}


def _region(env: Mapping[str, str]) -> str:
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""


def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def load_settings(env: Mapping[str, str], needs: set[Need] | frozenset[Need]) -> Settings:
    """Validate and return the settings a process with ``needs`` requires.

    :raises ConfigurationError: naming every missing or malformed variable at once.
    """
    problems: list[str] = []

    def get(name: str) -> str:
        need, required, help_text = VARIABLES[name]
        value = env.get(name, "").strip()
        if need in needs and required and not value:
            problems.append(f"{name} is missing ({help_text})")
        return value

    def get_int(name: str, default: int, low: int, high: int) -> int:
        raw = get(name)
        if not raw:
            return default
        try:
            number = int(raw)
        except ValueError:
            problems.append(f"{name} must be a whole number, got {raw!r}")
            return default
        if not low <= number <= high:
            problems.append(f"{name} must be between {low} and {high}, got {number}")
            return default
        return number

    region = _region(env)
    if not region:
        problems.append("AWS_REGION (or AWS_DEFAULT_REGION) is missing")

    cognito = None
    if Need.COGNITO in needs:
        pool = get("VIDGATE_USER_POOL_ID")
        client_id = get("VIDGATE_CLIENT_ID")
        match = _USER_POOL_ID.match(pool) if pool else None
        if pool and not match:
            problems.append(f"VIDGATE_USER_POOL_ID is malformed: {pool!r} (expected <region>_<id>)")
        pool_region = match.group("region") if match else region
        issuer = get("VIDGATE_COGNITO_ISSUER") or (
            f"https://cognito-idp.{pool_region}.amazonaws.com/{pool}"
        )
        jwks_url = get("VIDGATE_JWKS_URL") or f"{issuer}/.well-known/jwks.json"
        for name, value in (("VIDGATE_COGNITO_ISSUER", issuer), ("VIDGATE_JWKS_URL", jwks_url)):
            if not _http_url(value):
                problems.append(f"{name} must be an http(s) URL, got {value!r}")
        domain = get("VIDGATE_COGNITO_DOMAIN") or None
        if domain and not _http_url(domain):
            problems.append(f"VIDGATE_COGNITO_DOMAIN must be an https URL, got {domain!r}")
        leeway = get_int("VIDGATE_TOKEN_LEEWAY_SECONDS", 5, 0, 300)
        admin_mfa = get("VIDGATE_ADMIN_MFA")
        if admin_mfa not in ("", "totp"):
            problems.append(f"VIDGATE_ADMIN_MFA must be 'totp' or empty, got {admin_mfa!r}")
        cognito = CognitoSettings(
            region=pool_region,
            user_pool_id=pool,
            client_id=client_id,
            issuer=issuer,
            jwks_url=jwks_url,
            domain=domain.rstrip("/") if domain else None,
            leeway_seconds=leeway,
            admin_needs_totp=admin_mfa == "totp",
        )

    users = get("VIDGATE_USERS_TABLE")
    videos = get("VIDGATE_VIDEOS_TABLE")
    audit = get("VIDGATE_AUDIT_TABLE")
    sessions = get("VIDGATE_SESSIONS_TABLE")
    session_key_id = get("VIDGATE_SESSION_KEY_ID")
    if session_key_id and not _KMS_KEY_ID.match(session_key_id):
        problems.append(
            f"VIDGATE_SESSION_KEY_ID is not a KMS key id, key ARN or alias: {session_key_id!r}"
        )
    bucket = get("VIDGATE_BUCKET")
    max_upload = get_int(
        "VIDGATE_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES, 1, LARGEST_UPLOAD_BYTES
    )
    cdn_url = get("VIDGATE_CDN_URL")
    if cdn_url and not _http_url(cdn_url):
        problems.append(f"VIDGATE_CDN_URL must be an http(s) URL, got {cdn_url!r}")
    secret_id = get("VIDGATE_SIGNING_KEY_SECRET")
    key_pair_id = get("VIDGATE_KEY_PAIR_ID")
    ttl = get_int("VIDGATE_URL_TTL_SECONDS", URL_TTL_DEFAULT, 1, URL_TTL_MAX)
    secret_key = get("VIDGATE_SECRET_KEY")
    if Need.WEB in needs and secret_key and len(secret_key) < 32:
        problems.append("VIDGATE_SECRET_KEY must be at least 32 characters")
    base_url = get("VIDGATE_BASE_URL")
    if base_url and not _http_url(base_url):
        problems.append(f"VIDGATE_BASE_URL must be an http(s) URL, got {base_url!r}")

    limit_premium = get_int("VIDGATE_STREAM_LIMIT_PREMIUM", STREAM_LIMIT_PREMIUM_DEFAULT, 1, 100)
    limit_free = get_int("VIDGATE_STREAM_LIMIT_FREE", STREAM_LIMIT_FREE_DEFAULT, 1, 100)
    heartbeat = get_int("VIDGATE_HEARTBEAT_SECONDS", HEARTBEAT_DEFAULT, 10, 600)

    local_triggers = get("VIDGATE_LOCAL_TRIGGERS")
    if local_triggers not in ("", "0", "1"):
        problems.append(f"VIDGATE_LOCAL_TRIGGERS must be 0 or 1, got {local_triggers!r}")

    events_stream = get("VIDGATE_EVENTS_STREAM")
    events_key_secret = get("VIDGATE_EVENTS_KEY_SECRET")
    if bool(events_stream) != bool(events_key_secret):
        problems.append("VIDGATE_EVENTS_STREAM and VIDGATE_EVENTS_KEY_SECRET go together")
    analytics_database = get("VIDGATE_ANALYTICS_DATABASE")
    analytics_workgroup = get("VIDGATE_ANALYTICS_WORKGROUP")
    if bool(analytics_database) != bool(analytics_workgroup):
        problems.append("VIDGATE_ANALYTICS_DATABASE and VIDGATE_ANALYTICS_WORKGROUP go together")
    ingest_queue_url = get("VIDGATE_INGEST_QUEUE_URL")
    if ingest_queue_url and not _http_url(ingest_queue_url):
        problems.append(
            f"VIDGATE_INGEST_QUEUE_URL must be an http(s) URL, got {ingest_queue_url!r}"
        )
    role_arn = get("VIDGATE_MEDIACONVERT_ROLE_ARN")
    if role_arn and not _ROLE_ARN.match(role_arn):
        problems.append(f"VIDGATE_MEDIACONVERT_ROLE_ARN is not an IAM role ARN: {role_arn!r}")
    queue_arn = get("VIDGATE_MEDIACONVERT_QUEUE_ARN")
    if queue_arn and not _QUEUE_ARN.match(queue_arn):
        problems.append(
            f"VIDGATE_MEDIACONVERT_QUEUE_ARN is not a MediaConvert queue ARN: {queue_arn!r}"
        )
    billing_table = get("VIDGATE_BILLING_TABLE")
    stripe_key_secret = get("VIDGATE_STRIPE_KEY_SECRET")
    stripe_webhook_secret = get("VIDGATE_STRIPE_WEBHOOK_SECRET")
    stripe_api_base = get("VIDGATE_STRIPE_API_BASE")
    # Selling is optional for the web app, but all or nothing: a table needs its key.
    if Need.STRIPE_API in needs and bool(billing_table) != bool(stripe_key_secret):
        problems.append("VIDGATE_BILLING_TABLE and VIDGATE_STRIPE_KEY_SECRET go together")
    if Need.STRIPE_WEBHOOK in needs and not billing_table:
        problems.append(
            "VIDGATE_BILLING_TABLE is missing (the webhook records Stripe events there)"
        )
    if stripe_api_base and not _http_url(stripe_api_base):
        problems.append(f"VIDGATE_STRIPE_API_BASE must be an http(s) URL, got {stripe_api_base!r}")

    if problems:
        raise ConfigurationError("vidgate is misconfigured:\n  - " + "\n  - ".join(problems))
    return Settings(
        region=region,
        cognito=cognito,
        users_table=users,
        videos_table=videos,
        audit_table=audit,
        sessions_table=sessions,
        session_key_id=session_key_id,
        bucket=bucket,
        cdn_url=cdn_url.rstrip("/"),
        signing_secret_id=secret_id,
        key_pair_id=key_pair_id,
        url_ttl_seconds=ttl,
        web_secret_key=secret_key,
        web_base_url=base_url.rstrip("/"),
        local_triggers=local_triggers == "1",
        events_stream=events_stream,
        events_key_secret=events_key_secret,
        analytics_database=analytics_database,
        analytics_workgroup=analytics_workgroup,
        ingest_queue_url=ingest_queue_url,
        mediaconvert_role_arn=role_arn,
        mediaconvert_queue_arn=queue_arn,
        billing_table=billing_table,
        stripe_key_secret_id=stripe_key_secret,
        stripe_webhook_secret_id=stripe_webhook_secret,
        stripe_api_base=stripe_api_base.rstrip("/"),
        policy_file=get("VIDGATE_POLICY_FILE"),
        max_upload_bytes=max_upload,
        stream_limit_premium=limit_premium,
        stream_limit_free=limit_free,
        heartbeat_seconds=heartbeat,
    )
