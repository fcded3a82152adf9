"""The config module names every missing or malformed variable in one error."""

from __future__ import annotations

import pytest

from app.config import URL_TTL_DEFAULT, Need, load_settings
from app.errors import ConfigurationError

ALL = frozenset(Need)
GOOD = {
    "AWS_REGION": "eu-west-1",
    "VIDGATE_USER_POOL_ID": "eu-west-1_AbC123",
    "VIDGATE_CLIENT_ID": "3abc",
    "VIDGATE_USERS_TABLE": "users",
    "VIDGATE_VIDEOS_TABLE": "videos",
    "VIDGATE_AUDIT_TABLE": "audit",
    "VIDGATE_SESSIONS_TABLE": "sessions",
    "VIDGATE_SESSION_KEY_ID": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd",
    "VIDGATE_BUCKET": "bucket",
    "VIDGATE_CDN_URL": "https://d111111abcdef8.cloudfront.net/",
    "VIDGATE_SIGNING_KEY_SECRET": "vidgate/key",
    "VIDGATE_KEY_PAIR_ID": "K2JCJMDEHXQW5F",
    "VIDGATE_SECRET_KEY": "x" * 40,
    "VIDGATE_INGEST_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/111122223333/vidgate-ingest",
    "VIDGATE_MEDIACONVERT_ROLE_ARN": "arn:aws:iam::111122223333:role/vidgate-mediaconvert",
    "VIDGATE_BILLING_TABLE": "billing",
    "VIDGATE_STRIPE_KEY_SECRET": "vidgate/stripe-key",
    "VIDGATE_STRIPE_WEBHOOK_SECRET": "vidgate/stripe-webhook",
}


def test_a_complete_environment_loads_with_derived_issuer_and_jwks_url() -> None:
    settings = load_settings(GOOD, ALL)
    assert settings.cognito is not None
    assert settings.cognito.issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"
    assert settings.cognito.jwks_url == settings.cognito.issuer + "/.well-known/jwks.json"
    assert settings.cdn_url == "https://d111111abcdef8.cloudfront.net"
    assert settings.url_ttl_seconds == URL_TTL_DEFAULT


def test_every_missing_variable_is_named_in_one_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({}, ALL)
    message = str(caught.value)
    for name in (
        "AWS_REGION",
        "VIDGATE_USER_POOL_ID",
        "VIDGATE_CLIENT_ID",
        "VIDGATE_USERS_TABLE",
        "VIDGATE_VIDEOS_TABLE",
        "VIDGATE_AUDIT_TABLE",
        "VIDGATE_SESSIONS_TABLE",
        "VIDGATE_SESSION_KEY_ID",
        "VIDGATE_BUCKET",
        "VIDGATE_CDN_URL",
        "VIDGATE_SIGNING_KEY_SECRET",
        "VIDGATE_KEY_PAIR_ID",
        "VIDGATE_SECRET_KEY",
        "VIDGATE_INGEST_QUEUE_URL",
    ):
        assert name in message


def test_malformed_values_are_named_with_what_was_found() -> None:
    env = {
        **GOOD,
        "VIDGATE_USER_POOL_ID": "not-a-pool",
        "VIDGATE_URL_TTL_SECONDS": "soon",
        "VIDGATE_CDN_URL": "ftp://x",
        "VIDGATE_TOKEN_LEEWAY_SECONDS": "9999",
    }
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env, ALL)
    message = str(caught.value)
    assert "'not-a-pool'" in message
    assert "VIDGATE_URL_TTL_SECONDS must be a whole number, got 'soon'" in message
    assert "VIDGATE_CDN_URL" in message
    assert "VIDGATE_TOKEN_LEEWAY_SECONDS must be between 0 and 300" in message


def test_url_lifetime_is_capped() -> None:
    with pytest.raises(ConfigurationError, match="VIDGATE_URL_TTL_SECONDS"):
        load_settings({**GOOD, "VIDGATE_URL_TTL_SECONDS": "86400"}, ALL)
    assert load_settings({**GOOD, "VIDGATE_URL_TTL_SECONDS": "5"}, ALL).url_ttl_seconds == 5


def test_a_handler_asks_only_for_what_it_needs() -> None:
    env = {
        "AWS_REGION": "us-east-1",
        "VIDGATE_USERS_TABLE": "u",
        "VIDGATE_VIDEOS_TABLE": "v",
        "VIDGATE_AUDIT_TABLE": "a",
    }
    settings = load_settings(env, {Need.TABLES})
    assert settings.users_table == "u"
    assert settings.cognito is None


def test_a_short_web_secret_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 32"):
        load_settings({**GOOD, "VIDGATE_SECRET_KEY": "short"}, ALL)


@pytest.mark.parametrize(
    "key_id",
    [
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        "alias/vidgate-local-session-tokens",
        "arn:aws:kms:us-east-1:111122223333:alias/vidgate-session-tokens",
        "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    ],
)
def test_the_session_key_may_be_named_any_way_kms_accepts(key_id: str) -> None:
    settings = load_settings({**GOOD, "VIDGATE_SESSION_KEY_ID": key_id}, {Need.SESSIONS})
    assert settings.session_key_id == key_id


@pytest.mark.parametrize(
    "key_id", ["my key", "alias/", "arn:aws:s3:::bucket", "key/123", "alias/x y", "*"]
)
def test_a_session_key_kms_would_not_accept_is_named(key_id: str) -> None:
    with pytest.raises(ConfigurationError, match="VIDGATE_SESSION_KEY_ID is not a KMS key id"):
        load_settings({**GOOD, "VIDGATE_SESSION_KEY_ID": key_id}, {Need.SESSIONS})


def test_the_ingest_queue_must_be_an_url() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({**GOOD, "VIDGATE_INGEST_QUEUE_URL": "vidgate-ingest"}, {Need.INGEST})
    assert "VIDGATE_INGEST_QUEUE_URL must be an http(s) URL" in str(caught.value)
    assert load_settings(GOOD, {Need.INGEST}).ingest_queue_url == GOOD["VIDGATE_INGEST_QUEUE_URL"]


def test_the_transcode_settings_name_a_role_and_an_optional_queue() -> None:
    settings = load_settings(GOOD, {Need.TRANSCODE})
    assert settings.mediaconvert_role_arn.endswith(":role/vidgate-mediaconvert")
    assert settings.mediaconvert_queue_arn == ""
    queue = "arn:aws:mediaconvert:eu-west-1:111122223333:queues/vidgate-jobs"
    env = {**GOOD, "VIDGATE_MEDIACONVERT_QUEUE_ARN": queue}
    assert load_settings(env, {Need.TRANSCODE}).mediaconvert_queue_arn == queue


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VIDGATE_MEDIACONVERT_ROLE_ARN", "vidgate-mediaconvert"),
        ("VIDGATE_MEDIACONVERT_ROLE_ARN", "arn:aws:iam::111122223333:user/someone"),
        ("VIDGATE_MEDIACONVERT_QUEUE_ARN", "arn:aws:mediaconvert:eu-west-1:111122223333:jobs/1"),
    ],
)
def test_a_malformed_transcode_arn_is_named(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        load_settings({**GOOD, name: value}, {Need.TRANSCODE})


def test_a_missing_mediaconvert_role_is_named() -> None:
    env = {k: v for k, v in GOOD.items() if k != "VIDGATE_MEDIACONVERT_ROLE_ARN"}
    with pytest.raises(ConfigurationError, match="VIDGATE_MEDIACONVERT_ROLE_ARN"):
        load_settings(env, {Need.TRANSCODE})
