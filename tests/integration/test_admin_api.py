"""The admin API handler against the AWS emulator: real Cognito tokens, real tables.

A user pool with an ``admin`` group (carol is in it; bob and the others are
not), the tables from :func:`app.tables.create_tables`, and the handler of
:mod:`lambda_handlers.admin` built over :class:`~app.services.Services`, fed
API Gateway HTTP API events (payload 2.0 made here, plus the AWS-shaped
sample in ``tests/events/admin_v2_set_premium.json``).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

import lambda_handlers.admin as admin_module
from app.config import load_settings
from app.dynamo import MAX_PAGE_SIZE, dynamodb_client
from app.entitlements import EntitlementStore, parse_until
from app.errors import BadRequestError
from app.http.admin import NEEDS, AdminApi, make_handler
from app.local.emulator import Emulator
from app.local.ports import free_port
from app.services import Services
from app.tables import create_tables
from app.user_pool import UserPool
from app.users import UserDirectory
from tests.cognito_accounts import Account, create_pool, sign_in

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[1] / "events"
NAMES = ("carol", "bob", "dora", "erin", "frank")


@dataclass
class Stack:
    env: dict[str, str]
    accounts: dict[str, Account]
    entitlements: EntitlementStore
    handler: AdminApi

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        query: str = "",
        body: Any = None,
        if_match: str | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        result = self.handler(
            event(method, path, token=token, query=query, body=body, if_match=if_match)
        )
        text = result["body"]
        return result["statusCode"], json.loads(text) if text else None, result["headers"]

    def as_admin(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
        return self.call(method, path, token=self.accounts["carol"].access_token, **kwargs)


def event(
    method: str,
    path: str,
    *,
    token: str | None,
    query: str = "",
    body: Any = None,
    if_match: str | None = None,
) -> dict[str, Any]:
    """A payload 2.0 event as API Gateway's HTTP API sends it."""
    headers = {"accept": "application/json", "host": "api.example.test"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if if_match is not None:
        headers["if-match"] = if_match
    result: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "192.0.2.9"},
            "requestId": uuid.uuid4().hex,
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    if body is not None:
        result["body"] = body if isinstance(body, str) else json.dumps(body)
        headers["content-type"] = "application/json"
    return result


@pytest.fixture(scope="module")
def stack(emulator: Emulator, boto_session: boto3.Session) -> Iterator[Stack]:
    prefix = f"adm{uuid.uuid4().hex[:10]}"
    cognito: Any = boto_session.client("cognito-idp")
    pool_id, client_id = create_pool(cognito, prefix)
    accounts = {
        name: sign_in(cognito, pool_id, client_id, name, ("admin",) if name == "carol" else ())
        for name in NAMES
    }
    tables = {logical: f"{prefix}-{logical}" for logical in ("users", "videos", "audit")}
    dynamodb = dynamodb_client(boto_session)
    create_tables(dynamodb, tables)
    directory = UserDirectory(dynamodb, tables["users"])
    for account in accounts.values():
        directory.create_on_signup(account.sub, account.username, f"{account.username}@example.com")
    env = {
        "AWS_REGION": "us-east-1",
        "VIDGATE_USER_POOL_ID": pool_id,
        "VIDGATE_CLIENT_ID": client_id,
        "VIDGATE_JWKS_URL": f"{emulator.endpoint}/{pool_id}/.well-known/jwks.json",
        "VIDGATE_USERS_TABLE": tables["users"],
        "VIDGATE_VIDEOS_TABLE": tables["videos"],
        "VIDGATE_AUDIT_TABLE": tables["audit"],
    }
    handler = make_handler(Services(load_settings(env, NEEDS), session=boto_session))
    yield Stack(
        env, accounts, EntitlementStore(dynamodb, tables["users"], tables["audit"]), handler
    )


def premium_path(stack: Stack, name: str) -> str:
    return f"/api/admin/users/{stack.accounts[name].sub}/premium"


def audit_of(stack: Stack, name: str) -> list[dict[str, Any]]:
    status, body, _ = stack.as_admin(
        "GET", "/api/admin/audit", query=f"user_id={stack.accounts[name].sub}&limit=100"
    )
    assert status == 200
    return list(body["items"])


# --- who may call ---------------------------------------------------------------------

ROUTES = [
    ("GET", "/api/admin/users", "", None),
    ("GET", "/api/admin/users", "email_prefix=bob&limit=5", None),
    ("PUT", "/api/admin/users/{user_id}/premium", "", {"premium": True, "until": None}),
    ("PUT", "/api/admin/users/no-such-user/premium", "", {"premium": True, "until": None}),
    ("GET", "/api/admin/audit", "", None),
    ("GET", "/api/admin/audit", "user_id={user_id}", None),
    ("GET", "/api/admin/users/{user_id}/streams", "", None),
    ("DELETE", "/api/admin/users/{user_id}/streams/" + "0" * 32, "", None),
]


