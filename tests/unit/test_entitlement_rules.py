"""When an entitlement counts as active, and which end dates a grant accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.entitlements import Entitlement, EntitlementStore
from app.errors import BadRequestError

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_premium_without_an_end_is_active() -> None:
    assert Entitlement("u", True, None, 1).is_active(NOW)


def test_premium_is_active_until_one_second_before_its_end_and_not_at_it() -> None:
    entitlement = Entitlement("u", True, NOW, 1)
    assert entitlement.is_active(NOW - timedelta(seconds=1))
    assert not entitlement.is_active(NOW)
    assert not entitlement.is_active(NOW + timedelta(seconds=1))


def test_not_premium_is_never_active_whatever_the_end_date() -> None:
    assert not Entitlement("u", False, None, 0).is_active(NOW)
    assert not Entitlement("u", False, NOW + timedelta(days=1), 3).is_active(NOW)


def test_the_end_date_compares_across_timezones() -> None:
    paris_noon = datetime(2026, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert not Entitlement("u", True, paris_noon, 1).is_active(NOW)
    assert Entitlement("u", True, paris_noon, 1).is_active(NOW - timedelta(microseconds=1))


class _NoDynamoDB:
    """Any call means validation let bad input through to DynamoDB."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"DynamoDB was called ({name}) for input that should be refused")


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"premium": True, "until": NOW - timedelta(days=1)}, "past"),
        ({"premium": True, "until": NOW}, "now"),
        ({"premium": True, "until": NOW + timedelta(microseconds=500)}, "rounds down to now"),
        ({"premium": True, "until": datetime(2030, 1, 1)}, "naive"),
        ({"premium": False, "until": NOW + timedelta(days=1)}, "until on a revoke"),
        ({"premium": "yes", "until": None}, "premium not a bool"),
        ({"premium": True, "until": "2030-01-01T00:00:00Z"}, "until not a datetime"),
        ({"premium": True, "until": None, "expected_version": -1}, "negative version"),
        ({"premium": True, "until": None, "expected_version": True}, "bool version"),
        ({"premium": True, "until": None, "expected_version": []}, "no versions"),
        ({"premium": True, "until": None, "expected_version": [2, -1]}, "a negative version"),
        ({"premium": True, "until": None, "expected_version": [2, True]}, "a bool among versions"),
        ({"premium": True, "until": None, "expected_version": "3"}, "version as text"),
        ({"premium": True, "until": None, "forced": True, "expected_version": 3}, "forced+version"),
        ({"premium": True, "until": None, "forced": 1}, "forced not a bool"),
        ({"premium": True, "until": None, "actor": ""}, "no actor"),
        ({"premium": True, "until": None, "user_id": ""}, "empty user id"),
        ({"premium": True, "until": None, "user_id": "a\nb"}, "control character"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_changes_are_refused_before_reaching_dynamodb(
    kwargs: dict[str, object], why: str
) -> None:
    store = EntitlementStore(_NoDynamoDB(), "users", "audit", clock=lambda: NOW)  # type: ignore[arg-type]
    arguments: dict[str, object] = {"user_id": "u", "actor": "admin", **kwargs}
    user_id = arguments.pop("user_id")
    premium = arguments.pop("premium")
    until = arguments.pop("until")
    with pytest.raises(BadRequestError):
        store.set_premium(user_id, premium, until, **arguments)  # type: ignore[arg-type]
