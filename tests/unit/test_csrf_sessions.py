"""Unit tests of the web layer's pure parts: CSRF tokens and origins, the session
store (against a recording fake of DynamoDB), safe redirects, and the Cognito
error mapping (RevokeToken's fallback included). No network.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from app.errors import DependencyUnavailableError
from app.web.auth_views import safe_next
from app.web.cognito_client import (
    CodeMismatchError,
    CognitoClient,
    CognitoError,
    CognitoUnavailableError,
    ExpiredCodeError,
    HostedUi,
    InvalidCredentialsError,
    PasswordPolicyError,
    StateMismatchError,
    TooManyRequestsError,
    UnknownUserError,
    UsernameExistsError,
    UserNotConfirmedError,
    s256_challenge,
    translate,
)
from app.web.csrf import generate_token, origin_of, same_origin, validate_token
from app.web.session_store import (
    CSRF_SECRET,
    SIGNED_IN,
    ServerSession,
    SessionGoneError,
    SessionStore,
)
from app.web.signin import SignedIn
from tests.unit.session_fakes import Clock, FakeDynamoDB, FakeKms, make_cipher, make_store

KEY = b"k" * 40
SECRET = "session-csrf-secret"


# --------------------------------------------------------------------------- CSRF tokens


def test_a_token_validates_for_its_own_session_and_key() -> None:
    token = generate_token(KEY, SECRET)
    assert validate_token(KEY, SECRET, token)


def test_every_render_gets_a_different_token_and_all_of_them_validate() -> None:
    tokens = {generate_token(KEY, SECRET) for _ in range(20)}
    assert len(tokens) == 20
    assert all(validate_token(KEY, SECRET, token) for token in tokens)


def test_a_token_of_another_session_or_another_app_key_is_refused() -> None:
    token = generate_token(KEY, SECRET)
    assert not validate_token(KEY, "another-session-secret", token)
    assert not validate_token(b"x" * 40, SECRET, token)


@pytest.mark.parametrize(
    "token",
    [None, "", "A", "A" * 86, "!" * 86, "A" * 200, 12345, "%%%", "AAAA=" * 10],
    ids=["none", "empty", "short", "zeros", "not-base64", "too-long", "number", "junk", "padded"],
)
def test_malformed_tokens_are_refused(token: object) -> None:
    assert not validate_token(KEY, SECRET, token)


def test_a_tampered_token_is_refused() -> None:
    token = generate_token(KEY, SECRET)
    for position in (0, 40, len(token) - 2):
        flipped = (
            token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
        )
        assert not validate_token(KEY, SECRET, flipped)


def test_a_session_without_a_csrf_secret_validates_nothing() -> None:
    assert not validate_token(KEY, "", generate_token(KEY, ""))


# --------------------------------------------------------------------------- origins


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://LocalHost:80/x?y", "http://localhost"),
        ("https://example.com:443/", "https://example.com"),
        ("https://example.com:8443/a", "https://example.com:8443"),
        ("http://[::1]:5000/", "http://[::1]:5000"),
        ("ftp://example.com/", None),
        ("null", None),
        ("", None),
        ("http://example.com:notaport/", None),
    ],
)
def test_origin_of_normalises_scheme_host_and_port(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


def test_same_origin_accepts_this_site_and_refuses_others() -> None:
    allowed = ["http://localhost/", "https://vidgate.example"]
    assert same_origin("http://localhost", None, allowed)
    assert same_origin("https://vidgate.example", None, allowed)
    assert not same_origin("https://evil.example", None, allowed)
    assert not same_origin("http://vidgate.example", None, allowed), "scheme matters"
    assert not same_origin("http://localhost:5001", None, allowed), "port matters"
    assert not same_origin("null", None, allowed)
    assert not same_origin("https://evil.example", "http://localhost/form", allowed), (
        "Origin wins over Referer"
    )


def test_without_origin_the_referer_decides_and_without_both_the_token_alone_does() -> None:
    allowed = ["http://localhost"]
    assert same_origin(None, "http://localhost/auth/sign-in?next=/", allowed)
    assert not same_origin(None, "https://evil.example/page", allowed)
    assert same_origin(None, None, allowed)


# --------------------------------------------------------------------------- safe redirects


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/account", "/account"),
        ("/videos/abc?t=10", "/videos/abc?t=10"),
        (None, "/"),
        ("", "/"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/auth/sign-in", "/"),
        ("/a\r\nSet-Cookie: x=1", "/"),
        ("/" + "a" * 600, "/"),
    ],
)
def test_only_local_paths_are_followed_after_sign_in(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


# --------------------------------------------------------------------------- session store


AUTH = SignedIn(
    user_id="u-1",
    username="alice",
    email="alice@example.com",
    groups=("admin",),
    access_token="eyJhbGciOiJSUzI1NiJ9.eyJ0b2tlbl91c2UiOiJhY2Nlc3MifQ.access-signature",
    id_token="eyJhbGciOiJSUzI1NiJ9.eyJ0b2tlbl91c2UiOiJpZCJ9.id-signature",
    refresh_token="eyJjdHkiOiJKV1QiLCJlbmMiOiJBMjU2R0NNIn0.refresh-token-body",
    token_expires_at=1_800_003_600,
)
SIGNED_IN_DATA = {SIGNED_IN: AUTH.to_session()}
TOKENS = (AUTH.access_token, AUTH.id_token, AUTH.refresh_token or "")


def raw_text(item: dict[str, Any]) -> str:
    """Every attribute value of an item as text (binary values as latin-1 and base64)."""
    parts: list[str] = []
    for value in item.values():
        for kind, inner in value.items():
            if kind == "B":
                parts += [bytes(inner).decode("latin-1"), base64.b64encode(bytes(inner)).decode()]
            else:
                parts.append(json.dumps(inner))
    return "\n".join(parts)


def test_the_table_holds_only_a_hash_of_the_cookie_value() -> None:
    store, fake = make_store(Clock())
    session = store.create({**SIGNED_IN_DATA, CSRF_SECRET: "the-csrf-secret"})
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", session.sid)
    ((key, item),) = fake.items.items()
    assert key == SessionStore.key_for(session.sid) != session.sid
    assert session.sid not in raw_text(item)
    assert item["csrf_secret"]["S"] == "the-csrf-secret" != session.sid


def test_an_anonymous_session_is_never_stored() -> None:
    store, fake = make_store(Clock())
    for data in ({}, {CSRF_SECRET: "x"}, {"_flashes": [["info", "hi"]]}, {SIGNED_IN: "no"}):
        with pytest.raises(ValueError):
            store.create(data)
    assert fake.calls == []


def test_a_signed_in_session_round_trips_with_its_tokens_and_data() -> None:
    store, _ = make_store(Clock())
    session = store.create({**SIGNED_IN_DATA, CSRF_SECRET: "csrf", "_flashes": [["info", "hi"]]})
    loaded = store.load(session.sid)
    assert loaded is not None
    assert SignedIn.from_session(loaded.data[SIGNED_IN]) == AUTH
    assert loaded.data["_flashes"] == [["info", "hi"]]
    assert loaded.data[CSRF_SECRET] == session.data[CSRF_SECRET]
    assert loaded.data == session.data


def test_the_tokens_at_rest_are_sealed_and_nothing_of_them_is_readable() -> None:
    store, fake = make_store(Clock())
    session = store.create(SIGNED_IN_DATA)
    item = fake.items[SessionStore.key_for(session.sid)]
    assert not {"access_token", "id_token", "refresh_token"} & set(item)
    assert set(item["tokens"]) == {"B"} and set(item["tokens_key"]) == {"B"}
    text = raw_text(item)
    assert not re.search(r"eyJ[A-Za-z0-9_-]+\.", text), "no JWT shape anywhere"
    for token in TOKENS:
        for start in range(0, len(token) - 12, 6):
            assert token[start : start + 12] not in text
    # Who the session belongs to stays readable (for operators); the tokens do not.
    assert item["user_id"] == {"S": "u-1"} and item["token_expires_at"] == {"N": "1800003600"}


def test_a_sealed_token_attribute_copied_into_another_item_signs_that_item_out() -> None:
    store, fake = make_store(Clock())
    victim = store.create(SIGNED_IN_DATA)
    mallory_auth = {
        **AUTH.to_session(),
        "user_id": "u-2",
        "access_token": "M.A.x",
        "id_token": "M.I.x",
    }
    mallory = store.create({SIGNED_IN: mallory_auth})
    victim_item = fake.items[SessionStore.key_for(victim.sid)]
    mallory_item = fake.items[SessionStore.key_for(mallory.sid)]
    mallory_item["tokens"] = victim_item["tokens"]
    mallory_item["tokens_key"] = victim_item["tokens_key"]
    assert store.load(mallory.sid) is None, "the item key is the seal's associated data"
    assert SessionStore.key_for(mallory.sid) not in fake.items, "and the item is deleted"
    loaded = store.load(victim.sid)
    assert loaded is not None and SignedIn.from_session(loaded.data[SIGNED_IN]) == AUTH


@pytest.mark.parametrize("position", [0, 5, 20, -1])
def test_a_tampered_seal_signs_the_session_out(position: int) -> None:
    store, fake = make_store(Clock())
    session = store.create(SIGNED_IN_DATA)
    item = fake.items[SessionStore.key_for(session.sid)]
    blob = bytearray(item["tokens"]["B"])
    blob[position] ^= 0x01
    item["tokens"] = {"B": bytes(blob)}
    assert store.load(session.sid) is None
    assert fake.items == {}


def test_a_data_key_of_another_table_or_key_does_not_open() -> None:
    clock, kms, fake = Clock(), FakeKms(), FakeDynamoDB()
    store, _ = make_store(clock, fake, kms)
    session = store.create(SIGNED_IN_DATA)
    other_table = SessionStore(fake, "sessions", cipher=make_cipher(kms, clock, table="other"))  # type: ignore[arg-type]
    assert other_table.load(session.sid) is None, "the encryption context names the table"
    session = store.create(SIGNED_IN_DATA)
    other_key = SessionStore(fake, "sessions", cipher=make_cipher(FakeKms(), clock))  # type: ignore[arg-type]
    assert other_key.load(session.sid) is None


def test_an_item_with_plaintext_tokens_from_before_is_signed_out_and_deleted() -> None:
    clock = Clock()
    store, fake = make_store(clock)
    sid = "S" * 43
    now = str(int(clock.now))
    fake.items[SessionStore.key_for(sid)] = {
        "session_id": {"S": SessionStore.key_for(sid)},
        "csrf_secret": {"S": "old-csrf"},
        "created_at": {"N": now},
        "last_seen_at": {"N": now},
        "expires_at": {"N": str(int(clock.now) + 3600)},
        "data": {"S": '{"oauth":{"state":"s"}}'},
        "user_id": {"S": "u-1"},
        "username": {"S": "alice"},
        "email": {"S": "alice@example.com"},
        "groups": {"L": [{"S": "admin"}]},
        "access_token": {"S": "ACCESS.TOKEN.x"},
        "id_token": {"S": "ID.TOKEN.x"},
        "token_expires_at": {"N": "1800003600"},
        "auth_method": {"S": "password"},
        "refresh_token": {"S": "REFRESH"},
    }
    assert store.load(sid) is None
    assert fake.items == {}, "the plaintext tokens leave the table with it"


def test_an_anonymous_item_from_before_is_no_session() -> None:
    clock = Clock()
    store, fake = make_store(clock)
    sid = "A" * 43
    now = str(int(clock.now))
    fake.items[SessionStore.key_for(sid)] = {
        "session_id": {"S": SessionStore.key_for(sid)},
        "csrf_secret": {"S": "old-csrf"},
        "created_at": {"N": now},
        "last_seen_at": {"N": now},
        "expires_at": {"N": str(int(clock.now) + 3600)},
        "data": {"S": "{}"},
    }
    assert store.load(sid) is None


def test_kms_down_never_writes_and_never_signs_anyone_out() -> None:
    clock, kms = Clock(), FakeKms()
    store, fake = make_store(clock, kms=kms)
    session = store.create(SIGNED_IN_DATA)
    kms.down = True
    fresh_process, _ = make_store(clock, fake, kms)
    with pytest.raises(DependencyUnavailableError):
        fresh_process.load(session.sid)
    cold, _ = make_store(clock, fake, kms)
    with pytest.raises(DependencyUnavailableError):
        cold.create(SIGNED_IN_DATA)
    assert list(fake.items) == [SessionStore.key_for(session.sid)]
    assert fake.calls.count("put_item") == 1, "only the write from before the outage"


def test_tokens_never_appear_in_the_repr_of_a_session() -> None:
    store, _ = make_store(Clock())
    session = store.create(SIGNED_IN_DATA)
    for text in (repr(session), repr(AUTH), repr(ServerSession(store, session))):
        assert all(token not in text for token in TOKENS)
        assert "eyJ" not in text


def test_a_malformed_cookie_is_refused_without_asking_dynamodb() -> None:
    store, fake = make_store(Clock())
    for sid in ("", "short", "x" * 43 + "!", "a" * 44, "../../etc/passwd"):
        assert store.load(sid) is None
    assert fake.calls == []


def test_an_unknown_session_id_is_no_session() -> None:
    store, _ = make_store(Clock())
    assert store.load("A" * 43) is None


def test_an_idle_session_is_over_and_removed_even_if_dynamodb_has_not_deleted_it() -> None:
    clock = Clock()
    store, fake = make_store(clock)
    session = store.create(SIGNED_IN_DATA)
    clock.now += 3599
    assert store.load(session.sid) is not None
    clock.now += 1
    assert store.load(session.sid) is None
    assert fake.items == {}


def test_activity_slides_the_idle_timeout_but_not_the_absolute_lifetime() -> None:
    clock = Clock()
    store, _ = make_store(clock)
    session = store.create(SIGNED_IN_DATA)
    for _ in range(23):
        clock.now += 3000
        loaded = store.load(session.sid)
        assert loaded is not None
        store.touch(loaded)
    clock.now += 3000  # 24 * 3000 s = 72000 s: still inside one day
    assert store.load(session.sid) is not None
    clock.now += 14400
    assert store.load(session.sid) is None, "one day after sign-in it is over"


def test_the_ttl_attribute_follows_the_idle_timeout() -> None:
    clock = Clock()
    store, fake = make_store(clock)
    session = store.create(SIGNED_IN_DATA)
    item = fake.items[SessionStore.key_for(session.sid)]
    assert int(item["expires_at"]["N"]) == int(clock.now) + 3600
    clock.now += 120
    store.touch(session)
    assert int(item["expires_at"]["N"]) == int(clock.now) + 3600


def test_touch_writes_at_most_once_per_interval() -> None:
    clock = Clock()
    store, fake = make_store(clock)
    session = store.create(SIGNED_IN_DATA)
    clock.now += 30
    session = store.touch(session)
    assert "update_item" not in fake.calls
    clock.now += 31
    store.touch(session)
    assert fake.calls.count("update_item") == 1


def test_a_deleted_session_is_never_written_back() -> None:
    store, fake = make_store(Clock())
    session = store.create(SIGNED_IN_DATA)
    store.delete(session.sid)
    with pytest.raises(SessionGoneError):
        store.save(replace(session, data={**SIGNED_IN_DATA, "x": 1}))
    with pytest.raises(SessionGoneError):
        store.touch(replace(session, last_seen_at=0))
    assert fake.items == {}


# --------------------------------------------------------------------------- Cognito errors


def client_error(code: str, status: int = 400, operation: str = "InitiateAuth") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("NotAuthorizedException", InvalidCredentialsError),
        ("UserNotFoundException", UnknownUserError),
        ("UserNotConfirmedException", UserNotConfirmedError),
        ("InvalidPasswordException", PasswordPolicyError),
        ("CodeMismatchException", CodeMismatchError),
        ("ExpiredCodeException", ExpiredCodeError),
        ("UsernameExistsException", UsernameExistsError),
        ("TooManyRequestsException", TooManyRequestsError),
        ("LimitExceededException", TooManyRequestsError),
    ],
)
def test_each_cognito_refusal_becomes_its_own_friendly_error(
    code: str, expected: type[CognitoError]
) -> None:
    error = translate(client_error(code), "initiate_auth")
    assert type(error) is expected
    assert isinstance(error, CognitoError) and error.friendly
    assert code not in error.friendly


def test_an_unknown_user_reads_exactly_like_a_wrong_password() -> None:
    unknown = translate(client_error("UserNotFoundException"), "initiate_auth")
    wrong = translate(client_error("NotAuthorizedException"), "initiate_auth")
    assert isinstance(unknown, CognitoError) and isinstance(wrong, CognitoError)
    assert unknown.friendly == wrong.friendly and unknown.status == wrong.status


@pytest.mark.parametrize(
    "error",
    [
        client_error("InternalErrorException", 500),
        client_error("500", 500),
        client_error("ResourceNotFoundException"),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    ],
)
def test_cognito_down_or_misconfigured_is_unavailable(error: Exception) -> None:
    translated = translate(error, "initiate_auth")
    assert isinstance(translated, CognitoUnavailableError)
    assert translated.status == 503


class FakeCognitoApi:
    """Records sign-out calls; ``revoke_error`` makes RevokeToken fail like that."""

    def __init__(
        self, revoke_error: Exception | None = None, sign_out_error: Exception | None = None
    ) -> None:
        self.revoke_error = revoke_error
        self.sign_out_error = sign_out_error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def revoke_token(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("revoke_token", kwargs))
        if self.revoke_error:
            raise self.revoke_error
        return {}

    def global_sign_out(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("global_sign_out", kwargs))
        if self.sign_out_error:
            raise self.sign_out_error
        return {}


def test_sign_out_revokes_the_refresh_token_when_cognito_can() -> None:
    api = FakeCognitoApi()
    assert CognitoClient(api, "client").sign_out("REFRESH", "ACCESS") == "revoke_token"
    assert api.calls == [("revoke_token", {"Token": "REFRESH", "ClientId": "client"})]


@pytest.mark.parametrize(
    "error",
    [client_error("500", 500, "RevokeToken"), client_error("UnsupportedOperationException")],
    ids=["emulator-lacks-revoke-token", "revocation-disabled-on-client"],
)
def test_sign_out_falls_back_to_global_sign_out_when_revoke_token_is_missing(
    error: ClientError,
) -> None:
    api = FakeCognitoApi(revoke_error=error)
    assert CognitoClient(api, "client").sign_out("REFRESH", "ACCESS") == "global_sign_out"
    assert [name for name, _ in api.calls] == ["revoke_token", "global_sign_out"]
    assert api.calls[1][1] == {"AccessToken": "ACCESS"}


def test_a_real_cognito_outage_during_revoke_is_not_papered_over() -> None:
    api = FakeCognitoApi(revoke_error=client_error("InternalErrorException", 500))
    with pytest.raises(CognitoUnavailableError):
        CognitoClient(api, "client").sign_out("REFRESH", "ACCESS")
    assert [name for name, _ in api.calls] == ["revoke_token"]


def test_an_already_invalid_token_makes_sign_out_a_no_op() -> None:
    api = FakeCognitoApi(
        revoke_error=client_error("500", 500, "RevokeToken"),
        sign_out_error=client_error("NotAuthorizedException"),
    )
    assert CognitoClient(api, "client").sign_out("REFRESH", "ACCESS") == "already_invalid"


# --------------------------------------------------------------------------- hosted UI


def test_an_authorization_request_carries_an_s256_challenge_state_and_nonce() -> None:
    hosted = HostedUi("https://auth.example.com/", "client-1")
    first = hosted.begin("https://app.example.com/auth/callback")
    second = hosted.begin("https://app.example.com/auth/callback")
    parts = urlsplit(first.url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}"
        == "https://auth.example.com/oauth2/authorize"
    )
    assert query["code_challenge"] == s256_challenge(first.code_verifier)
    assert query["code_challenge_method"] == "S256"
    assert query["state"] == first.state and query["nonce"] == first.nonce
    assert first.code_verifier not in first.url
    assert 43 <= len(first.code_verifier) <= 128
    assert {first.state, first.nonce, first.code_verifier}.isdisjoint(
        {second.state, second.nonce, second.code_verifier}
    )


def test_a_callback_state_that_does_not_match_is_refused_before_any_request() -> None:
    # An unreachable domain: reaching the network would be CognitoUnavailableError instead.
    hosted = HostedUi("http://127.0.0.1:9", "client-1")
    pending = {"state": "expected-state", "nonce": "n", "code_verifier": "v" * 64}
    for returned in ("other-state", "", None):
        with pytest.raises(StateMismatchError):
            hosted.finish(pending, "http://app/cb", "http://app/cb?code=c&state=x", returned)
    with pytest.raises(StateMismatchError):
        hosted.finish({}, "http://app/cb", "http://app/cb?code=c&state=", "")