def test_the_refusal_table_covers_every_route_of_the_handler(stack: Stack) -> None:
    routes = {(route.method, route.pattern) for route in stack.handler.router.routes}
    covered = {
        (
            method,
            "/api/admin/users/{user_id}/premium"
            if "premium" in path
            else "/api/admin/users/{user_id}/streams/{session_id}"
            if "/streams/" in path
            else path,
        )
        for method, path, _, _ in ROUTES
    }
    assert routes == covered


@pytest.mark.parametrize(("method", "path", "query", "body"), ROUTES)
def test_bob_who_is_not_an_admin_is_refused_with_403_on_every_route(
    stack: Stack, method: str, path: str, query: str, body: Any
) -> None:
    bob = stack.accounts["bob"]
    before = stack.entitlements.get(bob.sub)

    status, answer, _ = stack.call(
        method,
        path.format(user_id=bob.sub),
        token=bob.access_token,
        query=query.format(user_id=bob.sub),
        body=body,
        if_match=f'"{before.version}"' if method == "PUT" else None,
    )

    assert status == 403
    assert answer["error"] == "forbidden"
    assert "items" not in answer
    assert stack.entitlements.get(bob.sub) == before  # bob did not make himself premium


@pytest.mark.parametrize(("method", "path", "query", "body"), ROUTES)
@pytest.mark.parametrize("credential", ["none", "garbage", "admin-id-token"])
def test_a_request_without_a_valid_access_token_is_401_on_every_route(
    stack: Stack, method: str, path: str, query: str, body: Any, credential: str
) -> None:
    token = {"none": None, "garbage": "a.b.c", "admin-id-token": stack.accounts["carol"].id_token}
    bob = stack.accounts["bob"]

    status, answer, headers = stack.call(
        method,
        path.format(user_id=bob.sub),
        token=token[credential],
        query=query.format(user_id=bob.sub),
        body=body,
        if_match='"0"' if method == "PUT" else None,
    )

    assert status == 401
    assert answer["error"] == "unauthorized"
    assert headers["www-authenticate"].startswith("Bearer")


# --- listing --------------------------------------------------------------------------


def test_an_admin_lists_users_page_by_page_with_cursors(stack: Stack) -> None:
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, body, _ = stack.as_admin("GET", "/api/admin/users", query=query)
        assert status == 200
        assert len(body["items"]) <= 2
        seen += [item["username"] for item in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(NAMES)
    assert seen == sorted(seen)  # e-mail order
    item = next(i for i in body["items"])
    assert {
        "user_id",
        "username",
        "email",
        "premium",
        "premium_until",
        "version",
        "updated_at",
        "updated_by",
    } <= set(item)


def test_an_admin_searches_users_by_e_mail_prefix(stack: Stack) -> None:
    status, body, _ = stack.as_admin("GET", "/api/admin/users", query="email_prefix=DO")

    assert status == 200
    assert [item["username"] for item in body["items"]] == ["dora"]
    assert body["next_cursor"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "cursor=not-a-cursor"])
def test_a_bad_page_size_or_cursor_is_400(stack: Stack, query: str) -> None:
    status, body, _ = stack.as_admin("GET", "/api/admin/users", query=query)

    assert status == 400
    assert body["error"] == "bad_request"


def test_the_largest_page_size_is_accepted(stack: Stack) -> None:
    status, body, _ = stack.as_admin("GET", "/api/admin/users", query=f"limit={MAX_PAGE_SIZE}")

    assert status == 200
    assert len(body["items"]) == len(NAMES)


def test_a_rest_api_payload_1_0_event_is_a_400_json_error_and_changes_nothing(
    stack: Stack,
) -> None:
    """Only the HTTP API (payload 2.0) is deployed; a REST API event is malformed."""
    token = stack.accounts["carol"].access_token
    headers = {"Authorization": f"Bearer {token}", "If-Match": "*"}
    dora = stack.accounts["dora"].sub
    before = stack.entitlements.get(dora)
    path = f"/api/admin/users/{dora}/premium"
    rest_api_event = {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": "PUT",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "requestContext": {
            "httpMethod": "PUT",
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "f4e8b2c5-9be0-4acd-8f4f-6b2c3d4e5f60",
            "identity": {"sourceIp": "203.0.113.9"},
        },
        "body": json.dumps({"premium": not before.premium, "until": None}),
        "isBase64Encoded": False,
    }

    result = stack.handler(rest_api_event)

    assert result["statusCode"] == 400
    assert result["headers"]["content-type"] == "application/json"
    assert json.loads(result["body"])["error"] == "bad_request"
    assert stack.entitlements.get(dora) == before


