"""Admin rights that end: the TTL cache, and group membership asked of Cognito.

A recording fake of the two ``cognito-idp`` admin calls stands in for Cognito
and a settable clock for time: an answer is reused for less than the TTL and
asked again at the TTL, a removal shows then, and every way Cognito can fail
is a 503 that is never cached and never "admin". No network.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from app.ttl_cache import TtlCache
from app.user_pool import ADMIN_GROUP, MEMBERSHIP_TTL_SECONDS, UserPool, UserPoolUnavailableError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client_error(code: str, status: int = 400) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "AdminListGroupsForUser")


class FakeCognito:
    """Group membership and sign-outs as Cognito keeps them; records every call."""

    def __init__(self, page_size: int = 60) -> None:
        self.groups: dict[str, list[str]] = {}
        self.signed_out: list[str] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failure: Exception | None = None
        self.page_size = page_size

    def admin_list_groups_for_user(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("admin_list_groups_for_user", kwargs))
        if self.failure is not None:
            raise self.failure
        if kwargs["Username"] not in self.groups:
            raise client_error("UserNotFoundException")
        names = self.groups[kwargs["Username"]]
        start = int(kwargs.get("NextToken") or 0)
        page = names[start : start + min(self.page_size, kwargs["Limit"])]
        response: dict[str, Any] = {"Groups": [{"GroupName": name} for name in page]}
        if start + len(page) < len(names):
            response["NextToken"] = str(start + len(page))
        return response

    def admin_user_global_sign_out(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("admin_user_global_sign_out", kwargs))
        if self.failure is not None:
            raise self.failure
        if kwargs["Username"] not in self.groups:
            raise client_error("UserNotFoundException")
        self.signed_out.append(kwargs["Username"])
        return {}


def pool(fake: FakeCognito, clock: Clock, ttl: float = MEMBERSHIP_TTL_SECONDS) -> UserPool:
    return UserPool(fake, "us-east-1_Pool1", membership_ttl=ttl, clock=clock)


# --------------------------------------------------------------------------- the cache


def test_a_cached_answer_is_reused_until_just_before_the_ttl_and_loaded_again_at_it() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(30, clock=clock)
    loads = iter(range(100))
    assert cache.get_or_load("k", lambda: next(loads)) == 0
    clock.now += 29.999
    assert cache.get_or_load("k", lambda: next(loads)) == 0
    clock.now += 0.001
    assert cache.get_or_load("k", lambda: next(loads)) == 1


def test_an_answer_is_as_old_as_the_start_of_its_load() -> None:
    clock = Clock()
    cache: TtlCache[str, str] = TtlCache(30, clock=clock)

    def slow_load() -> str:
        clock.now += 20  # Cognito took 20 s to answer
        return "slow"

    assert cache.get_or_load("k", slow_load) == "slow"
    clock.now += 10
    assert cache.get_or_load("k", lambda: "fresh") == "fresh"


def test_a_failed_load_is_not_cached() -> None:
    cache: TtlCache[str, str] = TtlCache(30, clock=Clock())

    def fail() -> str:
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        cache.get_or_load("k", fail)
    assert len(cache) == 0
    assert cache.get_or_load("k", lambda: "up") == "up"


def test_a_discarded_or_uncached_key_is_loaded_again() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(30, clock=clock)
    cache.get_or_load("k", lambda: 1)
    cache.discard("k")
    assert cache.get_or_load("k", lambda: 2) == 2
    off: TtlCache[str, int] = TtlCache(0, clock=clock)
    off.get_or_load("k", lambda: 1)
    assert off.get_or_load("k", lambda: 2) == 2
    assert len(off) == 0


def test_the_cache_stays_bounded_dropping_expired_entries_then_the_oldest() -> None:
    clock = Clock()
    cache: TtlCache[int, int] = TtlCache(30, clock=clock, max_entries=3)
    cache.put(1, 1)
    clock.now += 31
    cache.put(2, 2)
    cache.put(3, 3)
    cache.put(4, 4)  # 1 has expired: it goes first
    assert len(cache) == 3
    cache.put(5, 5)  # nothing expired: the oldest (2) goes
    assert cache.get_or_load(3, lambda: -1) == 3
    assert cache.get_or_load(2, lambda: -2) == -2


def test_a_negative_ttl_or_size_is_refused() -> None:
    with pytest.raises(ValueError):
        TtlCache(-1)
    with pytest.raises(ValueError):
        TtlCache(1, max_entries=0)


# --------------------------------------------------------------------------- membership


def test_a_member_is_admin_and_cognito_is_asked_once_per_ttl() -> None:
    fake, clock = FakeCognito(), Clock()
    fake.groups = {"carol": ["editors", ADMIN_GROUP], "bob": []}
    users = pool(fake, clock)

    assert users.is_member("carol", ADMIN_GROUP)
    assert not users.is_member("bob", ADMIN_GROUP)
    assert users.is_member("carol", ADMIN_GROUP)
    assert [kwargs["Username"] for _, kwargs in fake.calls] == ["carol", "bob"]
    assert fake.calls[0][1] == {"UserPoolId": "us-east-1_Pool1", "Username": "carol", "Limit": 60}


def test_a_removal_takes_effect_when_the_cached_answer_reaches_the_ttl() -> None:
    fake, clock = FakeCognito(), Clock()
    fake.groups = {"carol": [ADMIN_GROUP]}
    users = pool(fake, clock)
    assert users.is_member("carol", ADMIN_GROUP)

    fake.groups["carol"] = []
    clock.now += MEMBERSHIP_TTL_SECONDS - 0.001
    assert users.is_member("carol", ADMIN_GROUP), "within the TTL the answer may be stale"
    clock.now += 0.001
    assert not users.is_member("carol", ADMIN_GROUP)


def test_an_addition_is_seen_after_the_ttl_too() -> None:
    fake, clock = FakeCognito(), Clock()
    fake.groups = {"dora": []}
    users = pool(fake, clock)
    assert not users.is_member("dora", ADMIN_GROUP)
    fake.groups["dora"] = [ADMIN_GROUP]
    clock.now += MEMBERSHIP_TTL_SECONDS
    assert users.is_member("dora", ADMIN_GROUP)


def test_every_page_of_groups_is_read() -> None:
    fake, clock = FakeCognito(page_size=2), Clock()
    fake.groups = {"carol": ["a", "b", "c", "d", ADMIN_GROUP]}
    assert pool(fake, clock).groups_of("carol") == {"a", "b", "c", "d", ADMIN_GROUP}
    assert [kwargs.get("NextToken") for _, kwargs in fake.calls] == [None, "2", "4"]


def test_a_user_the_pool_no_longer_has_is_in_no_group() -> None:
    fake, clock = FakeCognito(), Clock()
    assert pool(fake, clock).groups_of("deleted") == frozenset()


@pytest.mark.parametrize(
    "failure",
    [
        client_error("TooManyRequestsException"),
        client_error("InternalErrorException", 500),
        client_error("AccessDeniedException"),
        client_error("ResourceNotFoundException"),
        client_error("500", 500),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
    ],
    ids=["throttled", "internal", "not-permitted", "no-pool", "emulator-500", "down", "timeout"],
)
def test_cognito_unable_to_answer_is_unavailable_never_admin_and_never_cached(
    failure: Exception,
) -> None:
    fake, clock = FakeCognito(), Clock()
    fake.groups = {"carol": [ADMIN_GROUP]}
    users = pool(fake, clock)
    fake.failure = failure

    with pytest.raises(UserPoolUnavailableError) as caught:
        users.is_member("carol", ADMIN_GROUP)
    assert caught.value.status == 503

    fake.failure = None
    assert users.is_member("carol", ADMIN_GROUP)
    assert len(fake.calls) == 2


def test_a_cached_answer_still_counts_while_cognito_is_down_within_the_ttl() -> None:
    fake, clock = FakeCognito(), Clock()
    fake.groups = {"carol": [ADMIN_GROUP]}
    users = pool(fake, clock)
    assert users.is_member("carol", ADMIN_GROUP)
    fake.failure = client_error("InternalErrorException", 500)
    clock.now += 10
    assert users.is_member("carol", ADMIN_GROUP)
    clock.now += 20
    with pytest.raises(UserPoolUnavailableError):
        users.is_member("carol", ADMIN_GROUP)


# --------------------------------------------------------------------------- sign-out


def test_signing_out_everywhere_calls_admin_user_global_sign_out_and_forgets_membership() -> None:
    fake, clock = FakeCognito(), Clock()
    fake.groups = {"carol": [ADMIN_GROUP]}
    users = pool(fake, clock)
    users.is_member("carol", ADMIN_GROUP)

    users.sign_out_everywhere("carol")
    fake.groups["carol"] = []

    assert fake.signed_out == ["carol"]
    assert (
        "admin_user_global_sign_out",
        {"UserPoolId": "us-east-1_Pool1", "Username": "carol"},
    ) in fake.calls
    assert not users.is_member("carol", ADMIN_GROUP), "the next check asks Cognito again"


def test_signing_out_a_user_the_pool_does_not_have_is_nothing_to_do() -> None:
    fake, clock = FakeCognito(), Clock()
    pool(fake, clock).sign_out_everywhere("ghost")
    assert fake.signed_out == []


def test_a_sign_out_cognito_cannot_do_is_unavailable() -> None:
    fake, clock = FakeCognito(), Clock()
    fake.groups = {"carol": []}
    fake.failure = client_error("TooManyRequestsException")
    with pytest.raises(UserPoolUnavailableError):
        pool(fake, clock).sign_out_everywhere("carol")
