"""Admin rights that need TOTP: with ``admin_needs_totp`` a member of ``admin`` counts only
once Cognito lists authenticator-app MFA for them (``AdminGetUser``); Cognito failing is a
503, never admin. Without the setting nothing more is asked. No network.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from app.config import Need, load_settings
from app.errors import ConfigurationError
from app.user_pool import ADMIN_GROUP, TOTP_MFA, UserPool, UserPoolUnavailableError
from tests.unit.test_admin_membership import Clock, FakeCognito, client_error


class FakeCognitoWithMfa(FakeCognito):
    """FakeCognito plus each user's MFA settings, as AdminGetUser returns them."""

    def __init__(self) -> None:
        super().__init__()
        self.mfa: dict[str, list[str]] = {}
        self.get_user_failure: Exception | None = None

    def admin_get_user(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("admin_get_user", kwargs))
        if self.get_user_failure is not None:
            raise self.get_user_failure
        if kwargs["Username"] not in self.groups:
            raise client_error("UserNotFoundException")
        settings = self.mfa.get(kwargs["Username"])
        return {
            "Username": kwargs["Username"],
            **({"UserMFASettingList": settings} if settings else {}),
        }


def totp_pool(fake: FakeCognitoWithMfa, clock: Clock | None = None) -> UserPool:
    return UserPool(fake, "us-east-1_Pool1", clock=clock or Clock(), admin_needs_totp=True)


def test_an_admin_with_totp_set_up_is_an_admin() -> None:
    fake = FakeCognitoWithMfa()
    fake.groups["alice"] = [ADMIN_GROUP, "editors"]
    fake.mfa["alice"] = [TOTP_MFA]
    assert totp_pool(fake).is_member("alice", ADMIN_GROUP)


@pytest.mark.parametrize("settings", [[], ["SMS_MFA"]])
def test_an_admin_without_totp_is_not_an_admin_but_keeps_other_groups(
    settings: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeCognitoWithMfa()
    fake.groups["bob"] = [ADMIN_GROUP, "editors"]
    fake.mfa["bob"] = settings
    pool = totp_pool(fake)
    assert not pool.is_member("bob", ADMIN_GROUP)
    assert pool.is_member("bob", "editors")
    assert "admin_without_totp" in caplog.text


def test_setting_up_totp_counts_once_the_cached_answer_expires() -> None:
    fake = FakeCognitoWithMfa()
    fake.groups["bob"] = [ADMIN_GROUP]
    clock = Clock()
    pool = totp_pool(fake, clock)
    assert not pool.is_member("bob", ADMIN_GROUP)
    fake.mfa["bob"] = [TOTP_MFA]
    clock.now += 29.9
    assert not pool.is_member("bob", ADMIN_GROUP)
    clock.now += 0.1
    assert pool.is_member("bob", ADMIN_GROUP)


def test_a_non_admin_costs_no_extra_call() -> None:
    fake = FakeCognitoWithMfa()
    fake.groups["carol"] = ["editors"]
    assert not totp_pool(fake).is_member("carol", ADMIN_GROUP)
    assert [name for name, _ in fake.calls] == ["admin_list_groups_for_user"]


@pytest.mark.parametrize(
    "failure",
    [client_error("TooManyRequestsException"), EndpointConnectionError(endpoint_url="https://x")],
)
def test_cognito_failing_to_say_is_unavailable_never_admin(failure: Exception) -> None:
    fake = FakeCognitoWithMfa()
    fake.groups["alice"] = [ADMIN_GROUP]
    fake.mfa["alice"] = [TOTP_MFA]
    fake.get_user_failure = failure
    pool = totp_pool(fake)
    with pytest.raises(UserPoolUnavailableError):
        pool.is_member("alice", ADMIN_GROUP)
    fake.get_user_failure = None
    assert pool.is_member("alice", ADMIN_GROUP), "a failure is not cached"


def test_without_the_setting_admin_needs_no_totp_and_no_extra_call() -> None:
    fake = FakeCognitoWithMfa()
    fake.groups["bob"] = [ADMIN_GROUP]
    assert UserPool(fake, "us-east-1_Pool1", clock=Clock()).is_member("bob", ADMIN_GROUP)
    assert "admin_get_user" not in [name for name, _ in fake.calls]


BASE_ENV = {
    "AWS_REGION": "us-east-1",
    "VIDGATE_USER_POOL_ID": "us-east-1_Pool1",
    "VIDGATE_CLIENT_ID": "client",
}


@pytest.mark.parametrize(("value", "needs_totp"), [(None, False), ("", False), ("totp", True)])
def test_the_setting_comes_from_vidgate_admin_mfa(value: str | None, needs_totp: bool) -> None:
    env = dict(BASE_ENV) if value is None else {**BASE_ENV, "VIDGATE_ADMIN_MFA": value}
    cognito = load_settings(env, {Need.COGNITO}).cognito
    assert cognito is not None
    assert cognito.admin_needs_totp is needs_totp


@pytest.mark.parametrize("value", ["TOTP", "sms", "yes"])
def test_another_value_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigurationError, match="VIDGATE_ADMIN_MFA"):
        load_settings({**BASE_ENV, "VIDGATE_ADMIN_MFA": value}, {Need.COGNITO})