# --- changing premium -------------------------------------------------------------------


def test_a_grant_with_the_current_version_answers_the_new_state_and_is_audited(
    stack: Stack,
) -> None:
    before = stack.entitlements.get(stack.accounts["dora"].sub)
    until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    sample = json.loads((EVENTS / "admin_v2_set_premium.json").read_text())
    text = json.dumps(sample)
    text = text.replace("USER_ID", stack.accounts["dora"].sub).replace(
        "VERSION", str(before.version)
    )
    sample = json.loads(text)
    sample["headers"]["authorization"] = f"Bearer {stack.accounts['carol'].access_token}"
    sample["body"] = json.dumps({"premium": True, "until": until.isoformat()})

    result = stack.handler(sample)

    assert result["statusCode"] == 200, result
    state = json.loads(result["body"])
    assert state["premium"] is True
    assert state["premium_until"] == until.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert state["version"] == before.version + 1
    assert state["updated_by"] == "carol"
    assert result["headers"]["etag"] == f'"{before.version + 1}"'
    latest = audit_of(stack, "dora")[0]
    assert (latest["action"], latest["actor"], latest["version"]) == (
        "grant",
        "carol",
        before.version + 1,
    )
    assert stack.entitlements.get(stack.accounts["dora"].sub).is_active(datetime.now(UTC))


def test_a_stale_if_match_is_409_with_the_current_state_and_changes_nothing(
    stack: Stack,
) -> None:
    sub = stack.accounts["erin"].sub
    current = stack.entitlements.get(sub)
    stack.entitlements.set_premium(sub, not current.premium, None, actor="someone-else")
    records_before = audit_of(stack, "erin")

    status, body, headers = stack.as_admin(
        "PUT",
        premium_path(stack, "erin"),
        body={"premium": True, "until": None},
        if_match=f'"{current.version}"',
    )

    assert status == 409
    assert body["error"] == "conflict"
    assert body["current"]["version"] == current.version + 1
    assert body["current"]["updated_by"] == "someone-else"
    assert headers["etag"] == f'"{current.version + 1}"'
    assert audit_of(stack, "erin") == records_before


def test_a_revoke_ends_premium_and_clears_the_end_date(stack: Stack) -> None:
    sub = stack.accounts["frank"].sub
    granted = stack.entitlements.set_premium(
        sub, True, datetime.now(UTC) + timedelta(days=1), actor="test"
    )

    status, body, _ = stack.as_admin(
        "PUT",
        premium_path(stack, "frank"),
        body={"premium": False, "until": None},
        if_match=f'"{granted.version}"',
    )

    assert status == 200
    assert (body["premium"], body["premium_until"]) == (False, None)
    assert audit_of(stack, "frank")[0]["action"] == "revoke"


def test_saving_the_state_a_user_already_has_changes_nothing_and_audits_nothing(
    stack: Stack,
) -> None:
    sub = stack.accounts["frank"].sub
    current = stack.entitlements.get(sub)
    last_day = (datetime.now(UTC) + timedelta(days=40)).date()
    status, granted, headers = stack.as_admin(
        "PUT",
        premium_path(stack, "frank"),
        body={"premium": True, "until": last_day.isoformat()},
        if_match=f'"{current.version}"',
    )
    assert status == 200
    assert granted["premium_until"] == f"{last_day + timedelta(days=1)}T00:00:00Z"
    records = audit_of(stack, "frank")

    for until in (last_day.isoformat(), granted["premium_until"]):
        status, again, again_headers = stack.as_admin(
            "PUT",
            premium_path(stack, "frank"),
            body={"premium": True, "until": until},
            if_match=headers["etag"],
        )
        assert status == 200
        assert again == granted
        assert again_headers["etag"] == headers["etag"]
    assert audit_of(stack, "frank") == records


