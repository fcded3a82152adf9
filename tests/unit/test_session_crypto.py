"""Unit tests of the two ways a web session keeps secrets: envelope encryption of the
Cognito tokens under KMS data keys (bounded key reuse, one Decrypt per encrypted key,
associated data, failing closed) and the encrypted pre-session cookie. KMS is a recording
fake with AWS's refusals; a fixed clock drives every bound.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from app.errors import DependencyUnavailableError
from app.web.envelope import (
    DATA_KEY_MAX_AGE_SECONDS,
    DECRYPTED_KEY_MAX_AGE_SECONDS,
    EnvelopeCipher,
    Sealed,
    UnreadableSealError,
)
from app.web.presession import MAX_COOKIE_BYTES, PreSessionCookie, PreSessionTooLargeError
from app.web.session_store import TOKENS_PURPOSE, token_context
from tests.unit.session_fakes import Clock, FakeKms

AAD = b"session-key-hash"
CONTEXT = token_context("sessions")


def cipher(kms: FakeKms, clock: Clock, **bounds: Any) -> EnvelopeCipher:
    return EnvelopeCipher(kms, kms.key_id, context=CONTEXT, clock=clock, **bounds)


# --------------------------------------------------------------------------- envelope


def test_a_value_opens_with_its_aad_and_the_key_asks_kms_for_the_context_it_names() -> None:
    kms, clock = FakeKms(), Clock()
    sealed = cipher(kms, clock).seal(b"the tokens", aad=AAD)
    assert b"the tokens" not in sealed.ciphertext
    assert cipher(kms, clock).open(sealed, aad=AAD) == b"the tokens"
    assert kms.calls == ["GenerateDataKey", "Decrypt"]
    assert kms.contexts == [{"purpose": TOKENS_PURPOSE, "table": "sessions"}] * 2


def test_another_aad_does_not_open_the_value() -> None:
    kms, clock = FakeKms(), Clock()
    box = cipher(kms, clock)
    sealed = box.seal(b"the tokens", aad=AAD)
    with pytest.raises(UnreadableSealError):
        box.open(sealed, aad=b"another-item")


def test_every_value_gets_its_own_nonce() -> None:
    box = cipher(FakeKms(), Clock())
    first, second = box.seal(b"same", aad=AAD), box.seal(b"same", aad=AAD)
    assert first.encrypted_key == second.encrypted_key, "one data key for both"
    assert first.ciphertext[1:13] != second.ciphertext[1:13]
    assert first.ciphertext != second.ciphertext


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b[:10],
        lambda b: bytes([2]) + b[1:],
        lambda b: b[:-1] + bytes([b[-1] ^ 1]),
        lambda b: b[:1] + bytes([b[1] ^ 1]) + b[2:],
        lambda b: b"",
    ],
    ids=["short", "other-version", "tag", "nonce", "empty"],
)
def test_a_changed_value_does_not_open(mangle: Any) -> None:
    box = cipher(FakeKms(), Clock())
    sealed = box.seal(b"the tokens", aad=AAD)
    with pytest.raises(UnreadableSealError):
        box.open(Sealed(mangle(sealed.ciphertext), sealed.encrypted_key), aad=AAD)


def test_a_data_key_is_reused_for_a_bounded_time() -> None:
    kms, clock = FakeKms(), Clock()
    box = cipher(kms, clock)
    first = box.seal(b"a", aad=AAD)
    clock.now += DATA_KEY_MAX_AGE_SECONDS - 1
    assert box.seal(b"b", aad=AAD).encrypted_key == first.encrypted_key
    clock.now += 1
    assert box.seal(b"c", aad=AAD).encrypted_key != first.encrypted_key
    assert kms.calls == ["GenerateDataKey", "GenerateDataKey"]


def test_a_data_key_is_reused_for_a_bounded_number_of_values() -> None:
    kms, clock = FakeKms(), Clock()
    box = cipher(kms, clock, max_key_uses=3)
    keys = {box.seal(b"x", aad=AAD).encrypted_key for _ in range(7)}
    assert len(keys) == 3
    assert kms.calls.count("GenerateDataKey") == 3


def test_kms_decrypts_each_encrypted_key_once_then_the_answer_is_cached_for_a_while() -> None:
    kms, clock = FakeKms(), Clock()
    writer = cipher(kms, clock, max_key_uses=1)
    one, two = writer.seal(b"1", aad=AAD), writer.seal(b"2", aad=AAD)
    kms.calls.clear()
    reader = cipher(kms, clock)
    for _ in range(3):
        assert reader.open(one, aad=AAD) == b"1"
        assert reader.open(two, aad=AAD) == b"2"
    assert kms.calls == ["Decrypt", "Decrypt"]
    clock.now += DECRYPTED_KEY_MAX_AGE_SECONDS
    reader.open(one, aad=AAD)
    assert kms.calls == ["Decrypt"] * 3, "a key disabled in KMS stops working within the bound"


def test_the_decrypted_key_cache_is_bounded() -> None:
    kms, clock = FakeKms(), Clock()
    writer = cipher(kms, clock, max_key_uses=1)
    values = [writer.seal(bytes([n]), aad=AAD) for n in range(3)]
    kms.calls.clear()
    reader = cipher(kms, clock, decrypted_cache_size=2)
    for value in values:
        reader.open(value, aad=AAD)
    reader.open(values[0], aad=AAD)
    assert kms.calls == ["Decrypt"] * 4, "the least recently used key was dropped"


def test_a_process_opens_what_it_sealed_without_asking_kms() -> None:
    kms, clock = FakeKms(), Clock()
    box = cipher(kms, clock)
    sealed = box.seal(b"x", aad=AAD)
    box.open(sealed, aad=AAD)
    assert kms.calls == ["GenerateDataKey"]


def test_kms_unreachable_or_refusing_is_a_dependency_failure_never_a_plaintext_value() -> None:
    kms, clock = FakeKms(), Clock()
    kms.down = True
    with pytest.raises(DependencyUnavailableError):
        cipher(kms, clock).seal(b"x", aad=AAD)
    kms.down = False
    sealed = cipher(kms, clock).seal(b"x", aad=AAD)
    for code in ("AccessDeniedException", "KMSInvalidStateException", "DisabledException",
                 "ThrottlingException", "KMSInternalException"):  # fmt: skip
        kms.refuse = code
        with pytest.raises(DependencyUnavailableError):
            cipher(kms, clock).open(sealed, aad=AAD)
        with pytest.raises(DependencyUnavailableError):
            cipher(kms, clock).seal(b"x", aad=AAD)


def test_a_data_key_of_another_context_or_kms_key_is_unreadable_not_an_outage() -> None:
    kms, clock = FakeKms(), Clock()
    sealed = cipher(kms, clock).seal(b"x", aad=AAD)
    other_table = EnvelopeCipher(kms, kms.key_id, context=token_context("other"), clock=clock)
    with pytest.raises(UnreadableSealError):
        other_table.open(sealed, aad=AAD)
    other_key = EnvelopeCipher(kms, "alias/another-key", context=CONTEXT, clock=clock)
    with pytest.raises(UnreadableSealError):
        other_key.open(sealed, aad=AAD)


def test_the_cipher_never_shows_key_material() -> None:
    box = cipher(FakeKms(), Clock())
    sealed = box.seal(b"x", aad=AAD)
    assert "key_id=" in repr(box) and "Plaintext" not in repr(box)
    assert repr(sealed) == f"Sealed({len(sealed.ciphertext)} bytes)"
    with pytest.raises(ValueError):
        EnvelopeCipher(FakeKms(), "", context=CONTEXT)


# --------------------------------------------------------------------------- pre-session cookie


SECRET = b"s" * 40


def test_the_pre_session_cookie_round_trips_and_reveals_nothing() -> None:
    codec = PreSessionCookie(SECRET, clock=Clock())
    value = codec.seal({"challenge": {"session": "cognito-challenge-session"}})
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    assert b"cognito-challenge-session" not in raw and b"challenge" not in raw
    assert codec.open(value) == {"challenge": {"session": "cognito-challenge-session"}}


def test_every_seal_of_the_same_state_differs() -> None:
    codec = PreSessionCookie(SECRET, clock=Clock())
    assert codec.seal({"a": 1}) != codec.seal({"a": 1})


def test_a_pre_session_cookie_expires_and_one_from_the_future_is_refused() -> None:
    clock = Clock()
    codec = PreSessionCookie(SECRET, clock=clock, lifetime=600)
    value = codec.seal({"a": 1})
    clock.now += 599
    assert codec.open(value) == {"a": 1}
    clock.now += 1
    assert codec.open(value) is None
    clock.now -= 600 + 61  # issued more than a minute after "now": a clock that ran away
    assert codec.open(value) is None


@pytest.mark.parametrize(
    "value", [None, 7, "", "A", "A" * 100, "%%%", "A" * (MAX_COOKIE_BYTES + 1)]
)
def test_malformed_pre_session_cookies_are_nothing(value: object) -> None:
    assert PreSessionCookie(SECRET, clock=Clock()).open(value) is None


def test_a_pre_session_cookie_of_another_secret_or_changed_is_nothing() -> None:
    clock = Clock()
    value = PreSessionCookie(SECRET, clock=clock).seal({"a": 1})
    assert PreSessionCookie(b"t" * 40, clock=clock).open(value) is None
    flipped = value[:20] + ("A" if value[20] != "A" else "B") + value[21:]
    assert PreSessionCookie(SECRET, clock=clock).open(flipped) is None


def test_state_too_large_for_a_cookie_is_refused_and_a_short_secret_too() -> None:
    codec = PreSessionCookie(SECRET, clock=Clock())
    with pytest.raises(PreSessionTooLargeError):
        codec.seal({"a": "x" * MAX_COOKIE_BYTES})
    with pytest.raises(ValueError):
        PreSessionCookie(b"short")
