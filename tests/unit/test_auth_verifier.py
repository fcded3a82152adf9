"""CognitoVerifier happy paths, the claims cache, configuration, and extract_bearer."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from app.auth import (
    DEFAULT_MAX_TOKEN_BYTES,
    AuthError,
    CognitoVerifier,
    InvalidSignatureError,
    InvalidTokenUseError,
    JwksUnavailableError,
    MalformedTokenError,
    MissingTokenError,
    Principal,
    TokenExpiredError,
    TokenLifetimeTooLongError,
    TokenTooLargeError,
    UnknownKeyIdError,
    extract_bearer,
)
from app.auth.jwks import JwksCache, SigningKey
from app.errors import ConfigurationError, DependencyUnavailableError, UnauthorizedError
from tests.unit.tokens import (
    CLIENT_ID,
    DROP,
    ISSUER,
    JWKS_URL,
    LEEWAY,
    NOW,
    FakeClock,
    FakeJwksEndpoint,
    access_claims,
    b64url,
    id_claims,
    jwks_document,
    make_verifier,
    mint,
    rsa_key,
    segment,
)


class CountingJwks(JwksCache):
    """A real JwksCache that also counts key lookups (each uncached verify does one)."""

    def __init__(self, endpoint: FakeJwksEndpoint) -> None:
        super().__init__(JWKS_URL, fetch=endpoint, clock=FakeClock(0))
        self.lookups = 0

    def get_key(self, kid: str) -> SigningKey:
        self.lookups += 1
        return super().get_key(kid)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def jwks() -> CountingJwks:
    return CountingJwks(FakeJwksEndpoint())


# --------------------------------------------------------------------------- happy paths


def test_an_access_token_becomes_a_principal(jwks: CountingJwks, clock: FakeClock) -> None:
    principal = make_verifier(jwks, clock=clock).verify(mint(access_claims()))
    assert principal == Principal(
        user_id="11111111-2222-3333-4444-555555555555",
        username="alice",
        email=None,
        groups=("admin",),
        token_use="access",
        expires_at=NOW + 3600,
    )
    assert principal.is_admin


def test_an_id_token_becomes_a_principal_with_email(jwks: CountingJwks, clock: FakeClock) -> None:
    principal = make_verifier(jwks, "id", clock=clock).verify(
        mint(id_claims(**{"cognito:groups": ["editors", "admin"]}))
    )
    assert principal.username == "alice"
    assert principal.email == "alice@example.com"
    assert principal.groups == ("editors", "admin")
    assert principal.token_use == "id"
    assert principal.is_admin


def test_a_user_in_no_group_has_no_groups_and_is_not_admin(
    jwks: CountingJwks, clock: FakeClock
) -> None:
    principal = make_verifier(jwks, clock=clock).verify(
        mint(access_claims(**{"cognito:groups": DROP}))
    )
    assert principal.groups == ()
    assert not principal.is_admin


def test_membership_of_a_group_merely_named_like_admin_is_not_admin(
    jwks: CountingJwks, clock: FakeClock
) -> None:
    groups = {"cognito:groups": ["Admin", "admins", "admin "]}
    assert not make_verifier(jwks, clock=clock).verify(mint(access_claims(**groups))).is_admin


def test_an_access_token_ignores_an_email_claim(jwks: CountingJwks, clock: FakeClock) -> None:
    token = mint(access_claims(email="someone@example.com"))
    assert make_verifier(jwks, clock=clock).verify(token).email is None


def test_an_id_token_without_email_has_none(jwks: CountingJwks, clock: FakeClock) -> None:
    assert make_verifier(jwks, "id", clock=clock).verify(mint(id_claims(email=DROP))).email is None


def test_the_principal_is_frozen(jwks: CountingJwks, clock: FakeClock) -> None:
    principal = make_verifier(jwks, clock=clock).verify(mint(access_claims()))
    with pytest.raises(AttributeError):
        principal.username = "mallory"  # type: ignore[misc]


def test_a_fractional_exp_is_floored_in_expires_at(jwks: CountingJwks, clock: FakeClock) -> None:
    principal = make_verifier(jwks, clock=clock).verify(mint(access_claims(exp=NOW + 10.9)))
    assert principal.expires_at == NOW + 10


def test_correctly_padded_segments_are_tolerated(jwks: CountingJwks, clock: FakeClock) -> None:
    header = segment({"alg": "RS256", "kid": "key-1"})
    payload = segment(access_claims())
    pad = "=" * (-len(header) % 4), "=" * (-len(payload) % 4)
    assert pad != ("", "")
    signing_input = f"{header}{pad[0]}.{payload}{pad[1]}"
    signature = b64url(rsa_key().sign(signing_input.encode()))
    token = f"{signing_input}.{signature}{'=' * (-len(signature) % 4)}"
    assert make_verifier(jwks, clock=clock).verify(token).username == "alice"


def test_unicode_claims_survive(jwks: CountingJwks, clock: FakeClock) -> None:
    token = mint(access_claims(username="zoë-日本"))
    assert make_verifier(jwks, clock=clock).verify(token).username == "zoë-日本"


def test_prototype_pollution_keys_are_just_ignored_keys(
    jwks: CountingJwks, clock: FakeClock
) -> None:
    token = mint(access_claims(__proto__={"is_admin": True}, constructor={"prototype": {}}))
    principal = make_verifier(jwks, clock=clock).verify(token)
    assert principal.username == "alice"
    assert not hasattr(principal, "__proto__")


def test_a_jwk_without_alg_or_use_is_accepted(clock: FakeClock) -> None:
    endpoint = FakeJwksEndpoint(body=jwks_document(rsa_key().jwk(alg=None, use=None)))
    verifier = make_verifier(endpoint, clock=clock)
    assert verifier.verify(mint(access_claims())).username == "alice"


def test_unsupported_keys_in_the_jwks_do_not_stop_the_good_one(clock: FakeClock) -> None:
    junk: list[Any] = [
        {"kid": "ec", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kid": "oct", "kty": "oct", "k": "c2VjcmV0"},
        rsa_key("enc").jwk(use="enc"),
        rsa_key("no-n").jwk(n=None),
        rsa_key("bad-n").jwk(n="!!!"),
        rsa_key("short", bits=1024).jwk(),
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        "not an object",
        None,
    ]
    endpoint = FakeJwksEndpoint(body=jwks_document(*junk, rsa_key()))
    verifier = make_verifier(endpoint, clock=clock)
    assert verifier.verify(mint(access_claims())).username == "alice"
    for skipped in (rsa_key("enc"), rsa_key("short", bits=1024)):
        with pytest.raises(UnknownKeyIdError):
            verifier.verify(mint(access_claims(), key=skipped))


def test_either_of_two_pool_keys_verifies(clock: FakeClock) -> None:
    # Cognito signs access and id tokens with different keys of the same set.
    endpoint = FakeJwksEndpoint(body=jwks_document(rsa_key("access-key"), rsa_key("id-key")))
    jwks = JwksCache(JWKS_URL, fetch=endpoint)
    make_verifier(jwks, clock=clock).verify(mint(access_claims(), key=rsa_key("access-key")))
    make_verifier(jwks, "id", clock=clock).verify(mint(id_claims(), key=rsa_key("id-key")))
    assert endpoint.fetches == 1


# --------------------------------------------------------------------------- claims cache


def test_a_repeated_token_is_served_from_the_claims_cache(
    jwks: CountingJwks, clock: FakeClock
) -> None:
    verifier = make_verifier(jwks, clock=clock)
    token = mint(access_claims())
    first = verifier.verify(token)
    assert jwks.lookups == 1
    for _ in range(5):
        assert verifier.verify(token) is first
    assert jwks.lookups == 1


def test_a_cached_token_still_expires_when_the_clock_passes_exp(
    jwks: CountingJwks, clock: FakeClock
) -> None:
    verifier = make_verifier(jwks, clock=clock)
    token = mint(access_claims(exp=NOW + 100))
    verifier.verify(token)
    clock.advance(100 + LEEWAY - 1)
    verifier.verify(token)
    clock.advance(1)
    with pytest.raises(TokenExpiredError):
        verifier.verify(token)
    with pytest.raises(TokenExpiredError):
        verifier.verify(token)
    assert jwks.lookups == 2  # the second refusal went the full way again


def test_the_cache_is_keyed_by_the_whole_token_including_the_signature(
    jwks: CountingJwks, clock: FakeClock
) -> None:
    verifier = make_verifier(jwks, clock=clock)
    token = mint(access_claims())
    verifier.verify(token)
    forged = token.rsplit(".", 1)[0] + "." + b64url(b"\x00" * 256)
    with pytest.raises(InvalidSignatureError):
        verifier.verify(forged)


def test_the_cache_is_per_verifier(jwks: CountingJwks, clock: FakeClock) -> None:
    token = mint(access_claims())
    make_verifier(jwks, clock=clock).verify(token)
    with pytest.raises(InvalidTokenUseError):
        make_verifier(jwks, "id", clock=clock).verify(token)


def test_the_claims_cache_is_bounded(jwks: CountingJwks, clock: FakeClock) -> None:
    verifier = make_verifier(jwks, clock=clock, claims_cache_size=2)
    tokens = [mint(access_claims(jti=str(i))) for i in range(3)]
    for token in tokens:
        verifier.verify(token)
    assert jwks.lookups == 3
    verifier.verify(tokens[2])
    assert jwks.lookups == 3
    verifier.verify(tokens[0])  # evicted: verified again
    assert jwks.lookups == 4


def test_a_zero_size_claims_cache_verifies_every_time(jwks: CountingJwks, clock: FakeClock) -> None:
    verifier = make_verifier(jwks, clock=clock, claims_cache_size=0)
    token = mint(access_claims())
    verifier.verify(token)
    verifier.verify(token)
    assert jwks.lookups == 2


def test_concurrent_verifies_with_a_tiny_cache_all_succeed(
    jwks: CountingJwks, clock: FakeClock
) -> None:
    verifier = make_verifier(jwks, clock=clock, claims_cache_size=3)
    tokens = [mint(access_claims(jti=str(i))) for i in range(8)]
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                for token in tokens:
                    verifier.verify(token)
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"issuer": ""}, id="empty-issuer"),
        pytest.param({"issuer": "   "}, id="blank-issuer"),
        pytest.param({"issuer": ISSUER + " "}, id="issuer-with-trailing-space"),
        pytest.param({"client_id": ""}, id="empty-client-id"),
        pytest.param({"token_use": ""}, id="empty-token-use"),
        pytest.param({"token_use": "both"}, id="unknown-token-use"),
        pytest.param({"token_use": None}, id="none-token-use"),
        pytest.param({"leeway_seconds": -1}, id="negative-leeway"),
        pytest.param({"leeway_seconds": 1.5}, id="fractional-leeway"),
        pytest.param({"max_token_bytes": 0}, id="zero-size-limit"),
        pytest.param({"claims_cache_size": -1}, id="negative-cache-size"),
        pytest.param({"max_lifetime_seconds": 0}, id="zero-lifetime"),
        pytest.param({"max_lifetime_seconds": 86401}, id="lifetime-beyond-cognitos-day"),
        pytest.param({"max_lifetime_seconds": 3600.0}, id="fractional-lifetime"),
    ],
)
def test_the_constructor_refuses_bad_configuration(bad: dict[str, Any], jwks: CountingJwks) -> None:
    arguments: dict[str, Any] = {
        "issuer": ISSUER,
        "client_id": CLIENT_ID,
        "token_use": "access",
        "jwks": jwks,
        **bad,
    }
    with pytest.raises(ConfigurationError):
        CognitoVerifier(**arguments)


@pytest.mark.parametrize("missing", ["issuer", "client_id", "token_use", "jwks"])
def test_issuer_client_id_token_use_and_jwks_have_no_defaults(
    missing: str, jwks: CountingJwks
) -> None:
    arguments: dict[str, Any] = {
        "issuer": ISSUER,
        "client_id": CLIENT_ID,
        "token_use": "access",
        "jwks": jwks,
    }
    del arguments[missing]
    with pytest.raises(TypeError):
        CognitoVerifier(**arguments)


def test_the_constructor_is_keyword_only(jwks: CountingJwks) -> None:
    with pytest.raises(TypeError):
        CognitoVerifier(ISSUER, CLIENT_ID, "access", jwks)  # type: ignore[call-arg]


def test_a_token_over_a_custom_size_limit_is_refused(jwks: CountingJwks, clock: FakeClock) -> None:
    token = mint(access_claims())
    verifier = make_verifier(jwks, clock=clock, max_token_bytes=len(token) - 1)
    with pytest.raises(TokenTooLargeError):
        verifier.verify(token)
    assert jwks.lookups == 0
    assert make_verifier(jwks, clock=clock, max_token_bytes=len(token)).verify(token)


def test_a_shorter_custom_lifetime_bound_refuses_longer_tokens(
    jwks: CountingJwks, clock: FakeClock
) -> None:
    hour = mint(access_claims(iat=NOW - 60, exp=NOW - 60 + 3600))
    longer = mint(access_claims(iat=NOW - 60, exp=NOW - 60 + 3601))
    verifier = make_verifier(jwks, clock=clock, max_lifetime_seconds=3600)

    assert verifier.verify(hour).username == "alice"
    with pytest.raises(TokenLifetimeTooLongError) as refused:
        verifier.verify(longer)
    assert (refused.value.claim, refused.value.expected, refused.value.found) == (
        "exp",
        "exp - iat <= 3600",
        3601,
    )


def test_errors_map_to_401_unauthorized_and_the_jwks_outage_to_503() -> None:
    assert issubclass(AuthError, UnauthorizedError)
    assert (AuthError.status, AuthError.code) == (401, "unauthorized")
    assert issubclass(MissingTokenError, AuthError)
    assert issubclass(JwksUnavailableError, DependencyUnavailableError)
    assert not issubclass(JwksUnavailableError, AuthError)
    assert (JwksUnavailableError.status, JwksUnavailableError.code) == (503, "unavailable")


def test_claim_errors_carry_expected_and_found(jwks: CountingJwks, clock: FakeClock) -> None:
    with pytest.raises(InvalidTokenUseError) as refused:
        make_verifier(jwks, clock=clock).verify(mint(id_claims()))
    assert (refused.value.expected, refused.value.found) == ("access", "id")
    assert refused.value.claim == "token_use"


def test_error_messages_never_contain_the_token(jwks: CountingJwks, clock: FakeClock) -> None:
    token = mint(access_claims(exp=NOW - 100))
    with pytest.raises(TokenExpiredError) as refused:
        make_verifier(jwks, clock=clock).verify(token)
    assert token not in str(refused.value)
    assert token.split(".")[2] not in repr(refused.value.__dict__)


# --------------------------------------------------------------------------- extract_bearer


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ("BEARER abc.def.ghi", "abc.def.ghi"),
        ("  Bearer abc.def.ghi  ", "abc.def.ghi"),
    ],
)
def test_extract_bearer_returns_the_token(header: str, token: str) -> None:
    assert extract_bearer(header) == token


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="absent"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("Bearer", id="scheme-only"),
        pytest.param("Bearer ", id="scheme-and-space"),
        pytest.param("Basic YWxpY2U6c2VjcmV0", id="basic-scheme"),
        pytest.param("Token abc", id="other-scheme"),
        pytest.param("Bearerabc", id="no-space"),
        pytest.param("Bearer  abc", id="two-spaces"),
        pytest.param("Bearer\tabc", id="tab"),
        pytest.param("Bearer abc def", id="two-tokens"),
        pytest.param("Bearer abc\ndef", id="embedded-newline"),
        pytest.param("abc.def.ghi", id="bare-token"),
    ],
)
def test_extract_bearer_refuses_absent_or_malformed_headers(header: str | None) -> None:
    with pytest.raises(MissingTokenError):
        extract_bearer(header)


def test_extract_bearer_refuses_an_oversize_header() -> None:
    with pytest.raises(TokenTooLargeError):
        extract_bearer("Bearer " + "a" * (DEFAULT_MAX_TOKEN_BYTES + 1))
    assert extract_bearer("Bearer " + "a" * DEFAULT_MAX_TOKEN_BYTES)
    with pytest.raises(TokenTooLargeError):
        extract_bearer("Bearer " + "a" * 1_000_000)


def test_extract_bearer_then_verify_end_to_end(jwks: CountingJwks, clock: FakeClock) -> None:
    token = mint(access_claims())
    assert (
        make_verifier(jwks, clock=clock).verify(extract_bearer(f"Bearer {token}")).username
        == "alice"
    )


def test_a_first_verify_with_the_jwks_down_is_a_503_not_a_401(clock: FakeClock) -> None:
    verifier = make_verifier(FakeJwksEndpoint(down=True), clock=clock)
    with pytest.raises(JwksUnavailableError):
        verifier.verify(mint(access_claims()))


def test_a_non_string_token_is_malformed(jwks: CountingJwks, clock: FakeClock) -> None:
    with pytest.raises(MalformedTokenError):
        make_verifier(jwks, clock=clock).verify(12345)  # type: ignore[arg-type]