def test_an_admin_removed_from_the_group_is_refused_within_the_ttl(
    stack: Stack, boto_session: boto3.Session
) -> None:
    cognito: Any = boto_session.client("cognito-idp")
    pool_id, client_id = stack.env["VIDGATE_USER_POOL_ID"], stack.env["VIDGATE_CLIENT_ID"]
    gwen = sign_in(cognito, pool_id, client_id, f"gwen{uuid.uuid4().hex[:6]}", ("admin",))
    clock = _Clock()
    services = Services(load_settings(stack.env, NEEDS), session=boto_session)
    services.user_pool = UserPool(cognito, pool_id, membership_ttl=5, clock=clock)
    handler = make_handler(services, warm=False)

    def listing() -> int:
        result = handler(event("GET", "/api/admin/users", token=gwen.access_token))
        return int(result["statusCode"])

    assert listing() == 200
    cognito.admin_remove_user_from_group(
        UserPoolId=pool_id, Username=gwen.username, GroupName="admin"
    )
    clock.now += 4.99
    assert listing() == 200, "the answer from before the removal is at most 5 s old"
    clock.now += 0.01
    assert listing() == 403
    status = handler(
        event(
            "PUT",
            premium_path(stack, "bob"),
            token=gwen.access_token,
            body={"premium": True, "until": None},
            if_match='"0"',
        )
    )["statusCode"]
    assert status == 403, "her token still says admin; Cognito does not"


def test_cognito_unreachable_makes_the_admin_check_a_503(
    stack: Stack, boto_session: boto3.Session
) -> None:
    dead = boto_session.client("cognito-idp", endpoint_url=f"http://127.0.0.1:{free_port()}")
    services = Services(load_settings(stack.env, NEEDS), session=boto_session)
    services.user_pool = UserPool(dead, stack.env["VIDGATE_USER_POOL_ID"])
    handler = make_handler(services, warm=False)

    result = handler(event("GET", "/api/admin/users", token=stack.accounts["carol"].access_token))

    assert result["statusCode"] == 503
    assert json.loads(result["body"])["error"] == "unavailable"


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_change_without_if_match_is_refused_with_428(stack: Stack) -> None:
    status, body, _ = stack.as_admin(
        "PUT", premium_path(stack, "frank"), body={"premium": True, "until": None}
    )

    assert status == 428
    assert body["error"] == "precondition_required"


def test_an_unknown_user_is_404(stack: Stack) -> None:
    status, body, _ = stack.as_admin(
        "PUT",
        "/api/admin/users/no-such-user/premium",
        body={"premium": True, "until": None},
        if_match='"0"',
    )

    assert status == 404
    assert body["error"] == "not_found"


PAST = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("body", "if_match"),
    [
        ("not json", '"0"'),
        ("[true]", '"0"'),
        ({}, '"0"'),
        ({"premium": "true", "until": None}, '"0"'),
        ({"premium": 1, "until": None}, '"0"'),
        ({"premium": True, "until": "tomorrow"}, '"0"'),
        ({"premium": True, "until": "2030-01-01T00:00:00"}, '"0"'),  # no timezone
        ({"premium": True, "until": PAST}, '"0"'),
        ({"premium": True, "until": 1893456000}, '"0"'),
        ({"premium": False, "until": "2030-01-01T00:00:00Z"}, '"0"'),
        ({"premium": True, "until": None, "role": "admin"}, '"0"'),
        ({"premium": True, "until": None}, "version-three"),
    ],
)
def test_a_malformed_change_is_400_and_changes_nothing(
    stack: Stack, body: Any, if_match: str
) -> None:
    sub = stack.accounts["bob"].sub
    before = stack.entitlements.get(sub)

    status, answer, _ = stack.as_admin(
        "PUT",
        premium_path(stack, "bob"),
        body=body,
        if_match=if_match.replace("0", str(before.version)),
    )

    assert status == 400, answer
    assert answer["error"] == "bad_request"
    assert stack.entitlements.get(sub) == before


# --- races --------------------------------------------------------------------------------


