"""The attack corpus (docs/cognito-tokens.md, A1-A25): every token here is refused,
each for its own reason, asserted by exact error class.

Every case starts from a token that would verify (see the control tests at
the bottom) and breaks one thing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import hashes

from app.auth import MAX_TOKEN_LIFETIME_SECONDS as DAY
from app.auth import (
    AlgorithmNotAllowedError,
    AuthError,
    ForbiddenHeaderError,
    InvalidAudienceError,
    InvalidClaimTypeError,
    InvalidClientIdError,
    InvalidIssuerError,
    InvalidSignatureError,
    InvalidTokenUseError,
    IssuedInFutureError,
    MalformedTokenError,
    MissingClaimError,
    MissingKeyIdError,
    TokenExpiredError,
    TokenLifetimeTooLongError,
    TokenNotYetValidError,
    TokenTooLargeError,
    TokenUse,
    UnknownKeyIdError,
    UnsupportedCriticalHeaderError,
)
from tests.unit.tokens import (
    CLIENT_ID,
    DROP,
    ISSUER,
    KID,
    LEEWAY,
    NOW,
    OTHER_CLIENT_ID,
    OTHER_ISSUER,
    FakeJwksEndpoint,
    b64url,
    hs256,
    id_claims,
    jwks_document,
    make_verifier,
    mint,
    resign,
    rsa_key,
    segment,
    sign_es256,
)
from tests.unit.tokens import access_claims as access

RS384_KID = "rs384-key"
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass(frozen=True)
class Attack:
    build: Callable[[], object]
    error: type[AuthError]
    token_use: TokenUse = "access"


def _parts(token: str) -> list[str]:
    return token.split(".")


def _join(*parts: str) -> str:
    return ".".join(parts)


def _flip_unused_bit(seg: str) -> str:
    """Same decoded bytes, different (non-canonical) encoding."""
    return seg[:-1] + _B64URL[_B64URL.index(seg[-1]) ^ 1]


def _tampered_payload() -> str:
    header, _, signature = _parts(mint(access(username="alice")))
    return _join(header, segment(access(username="mallory")), signature)


def _tampered_header() -> str:
    _, payload, signature = _parts(mint(access()))
    return _join(segment({"alg": "RS256", "kid": KID, "typ": "JWT"}), payload, signature)


def _signature_of_another_token() -> str:
    header, payload, _ = _parts(mint(access(username="mallory")))
    return _join(header, payload, _parts(mint(access()))[2])


def _truncated_signature() -> str:
    header, payload, signature = _parts(mint(access()))
    return _join(header, payload, b64url(base64.urlsafe_b64decode(signature + "==")[:-1]))


def _non_canonical_signature() -> str:
    header, payload, signature = _parts(mint(access()))
    return _join(header, payload, _flip_unused_bit(signature))


def _non_canonical_header() -> str:
    header, payload, _ = _parts(mint(access()))
    return resign(_join(_flip_unused_bit(header), payload, "x"))


def _bad_base64_header() -> str:
    header, payload, signature = _parts(mint(access()))
    while len(header) % 4 != 1:
        header = header[:-1]
    return _join(header, payload, signature)


def _raw_payload(raw: bytes) -> str:
    return mint(raw)


def _duplicate_issuer() -> str:
    # Python keeps the last duplicate, JavaScript too; other parsers keep the first.
    body = json.dumps(access(), separators=(",", ":"))
    return mint(('{"iss":"https://evil.example",' + body[1:]).encode())


def _deeply_nested() -> str:
    body = json.dumps(access(), separators=(",", ":"))
    return mint((body[:-1] + ',"deep":' + "[" * 2000 + "]" * 2000 + "}").encode())


def _utf16_header() -> str:
    return mint(access(), header=json.dumps({"alg": "RS256", "kid": KID}).encode("utf-16"))


def _padded_three() -> str:
    header, payload, signature = _parts(mint(access()))
    return _join(header + "===", payload, signature)


def _wrong_padding() -> str:
    header, payload, _ = _parts(mint(access()))
    assert len(header) % 4 == 3  # needs exactly one "="
    return resign(_join(header + "==", payload, "x"))


def _replace_first_sig_char(char: str) -> str:
    header, payload, signature = _parts(mint(access()))
    return _join(header, payload, char + signature[1:])


def _prototype_pollution() -> str:
    return mint(access(token_use=DROP, **{"__proto__": {"token_use": "access"}}))


_attacker = rsa_key("attacker-key")
_other_pool = rsa_key("other-pool-key")
_other_pool_same_kid = rsa_key(KID, name="other-pool-same-kid")
_PUBLIC_PEM = rsa_key().public_pem
_JWK_N = str(rsa_key().jwk()["n"])

ATTACKS = [
    # A1/A2: alg none, with and without a signature, any casing.
    pytest.param(
        Attack(lambda: mint(access(), alg="none", signer=lambda _: b""), MalformedTokenError),
        id="alg-none-without-signature",
    ),
    pytest.param(
        Attack(
            lambda: mint(access(), alg="none", signer=lambda _: b"junk"), AlgorithmNotAllowedError
        ),
        id="alg-none-with-junk-signature",
    ),
    pytest.param(
        Attack(
            lambda: mint(access(), alg="None", signer=lambda _: b"junk"), AlgorithmNotAllowedError
        ),
        id="alg-None-capitalised",
    ),
    pytest.param(
        Attack(
            lambda: mint(access(), alg="NONE", signer=lambda _: b"junk"), AlgorithmNotAllowedError
        ),
        id="alg-NONE-upper-case",
    ),
    pytest.param(
        Attack(lambda: mint(access(), alg=DROP), AlgorithmNotAllowedError), id="alg-missing"
    ),
    pytest.param(
        Attack(lambda: mint(access(), alg=["RS256"]), MalformedTokenError), id="alg-not-a-string"
    ),
    pytest.param(
        Attack(lambda: mint(access(), alg="rs256"), AlgorithmNotAllowedError),
        id="alg-rs256-lower-case",
    ),
    # A3: RS256 -> HS256 confusion with the public key as the HMAC secret.
    pytest.param(
        Attack(
            lambda: mint(access(), alg="HS256", signer=hs256(_PUBLIC_PEM)), AlgorithmNotAllowedError
        ),
        id="hs256-keyed-with-public-pem",
    ),
    pytest.param(
        Attack(
            lambda: mint(access(), alg="HS256", signer=hs256(_JWK_N.encode())),
            AlgorithmNotAllowedError,
        ),
        id="hs256-keyed-with-jwk-n",
    ),
    # A4/A5: header alg that is not the key's algorithm.
    pytest.param(
        Attack(
            lambda: mint(
                access(), alg="RS384", signer=lambda d: rsa_key().sign(d, hashes.SHA384())
            ),
            AlgorithmNotAllowedError,
        ),
        id="header-rs384-signed-rs384",
    ),
    pytest.param(
        Attack(
            lambda: mint(access(), alg="PS256", signer=rsa_key().sign_pss), AlgorithmNotAllowedError
        ),
        id="header-ps256-signed-pss",
    ),
    pytest.param(
        Attack(lambda: mint(access(), alg="ES256", signer=sign_es256), AlgorithmNotAllowedError),
        id="header-es256-signed-p256",
    ),
    pytest.param(
        Attack(lambda: mint(access(), key=rsa_key(RS384_KID)), AlgorithmNotAllowedError),
        id="jwk-alg-rs384-with-rs256-header",
    ),
    # A18: tampering.
    pytest.param(Attack(_tampered_payload, InvalidSignatureError), id="tampered-payload"),
    pytest.param(Attack(_tampered_header, InvalidSignatureError), id="tampered-header"),
    pytest.param(
        Attack(_signature_of_another_token, InvalidSignatureError), id="signature-of-another-token"
    ),
    pytest.param(Attack(_truncated_signature, InvalidSignatureError), id="truncated-signature"),
    pytest.param(
        Attack(lambda: _join(*_parts(mint(access()))[:2], ""), MalformedTokenError),
        id="stripped-signature",
    ),
    pytest.param(
        Attack(_non_canonical_signature, MalformedTokenError),
        id="signature-with-non-canonical-trailing-bits",
    ),
    pytest.param(
        Attack(_non_canonical_header, MalformedTokenError),
        id="header-with-non-canonical-trailing-bits",
    ),
    # A9: another user pool.
    pytest.param(
        Attack(lambda: mint(access(iss=OTHER_ISSUER), key=_other_pool), UnknownKeyIdError),
        id="other-pool-key-and-issuer",
    ),
    pytest.param(
        Attack(
            lambda: mint(access(iss=OTHER_ISSUER), key=_other_pool_same_kid), InvalidSignatureError
        ),
        id="other-pool-key-reusing-our-kid",
    ),
    # A10: near-miss issuers, signed by our own key.
    pytest.param(
        Attack(lambda: mint(access(iss=OTHER_ISSUER)), InvalidIssuerError),
        id="issuer-of-another-pool",
    ),
    pytest.param(
        Attack(lambda: mint(access(iss=ISSUER + "/")), InvalidIssuerError),
        id="issuer-trailing-slash",
    ),
    pytest.param(
        Attack(lambda: mint(access(iss=ISSUER.upper())), InvalidIssuerError), id="issuer-upper-case"
    ),
    pytest.param(
        Attack(lambda: mint(access(iss=ISSUER[:-1])), InvalidIssuerError), id="issuer-prefix"
    ),
    pytest.param(
        Attack(lambda: mint(access(iss=ISSUER + "x")), InvalidIssuerError), id="issuer-suffix"
    ),
    pytest.param(
        Attack(lambda: mint(access(iss=ISSUER.replace("https:", "http:"))), InvalidIssuerError),
        id="issuer-http-scheme",
    ),
    pytest.param(Attack(lambda: mint(access(iss=DROP)), MissingClaimError), id="issuer-missing"),
    pytest.param(
        Attack(lambda: mint(access(iss=[ISSUER])), InvalidClaimTypeError), id="issuer-as-list"
    ),
    # A11/A12: token use.
    pytest.param(
        Attack(lambda: mint(id_claims()), InvalidTokenUseError), id="id-token-where-access-expected"
    ),
    pytest.param(
        Attack(lambda: mint(access()), InvalidTokenUseError, "id"),
        id="access-token-where-id-expected",
    ),
    pytest.param(
        Attack(lambda: mint(access(token_use=DROP)), MissingClaimError), id="token-use-missing"
    ),
    pytest.param(
        Attack(lambda: mint(access(token_use="Access")), InvalidTokenUseError),
        id="token-use-wrong-case",
    ),
    pytest.param(
        Attack(lambda: mint(access(token_use=["access"])), InvalidClaimTypeError),
        id="token-use-as-list",
    ),
    # A13: audience / client id.
    pytest.param(
        Attack(lambda: mint(id_claims(aud=OTHER_CLIENT_ID)), InvalidAudienceError, "id"),
        id="id-token-wrong-aud",
    ),
    pytest.param(
        Attack(lambda: mint(id_claims(aud=[CLIENT_ID])), InvalidAudienceError, "id"),
        id="id-token-aud-as-list",
    ),
    pytest.param(
        Attack(lambda: mint(id_claims(aud=DROP)), MissingClaimError, "id"),
        id="id-token-aud-missing",
    ),
    pytest.param(
        Attack(lambda: mint(access(client_id=OTHER_CLIENT_ID)), InvalidClientIdError),
        id="access-token-wrong-client-id",
    ),
    pytest.param(
        Attack(lambda: mint(access(client_id=DROP, aud=CLIENT_ID)), MissingClaimError),
        id="access-token-aud-instead-of-client-id",
    ),
    # A14/A15: expiry and its types.
    pytest.param(
        Attack(lambda: mint(access(exp=NOW - LEEWAY - 1)), TokenExpiredError),
        id="expired-one-second-past-leeway",
    ),
    pytest.param(
        Attack(lambda: mint(access(exp=NOW - LEEWAY)), TokenExpiredError),
        id="expired-exactly-at-leeway",
    ),
    pytest.param(Attack(lambda: mint(access(exp=DROP)), MissingClaimError), id="exp-missing"),
    pytest.param(
        Attack(lambda: mint(access(exp="9999999999")), InvalidClaimTypeError),
        id="exp-numeric-string",
    ),
    pytest.param(Attack(lambda: mint(access(exp=True)), InvalidClaimTypeError), id="exp-true"),
    pytest.param(Attack(lambda: mint(access(exp=None)), InvalidClaimTypeError), id="exp-null"),
    pytest.param(
        Attack(lambda: mint(access(exp=[NOW + 60])), InvalidClaimTypeError), id="exp-as-list"
    ),
    pytest.param(
        Attack(lambda: mint(json.dumps(access(exp=float("nan"))).encode()), MalformedTokenError),
        id="exp-NaN",
    ),
    pytest.param(
        Attack(lambda: mint(json.dumps(access(exp=float("inf"))).encode()), MalformedTokenError),
        id="exp-Infinity",
    ),
    pytest.param(
        Attack(
            lambda: mint(
                json.dumps(access()).replace(f'"exp": {NOW + 3600}', '"exp": 1e999').encode()
            ),
            InvalidClaimTypeError,
        ),
        id="exp-overflowing-to-infinity",
    ),
    # A16/A17: not before, issued at.
    pytest.param(
        Attack(lambda: mint(access(nbf=NOW + LEEWAY + 1)), TokenNotYetValidError),
        id="nbf-in-the-future",
    ),
    pytest.param(Attack(lambda: mint(access(nbf="0")), InvalidClaimTypeError), id="nbf-string"),
    pytest.param(
        Attack(lambda: mint(access(iat=NOW + LEEWAY + 1)), IssuedInFutureError),
        id="iat-in-the-future",
    ),
    pytest.param(
        Attack(lambda: mint(access(iat=str(NOW))), InvalidClaimTypeError), id="iat-string"
    ),
    # A25: a lifetime (exp - iat) longer than Cognito issues, and no iat to bound it by.
    pytest.param(
        Attack(
            lambda: mint(access(iat=NOW - 60, exp=NOW - 60 + DAY + 1)), TokenLifetimeTooLongError
        ),
        id="access-token-living-one-day-and-one-second",
    ),
    pytest.param(
        Attack(
            lambda: mint(id_claims(iat=NOW - 60, exp=NOW - 60 + DAY + 1)),
            TokenLifetimeTooLongError,
            "id",
        ),
        id="id-token-living-one-day-and-one-second",
    ),
    pytest.param(
        Attack(
            lambda: mint(access(iat=NOW - 60, exp=NOW + 10 * 365 * DAY)), TokenLifetimeTooLongError
        ),
        id="access-token-living-ten-years",
    ),
    pytest.param(
        Attack(
            lambda: mint(access(iat=NOW - 60, exp=NOW - 60 + DAY + 0.5)), TokenLifetimeTooLongError
        ),
        id="access-token-living-half-a-second-too-long",
    ),
    pytest.param(Attack(lambda: mint(access(iat=DROP)), MissingClaimError), id="iat-missing"),
    pytest.param(Attack(lambda: mint(access(iat=None)), InvalidClaimTypeError), id="iat-null"),
    # Identity claims.
    pytest.param(Attack(lambda: mint(access(sub=DROP)), MissingClaimError), id="sub-missing"),
    pytest.param(Attack(lambda: mint(access(sub="")), MissingClaimError), id="sub-empty"),
    pytest.param(Attack(lambda: mint(access(sub=42)), InvalidClaimTypeError), id="sub-number"),
    pytest.param(
        Attack(lambda: mint(access(username=DROP)), MissingClaimError), id="username-missing"
    ),
    pytest.param(
        Attack(lambda: mint(access(**{"cognito:groups": "admin"})), InvalidClaimTypeError),
        id="groups-as-string",
    ),
    pytest.param(
        Attack(lambda: mint(access(**{"cognito:groups": ["admin", 1]})), InvalidClaimTypeError),
        id="groups-with-non-string",
    ),
    pytest.param(
        Attack(_prototype_pollution, MissingClaimError), id="token-use-hidden-in-__proto__"
    ),
    # A6: kid.
    pytest.param(
        Attack(lambda: mint(access(), kid="no-such-kid"), UnknownKeyIdError), id="unknown-kid"
    ),
    pytest.param(
        Attack(lambda: mint(access(), kid="../../../../dev/null"), UnknownKeyIdError),
        id="kid-path-traversal",
    ),
    pytest.param(
        Attack(lambda: mint(access(), kid="' OR '1'='1"), UnknownKeyIdError), id="kid-sql-ish"
    ),
    pytest.param(
        Attack(lambda: mint(access(), kid=KID.upper()), UnknownKeyIdError), id="kid-wrong-case"
    ),
    pytest.param(Attack(lambda: mint(access(), kid=DROP), MissingKeyIdError), id="kid-missing"),
    pytest.param(Attack(lambda: mint(access(), kid=""), MissingKeyIdError), id="kid-empty"),
    pytest.param(Attack(lambda: mint(access(), kid=1), MissingKeyIdError), id="kid-number"),
    pytest.param(Attack(lambda: mint(access(), kid=[KID]), MissingKeyIdError), id="kid-list"),
    # A7: key-carrying headers, token signed by the attacker's key.
    pytest.param(
        Attack(
            lambda: mint(access(), key=_attacker, kid=KID, jku="https://evil.example/jwks.json"),
            ForbiddenHeaderError,
        ),
        id="jku-to-attacker-jwks",
    ),
    pytest.param(
        Attack(
            lambda: mint(access(), key=_attacker, kid=KID, x5u="https://evil.example/cert.pem"),
            ForbiddenHeaderError,
        ),
        id="x5u-to-attacker-cert",
    ),
    pytest.param(
        Attack(
            lambda: mint(access(), key=_attacker, kid=KID, jwk=_attacker.jwk(kid=KID)),
            ForbiddenHeaderError,
        ),
        id="embedded-attacker-jwk",
    ),
    pytest.param(
        Attack(
            lambda: mint(
                access(), key=_attacker, kid=KID, x5c=["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A"]
            ),
            ForbiddenHeaderError,
        ),
        id="x5c-attacker-chain",
    ),
    # A24: crit.
    pytest.param(
        Attack(lambda: mint(access(), crit=["exp"]), UnsupportedCriticalHeaderError),
        id="crit-unknown-extension",
    ),
    pytest.param(
        Attack(lambda: mint(access(), crit=["b64"], b64=False), UnsupportedCriticalHeaderError),
        id="crit-b64-false",
    ),
    # A19/A20: shape, encoding, size.
    pytest.param(
        Attack(lambda: mint(access(padding="x" * 9000)), TokenTooLargeError), id="oversize-token"
    ),
    pytest.param(Attack(_bad_base64_header, MalformedTokenError), id="bad-base64-length"),
    pytest.param(
        Attack(lambda: mint(access(), header=b"not json"), MalformedTokenError),
        id="header-not-json",
    ),
    pytest.param(Attack(lambda: mint(b"not json"), MalformedTokenError), id="payload-not-json"),
    pytest.param(Attack(lambda: mint([access()]), MalformedTokenError), id="payload-json-array"),
    pytest.param(Attack(lambda: mint("a string"), MalformedTokenError), id="payload-json-string"),
    pytest.param(
        Attack(lambda: mint(access(), header=b'["RS256"]'), MalformedTokenError),
        id="header-json-array",
    ),
    pytest.param(Attack(_utf16_header, MalformedTokenError), id="header-utf16"),
    pytest.param(
        Attack(lambda: mint(b'{"iss":"\xff"}'), MalformedTokenError), id="payload-not-utf8"
    ),
    pytest.param(Attack(_duplicate_issuer, MalformedTokenError), id="payload-duplicate-iss"),
    pytest.param(Attack(_deeply_nested, MalformedTokenError), id="payload-deeply-nested"),
    pytest.param(
        Attack(lambda: _join(*_parts(mint(access()))[:2]), MalformedTokenError), id="two-segments"
    ),
    pytest.param(
        Attack(lambda: _join(*_parts(mint(access())), "extra"), MalformedTokenError),
        id="four-segments",
    ),
    pytest.param(
        Attack(
            lambda: _join(*_parts(mint(access())), _parts(mint(access()))[2]), MalformedTokenError
        ),
        id="four-segments-two-signatures",
    ),
    pytest.param(Attack(lambda: " " + mint(access()), MalformedTokenError), id="leading-space"),
    pytest.param(Attack(lambda: mint(access()) + "\n", MalformedTokenError), id="trailing-newline"),
    pytest.param(
        Attack(lambda: mint(access())[:20] + " " + mint(access())[20:], MalformedTokenError),
        id="inner-space",
    ),
    pytest.param(
        Attack(lambda: _replace_first_sig_char("+"), MalformedTokenError), id="standard-base64-plus"
    ),
    pytest.param(
        Attack(lambda: _replace_first_sig_char("/"), MalformedTokenError),
        id="standard-base64-slash",
    ),
    pytest.param(
        Attack(lambda: mint(access()).replace(".", "%2E", 1), MalformedTokenError),
        id="url-encoded-dot",
    ),
    pytest.param(Attack(_padded_three, MalformedTokenError), id="three-padding-characters"),
    pytest.param(Attack(_wrong_padding, MalformedTokenError), id="wrong-padding-count"),
    pytest.param(Attack(lambda: "", MalformedTokenError), id="empty-string"),
    pytest.param(Attack(lambda: "..", MalformedTokenError), id="only-dots"),
    pytest.param(Attack(lambda: mint(access()).encode(), MalformedTokenError), id="bytes-not-str"),
    pytest.param(Attack(lambda: None, MalformedTokenError), id="none-not-str"),
    pytest.param(
        Attack(lambda: mint(access()).replace("e", "\u0435", 1), MalformedTokenError),
        id="cyrillic-lookalike-letter",
    ),
]


@pytest.fixture
def endpoint() -> FakeJwksEndpoint:
    return FakeJwksEndpoint(body=jwks_document(rsa_key(), rsa_key(RS384_KID).jwk(alg="RS384")))


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_token_is_refused_for_its_own_reason(
    attack: Attack, endpoint: FakeJwksEndpoint
) -> None:
    verifier = make_verifier(endpoint, attack.token_use)
    token = attack.build()
    with pytest.raises(AuthError) as refused:
        verifier.verify(cast(Any, token))
    assert type(refused.value) is attack.error, refused.value
    assert endpoint.fetches <= 1


def test_the_corpus_has_at_least_thirty_distinct_cases() -> None:
    assert len(ATTACKS) >= 30
    assert len({case.id for case in ATTACKS}) == len(ATTACKS)


def test_no_attack_token_is_accepted_even_after_a_valid_token_was_cached(
    endpoint: FakeJwksEndpoint,
) -> None:
    verifiers = {use: make_verifier(endpoint, use) for use in ("access", "id")}
    verifiers["access"].verify(mint(access()))
    verifiers["id"].verify(mint(id_claims()))
    accepted = []
    for case in ATTACKS:
        attack = cast(Attack, case.values[0])
        try:
            verifiers[attack.token_use].verify(cast(Any, attack.build()))
        except AuthError:
            continue
        accepted.append(case.id)
    assert accepted == []


# Controls: the untouched tokens and the boundary siblings are accepted, so the
# refusals above are caused by the one thing each case breaks.


def test_the_unbroken_access_and_id_tokens_are_accepted(endpoint: FakeJwksEndpoint) -> None:
    assert make_verifier(endpoint).verify(mint(access())).username == "alice"
    assert make_verifier(endpoint, "id").verify(mint(id_claims())).username == "alice"


def test_a_token_one_second_inside_the_exp_leeway_is_accepted(endpoint: FakeJwksEndpoint) -> None:
    principal = make_verifier(endpoint).verify(mint(access(exp=NOW - LEEWAY + 1)))
    assert principal.expires_at == NOW - LEEWAY + 1


def test_a_fractional_exp_just_inside_the_leeway_is_accepted(endpoint: FakeJwksEndpoint) -> None:
    make_verifier(endpoint).verify(mint(access(exp=NOW - LEEWAY + 0.001)))


def test_nbf_and_iat_exactly_at_the_leeway_are_accepted(endpoint: FakeJwksEndpoint) -> None:
    make_verifier(endpoint).verify(mint(access(nbf=NOW + LEEWAY, iat=NOW + LEEWAY)))


@pytest.mark.parametrize("token_use", ["access", "id"])
def test_a_token_living_exactly_one_day_is_accepted_and_its_refusal_names_the_bound(
    endpoint: FakeJwksEndpoint, token_use: TokenUse
) -> None:
    claims = access if token_use == "access" else id_claims
    verifier = make_verifier(endpoint, token_use)

    verifier.verify(mint(claims(iat=NOW - 60, exp=NOW - 60 + DAY)))
    with pytest.raises(TokenLifetimeTooLongError) as refused:
        verifier.verify(mint(claims(iat=NOW - 60, exp=NOW - 60 + DAY + 1)))
    assert (refused.value.claim, refused.value.expected, refused.value.found) == (
        "exp",
        f"exp - iat <= {DAY}",
        DAY + 1,
    )
    assert DAY == 86_400


def test_an_rs384_key_in_the_jwks_does_not_make_rs384_acceptable(
    endpoint: FakeJwksEndpoint,
) -> None:
    token = mint(
        access(),
        key=rsa_key(RS384_KID),
        alg="RS384",
        signer=lambda d: rsa_key(RS384_KID).sign(d, hashes.SHA384()),
    )
    with pytest.raises(AlgorithmNotAllowedError):
        make_verifier(endpoint).verify(token)


def test_attacker_key_with_our_kid_and_no_key_header_fails_the_signature(
    endpoint: FakeJwksEndpoint,
) -> None:
    with pytest.raises(InvalidSignatureError):
        make_verifier(endpoint).verify(mint(access(), key=_attacker, kid=KID))


def test_a_refused_token_is_never_cached(endpoint: FakeJwksEndpoint) -> None:
    verifier = make_verifier(endpoint)
    expired = mint(access(exp=NOW - LEEWAY - 1))
    for _ in range(2):
        with pytest.raises(TokenExpiredError):
            verifier.verify(expired)


def test_junk_tokens_never_make_the_jwks_be_fetched(endpoint: FakeJwksEndpoint) -> None:
    verifier = make_verifier(endpoint)
    junk = [
        mint(access(), alg="none", signer=lambda _: b"junk", kid="k1"),
        mint(access(), alg="HS256", signer=hs256(_PUBLIC_PEM), kid="k2"),
        mint(access(), kid="k3", jku="https://evil.example/"),
        mint(access(), kid="k4", crit=["x"]),
        mint(access(exp="1"), kid="k5"),
    ]
    for token in junk:
        with pytest.raises(AuthError):
            verifier.verify(token)
    assert endpoint.fetches == 0