def race(stack: Stack, name: str, version: int, premium: bool, threads: int) -> list[Any]:
    """``threads`` PUTs with the same If-Match, released together; their (status, body)."""
    barrier = threading.Barrier(threads)
    results: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def toggle() -> None:
        barrier.wait(timeout=10)
        status, body, _ = stack.as_admin(
            "PUT",
            premium_path(stack, name),
            body={"premium": premium, "until": None},
            if_match=f'"{version}"',
        )
        with lock:
            results.append((status, body))

    workers = [threading.Thread(target=toggle) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    return results


def test_concurrent_toggles_with_the_same_if_match_let_exactly_one_win_per_version(
    stack: Stack,
) -> None:
    sub = stack.accounts["dora"].sub
    threads = 16
    for _round in range(3):
        current = stack.entitlements.get(sub)
        audit_before = len(audit_of(stack, "dora"))
        wanted = not current.premium

        results = race(stack, "dora", current.version, wanted, threads)

        statuses = sorted(status for status, _ in results)
        assert statuses == [200] + [409] * (threads - 1)
        winner = next(body for status, body in results if status == 200)
        assert winner["version"] == current.version + 1
        assert all(
            body["current"]["version"] == current.version + 1
            for status, body in results
            if status == 409
        )
        after = stack.entitlements.get(sub)
        assert (after.premium, after.version) == (wanted, current.version + 1)
        records = audit_of(stack, "dora")
        assert len(records) == audit_before + 1
        assert records[0]["version"] == current.version + 1
        assert records[0]["actor"] == "carol"


# --- the audit listing ------------------------------------------------------------------


def test_the_audit_is_newest_first_and_pages_with_a_cursor(stack: Stack) -> None:
    status, first, _ = stack.as_admin("GET", "/api/admin/audit", query="limit=2")
    assert status == 200
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    status, second, _ = stack.as_admin(
        "GET", "/api/admin/audit", query=f"limit=2&cursor={first['next_cursor']}"
    )
    assert status == 200
    stamps = [item["event_id"] for item in first["items"] + second["items"]]
    assert stamps == sorted(stamps, reverse=True)
    assert len(set(stamps)) == len(stamps)


# --- the Lambda entry point and parsing -------------------------------------------------


def test_the_module_handler_builds_itself_from_the_environment(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(admin_module.handler, "api", None)

    result = admin_module.handler(
        event(
            "GET", "/api/admin/users", token=stack.accounts["carol"].access_token, query="limit=1"
        )
    )

    assert result["statusCode"] == 200
    assert len(json.loads(result["body"])["items"]) == 1


def test_the_module_handler_without_its_settings_answers_500_without_detail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VIDGATE_USERS_TABLE", raising=False)
    monkeypatch.setattr(admin_module.handler, "api", None)

    result = admin_module.handler(event("GET", "/api/admin/users", token=None))

    assert result["statusCode"] == 500
    assert json.loads(result["body"]) == {"error": "internal", "message": "internal error"}


def test_a_date_means_through_the_end_of_that_day_utc() -> None:
    assert parse_until("2030-05-01") == datetime(2030, 5, 2, tzinfo=UTC)
    assert parse_until("2030-05-01T10:00:00+02:00") == datetime(2030, 5, 1, 8, tzinfo=UTC)
    assert parse_until("2030-05-01T10:00Z") == datetime(2030, 5, 1, 10, tzinfo=UTC)
    assert parse_until("2030-05-01T10:00", naive_is_utc=True) == datetime(
        2030, 5, 1, 10, tzinfo=UTC
    )
    assert parse_until(None) is None
    assert parse_until("  ") is None
    for bad in ("2030-05-01T10:00", "2030-02-30", "soon", "9" * 100):
        with pytest.raises(BadRequestError):
            parse_until(bad)


def test_a_weak_etag_never_matches_and_is_412_even_for_the_current_version(
    stack: Stack,
) -> None:
    sub = stack.accounts["frank"].sub
    current = stack.entitlements.get(sub)
    records_before = audit_of(stack, "frank")

    for if_match in (f'W/"{current.version}"', f'W/"{current.version}", "x{current.version}"'):
        status, body, _ = stack.as_admin(
            "PUT",
            premium_path(stack, "frank"),
            body={"premium": not current.premium, "until": None},
            if_match=if_match,
        )
        assert status == 412, if_match
        assert body["error"] == "precondition_failed"
    assert stack.entitlements.get(sub) == current
    assert audit_of(stack, "frank") == records_before


def test_a_list_of_etags_matches_when_one_of_them_is_the_current_version(stack: Stack) -> None:
    sub = stack.accounts["frank"].sub
    current = stack.entitlements.get(sub)

    status, body, headers = stack.as_admin(
        "PUT",
        premium_path(stack, "frank"),
        body={"premium": not current.premium, "until": None},
        if_match=f'W/"{current.version}", "{current.version + 7}" , "{current.version}"',
    )

    assert status == 200, body
    assert body["version"] == current.version + 1
    assert headers["etag"] == f'"{current.version + 1}"'
    assert audit_of(stack, "frank")[0]["forced"] is False


def test_if_match_star_writes_whatever_the_version_and_the_audit_says_forced(
    stack: Stack,
) -> None:
    sub = stack.accounts["frank"].sub
    current = stack.entitlements.get(sub)

    status, body, _ = stack.as_admin(
        "PUT",
        premium_path(stack, "frank"),
        body={"premium": not current.premium, "until": None},
        if_match="*",
    )

    assert status == 200, body
    latest = audit_of(stack, "frank")[0]
    assert (latest["version"], latest["actor"], latest["forced"]) == (
        current.version + 1,
        "carol",
        True,
    )
