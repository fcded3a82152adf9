"""Accounts on the emulator: admin rights that end, unique e-mails, no account enumeration.

The web app runs in-process (Flask test client) over a user pool configured
as the local stack's and the template's (:data:`app.local.bootstrap.USER_POOL_SETTINGS`:
case-insensitive usernames, e-mail alias, auto-verified e-mail), real Cognito
calls to the emulator, sessions and users in its DynamoDB. Group membership is
read from Cognito with a TTL cache on a clock the tests move, so "within the
TTL" needs no waiting.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.config import load_settings
from app.dynamo import dynamodb_client
from app.local.bootstrap import USER_POOL_SETTINGS, Bootstrap, ensure_session_key
from app.local.emulator import Emulator
from app.local.ports import free_port
from app.ops.cli import main
from app.services import Services
from app.tables import TABLES, create_tables
from app.user_pool import ADMIN_GROUP, UserPool
from app.users import UserDirectory
from app.web import NEEDS, create_app
from app.web.auth_views import (
    AMBIGUOUS_EMAIL,
    CONFIRM_REFUSED,
    RESET_CODE_SENT,
    RESET_REFUSED,
    SHARED_EMAIL,
)
from app.web.dates import utc_text
from app.web.session_store import COOKIE_NAME
from tests.infra.cfn import load
from tests.integration.test_web_auth_flows import (
    NEW_PASSWORD,
    PASSWORD,
    Stack,
    _env,
    assert_signed_out,
    cookie_value,
    make_user,
    post_form,
    refresh_works,
    sign_in,
    unique,
    update_session,
)

pytestmark = pytest.mark.integration

TTL = 5.0
"""The membership TTL these tests inject (the product's is 30 s)."""


class Clock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def stack(emulator: Emulator, aws_env: dict[str, str], boto_session: boto3.Session) -> Stack:
    cognito = boto_session.client("cognito-idp")
    dynamodb = dynamodb_client(boto_session)
    prefix = f"acct{uuid.uuid4().hex[:10]}"
    pool_id = cognito.create_user_pool(PoolName=prefix, **USER_POOL_SETTINGS)["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=f"{prefix}-web",
        GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        EnableTokenRevocation=True,
        PreventUserExistenceErrors="ENABLED",
    )["UserPoolClient"]["ClientId"]
    cognito.create_group(GroupName=ADMIN_GROUP, UserPoolId=pool_id)
    tables = {logical: f"{prefix}-{logical}" for logical in TABLES}
    create_tables(dynamodb, tables)
    key_id = ensure_session_key(boto_session.client("kms"), f"alias/{prefix}-session-tokens")
    env = _env(emulator, pool_id, client_id, tables, aws_env, key_id)
    settings = load_settings(env, NEEDS)
    services = Services(settings, session=boto_session)
    app = create_app(settings, services=services, local_triggers=True)
    return Stack(app, settings, services, cognito, dynamodb, pool_id, client_id, tables, env)


@pytest.fixture
def clock(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The app's membership checks on a short TTL and a clock the test moves."""
    moved = Clock()
    pool = UserPool(stack.cognito, stack.pool_id, membership_ttl=TTL, clock=moved)
    monkeypatch.setattr(stack.services, "user_pool", pool)
    return moved


def access_token(stack: Stack, username: str, password: str = PASSWORD) -> dict[str, Any]:
    result: dict[str, Any] = stack.cognito.initiate_auth(
        ClientId=stack.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )["AuthenticationResult"]
    return result


def admin_api(client: FlaskClient, token: str) -> TestResponse:
    return client.get("/api/admin/users", headers={"Authorization": f"Bearer {token}"})


def neutral(page: str, *echoed: str) -> str:
    """A page with what differs by design taken out: the CSRF token and the echoed input."""
    page = re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token" value=""', page)
    page = re.sub(r'<meta name="csrf-token" content="[^"]+">', "", page)
    for text in echoed:
        page = page.replace(text, "ECHO")
    return page


# --------------------------------------------------------------------------- admin rights end


def test_an_admin_removed_from_the_group_loses_pages_and_api_within_the_ttl(
    stack: Stack, clock: Clock
) -> None:
    admin = unique("ada")
    make_user(stack, admin, groups=(ADMIN_GROUP,), record=True)
    browser = stack.app.test_client()
    assert sign_in(browser, admin).status_code == 302
    token = access_token(stack, admin)["AccessToken"]
    api = stack.app.test_client()
    assert browser.get("/admin/users").status_code == 200
    assert admin_api(api, token).status_code == 200

    stack.cognito.admin_remove_user_from_group(
        UserPoolId=stack.pool_id, Username=admin, GroupName=ADMIN_GROUP
    )
    clock.now += TTL - 0.01  # the answer cached before the removal may still count
    assert browser.get("/admin/users").status_code == 200
    clock.now += 0.01

    assert browser.get("/admin/users").status_code == 403
    user_page = f"/admin/users/{stack.services.users.find(admin).user_id}"
    assert browser.get(user_page).status_code == 403
    refused = admin_api(api, token)
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "forbidden"
    assert browser.get("/account").status_code == 200, "still signed in, just not an admin"


def test_someone_added_to_the_group_needs_a_token_that_says_so_too(
    stack: Stack, clock: Clock
) -> None:
    viewer = unique("bea")
    make_user(stack, viewer, record=True)
    browser = stack.app.test_client()
    sign_in(browser, viewer)
    token = access_token(stack, viewer)["AccessToken"]
    stack.cognito.admin_add_user_to_group(
        UserPoolId=stack.pool_id, Username=viewer, GroupName=ADMIN_GROUP
    )
    clock.now += TTL
    assert browser.get("/admin/users").status_code == 403
    assert admin_api(stack.app.test_client(), token).status_code == 403

    fresh = stack.app.test_client()
    sign_in(fresh, viewer)
    assert fresh.get("/admin/users").status_code == 200
    new_token = access_token(stack, viewer)["AccessToken"]
    assert admin_api(stack.app.test_client(), new_token).status_code == 200


def test_cognito_unreachable_makes_the_admin_check_a_503_never_admin(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, boto_session: boto3.Session
) -> None:
    admin, viewer = unique("cy"), unique("di")
    make_user(stack, admin, groups=(ADMIN_GROUP,), record=True)
    make_user(stack, viewer, record=True)
    admin_browser, viewer_browser = stack.app.test_client(), stack.app.test_client()
    sign_in(admin_browser, admin)
    sign_in(viewer_browser, viewer)
    token = access_token(stack, admin)["AccessToken"]
    dead = boto_session.client("cognito-idp", endpoint_url=f"http://127.0.0.1:{free_port()}")
    monkeypatch.setattr(stack.services, "user_pool", UserPool(dead, stack.pool_id))

    page = admin_browser.get("/admin/users")
    assert page.status_code == 503
    assert "temporarily unavailable" in page.text
    answer = admin_api(stack.app.test_client(), token)
    assert (answer.status_code, answer.get_json()["error"]) == (503, "unavailable")
    assert viewer_browser.get("/admin/users").status_code == 403, "no Cognito call needed"


# --------------------------------------------------------------------------- end dates


def grant_form(page: str) -> tuple[dict[str, str], str]:
    """The grant form's fields as the page fills them, and the type of its end-date input."""
    form = re.search(r'<form[^>]*id="grant-form".*?</form>', page, re.S)
    assert form, "no grant form"
    fields = {
        name: unescape(value)
        for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form[0])
    }
    kind = re.search(r'<input id="until" name="until" type="([a-z]+)"', form[0])
    assert kind, "no end-date input"
    return fields, kind[1]


def test_the_end_date_an_admin_enters_is_the_one_shown_and_saving_again_changes_nothing(
    stack: Stack, clock: Clock
) -> None:
    admin, member = unique("ora"), unique("pam")
    make_user(stack, admin, groups=(ADMIN_GROUP,), record=True)
    make_user(stack, member, record=True)
    user_id = stack.services.users.find(member).user_id
    page_url = f"/admin/users/{user_id}"
    browser = stack.app.test_client()
    sign_in(browser, admin)
    day = (datetime.now(UTC) + timedelta(days=90)).date()
    last_day = day.isoformat()
    day_words = f"{day.day} {day:%b %Y}"  # the admin pages write a day as "28 Nov 2026"

    fields, _ = grant_form(browser.get(page_url).text)
    fields["until"] = last_day
    saved = browser.post(f"{page_url}/grant", data=fields, follow_redirects=True)
    assert f"{member} is now premium through {day_words} UTC." in saved.text
    assert f"Premium through {day_words} UTC" in saved.text
    refilled, kind = grant_form(saved.text)
    assert (refilled["until"], kind) == (last_day, "date")

    for _ in range(3):  # "Save end date" without touching the form
        saved = browser.post(f"{page_url}/grant", data=refilled, follow_redirects=True)
        assert "Nothing changed" in saved.text
        assert grant_form(saved.text)[0]["until"] == last_day

    record = stack.services.users.get(user_id)
    assert record.version == 1
    assert record.premium_until == datetime.fromisoformat(last_day).replace(tzinfo=UTC) + timedelta(
        days=1
    )
    audit, _ = stack.services.entitlements.list_audit(user_id, 10, None)
    assert len(audit) == 1


def test_an_end_with_a_time_of_day_is_shown_as_that_moment_and_kept_when_saved_again(
    stack: Stack, clock: Clock
) -> None:
    admin, member = unique("quy"), unique("rob")
    make_user(stack, admin, groups=(ADMIN_GROUP,), record=True)
    make_user(stack, member, record=True)
    user_id = stack.services.users.find(member).user_id
    evening = (datetime.now(UTC) + timedelta(days=9)).replace(
        hour=18, minute=30, second=0, microsecond=0
    )
    stack.services.entitlements.set_premium(user_id, True, evening, actor="api")
    browser = stack.app.test_client()
    sign_in(browser, admin)

    page = browser.get(f"/admin/users/{user_id}").text
    fields, kind = grant_form(page)
    shown = evening.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (fields["until"], kind) == (shown, "text")
    assert f"Premium until {utc_text(evening)}" in page  # the admin pages' one date style
    again = browser.post(f"/admin/users/{user_id}/grant", data=fields, follow_redirects=True)
    assert "Nothing changed" in again.text
    assert stack.services.users.get(user_id).premium_until == evening


# --------------------------------------------------------------------------- password reset


def test_a_password_reset_signs_the_user_out_everywhere(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, boto_session: boto3.Session
) -> None:
    username = unique("eve")
    email = make_user(stack, username, record=True)
    # The reset is recorded two seconds in the past, so the sign-in right after it is
    # after it whatever the wall clock's second; the old session is older still.
    directory = UserDirectory(
        stack.dynamodb,
        stack.tables["users"],
        clock=lambda: datetime.now(UTC) - timedelta(seconds=2),
    )
    monkeypatch.setattr(stack.services, "users", directory)
    old_browser, old_elsewhere = stack.app.test_client(), stack.app.test_client()
    for browser in (old_browser, old_elsewhere):
        sign_in(browser, username)
        sid = cookie_value(browser)
        assert sid is not None
        update_session(stack, sid, created_at=int(datetime.now(UTC).timestamp()) - 600)
    other_device = access_token(stack, username)["RefreshToken"]
    assert refresh_works(stack, other_device)
    # Another process of the web app, whose directory caches for 30 s on a clock we move.
    elsewhere_clock = Clock()
    elsewhere_services = Services(stack.settings, session=boto_session)
    elsewhere_services.users = UserDirectory(
        stack.dynamodb, stack.tables["users"], monotonic=elsewhere_clock
    )
    elsewhere = create_app(stack.settings, services=elsewhere_services, local_triggers=True)
    elsewhere_browser = elsewhere.test_client()
    elsewhere_browser.set_cookie(COOKIE_NAME, str(cookie_value(old_elsewhere)))
    assert elsewhere_browser.get("/account").status_code == 200

    resetter = stack.app.test_client()
    post_form(resetter, "/auth/forgot", "/auth/forgot", {"identifier": email})
    done = post_form(
        resetter,
        "/auth/reset",
        "/auth/reset",
        {
            "identifier": email,
            "code": "123456",
            "password": NEW_PASSWORD,
            "password_repeat": NEW_PASSWORD,
        },
    )
    assert done.status_code == 302

    assert not refresh_works(stack, other_device), "Cognito signed the user out everywhere"
    assert_signed_out(old_browser)
    elsewhere_clock.now += 29.9
    assert elsewhere_browser.get("/account").status_code == 200, "cached, < 30 s old"
    elsewhere_clock.now += 0.1
    assert elsewhere_browser.get("/account").status_code == 302
    assert_signed_out(elsewhere_browser)
    fresh = stack.app.test_client()
    assert sign_in(fresh, username, NEW_PASSWORD).status_code == 302
    assert fresh.get("/account").status_code == 200, "a session opened after the reset lives"


# --------------------------------------------------------------------------- unique e-mails


def test_the_test_pool_is_the_local_stacks_and_the_templates(
    stack: Stack, boto_session: boto3.Session, tmp_path: Any
) -> None:
    template = load()["Resources"]["UserPool"]["Properties"]
    for name, value in USER_POOL_SETTINGS.items():
        assert template[name] == value, name
    bootstrap = Bootstrap(
        boto_session,
        endpoint=stack.env["AWS_ENDPOINT_URL"],
        media_dir=tmp_path,
        prefix=f"pool{uuid.uuid4().hex[:8]}",
    )
    pool = stack.cognito.describe_user_pool(UserPoolId=bootstrap._user_pool())["UserPool"]
    assert pool["UsernameConfiguration"] == {"CaseSensitive": False}
    assert pool["AliasAttributes"] == ["email"]
    assert pool["AutoVerifiedAttributes"] == ["email"]
    assert pool["Policies"] == template["Policies"]
    assert pool["AccountRecoverySetting"] == template["AccountRecoverySetting"]


def test_sign_up_refuses_an_email_already_in_use_in_any_case(stack: Stack) -> None:
    taken = unique("fay")
    email = make_user(stack, taken, record=True)
    newcomer = unique("gil")
    client = stack.app.test_client()

    response = post_form(
        client,
        "/auth/sign-up",
        "/auth/sign-up",
        {
            "username": newcomer,
            "email": email.upper(),
            "password": PASSWORD,
            "password_repeat": PASSWORD,
        },
    )

    assert response.status_code == 409
    assert "That e-mail address already belongs to another account." in response.text
    with pytest.raises(stack.cognito.exceptions.UserNotFoundException):
        stack.cognito.admin_get_user(UserPoolId=stack.pool_id, Username=newcomer)


def _legacy_record(stack: Stack, username: str, email: str) -> None:
    """A directory record as written before e-mail claims (a duplicate e-mail slipped in)."""
    found = stack.cognito.admin_get_user(UserPoolId=stack.pool_id, Username=username)
    sub = next(a["Value"] for a in found["UserAttributes"] if a["Name"] == "sub")
    stack.dynamodb.put_item(
        TableName=stack.tables["users"],
        Item={
            "user_id": {"S": sub},
            "entity": {"S": "user"},
            "username": {"S": username},
            "email": {"S": email},
            "email_lower": {"S": email.lower()},
            "premium": {"BOOL": False},
            "version": {"N": "0"},
        },
    )


def test_an_email_two_records_share_is_refused_by_sign_in_forgot_and_reset(stack: Stack) -> None:
    first, second = unique("hana"), unique("hank")
    shared = f"{unique('shared')}@example.com"
    for username in (first, second):
        make_user(stack, username)
        _legacy_record(stack, username, shared)
    client = stack.app.test_client()

    signing_in = sign_in(client, shared.upper())
    forgot = post_form(client, "/auth/forgot", "/auth/forgot", {"identifier": shared})
    reset = post_form(
        client,
        "/auth/reset",
        "/auth/reset",
        {"identifier": shared, "code": "1", "password": PASSWORD, "password_repeat": PASSWORD},
    )

    for page in (signing_in, forgot, reset):
        assert page.status_code == 409
        assert AMBIGUOUS_EMAIL in page.text
    assert_signed_out(client)
    assert sign_in(client, first).status_code == 302, "the username still works"


def test_an_account_whose_email_another_record_has_cannot_sign_in(stack: Stack) -> None:
    owner, other = unique("ida"), unique("ike")
    email = make_user(stack, owner, record=True)
    stack.cognito.admin_create_user(
        UserPoolId=stack.pool_id,
        Username=other,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": email.upper()}],
    )
    stack.cognito.admin_set_user_password(
        UserPoolId=stack.pool_id, Username=other, Password=PASSWORD, Permanent=True
    )
    client = stack.app.test_client()

    refused = sign_in(client, other)

    assert refused.status_code == 409
    assert SHARED_EMAIL in refused.text
    assert_signed_out(client)
    assert stack.services.users.find(email).username == owner


# --------------------------------------------------------------------------- same answers


def test_forgot_answers_unknown_and_known_accounts_the_same(stack: Stack) -> None:
    known = unique("jan")
    email = make_user(stack, known, record=True)
    answers = {}
    for identifier in (known, email, unique("nobody"), f"{unique('nobody')}@example.com"):
        client = stack.app.test_client()
        response = post_form(client, "/auth/forgot", "/auth/forgot", {"identifier": identifier})
        page = client.get(response.headers["Location"])
        answers[identifier] = (
            response.status_code,
            unquote(response.headers["Location"]).replace(identifier, "ECHO"),
            neutral(page.text, identifier),
        )

    assert len(set(answers.values())) == 1, answers.keys()
    assert RESET_CODE_SENT in next(iter(answers.values()))[2]


def test_reset_with_a_wrong_code_answers_unknown_and_known_accounts_the_same(
    stack: Stack,
) -> None:
    known = unique("kai")
    make_user(stack, known, record=True)
    stack.cognito.forgot_password(ClientId=stack.client_id, Username=known)
    answers = {}
    for identifier in (known, unique("nobody")):
        response = post_form(
            stack.app.test_client(),
            "/auth/reset",
            "/auth/reset",
            {
                "identifier": identifier,
                # In the emulator's own format but not the code it sent: a stale code.
                "code": "moto-confirmation-code:000000",
                "password": NEW_PASSWORD,
                "password_repeat": NEW_PASSWORD,
            },
        )
        answers[identifier] = (response.status_code, neutral(response.text, identifier))

    (status, page), *_ = answers.values()
    assert len(set(answers.values())) == 1
    assert status == 400 and RESET_REFUSED in page
    assert sign_in(stack.app.test_client(), known).status_code == 302, "password unchanged"


def test_confirm_for_an_unknown_username_gives_the_one_neutral_refusal(stack: Stack) -> None:
    response = post_form(
        stack.app.test_client(),
        "/auth/confirm",
        "/auth/confirm",
        {"username": unique("nobody"), "code": "123456"},
    )
    assert response.status_code == 400
    assert CONFIRM_REFUSED in response.text


# --------------------------------------------------------------------------- the operator CLI


def cli(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """``vidgate ARGS --env-file`` (this stack's settings) in this process."""
    env_file = tmp_path / "stack.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in stack.env.items()))
    capsys.readouterr()
    code = main([*args, "--env-file", str(env_file)])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_refuses_an_email_two_records_share_and_names_both(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = unique("lia"), unique("lou")
    shared = f"{unique('twice')}@example.com"
    for username in (first, second):
        make_user(stack, username)
        _legacy_record(stack, username, shared)

    for action in (["admin", "show", shared.upper()], ["admin", "grant", shared]):
        code, out, err = cli(stack, tmp_path, capsys, *action)
        assert (code, out) == (1, "")
        assert "matches more than one user" in err and first in err and second in err
    assert not stack.services.users.find(first).premium
    assert not stack.services.users.find(second).premium
    assert cli(stack, tmp_path, capsys, "admin", "show", first)[0] == 0


def test_the_cli_shows_the_end_date_as_given_and_an_unchanged_grant_changes_nothing(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    username = unique("max")
    make_user(stack, username, record=True)
    last_day = (datetime.now(UTC) + timedelta(days=60)).date().isoformat()

    granted = cli(stack, tmp_path, capsys, "admin", "grant", username, "--until", last_day)
    again = cli(stack, tmp_path, capsys, "admin", "grant", username, "--until", last_day)
    shown = cli(stack, tmp_path, capsys, "admin", "show", username)

    assert granted[0] == 0
    assert granted[1].startswith(f"{username} is now premium through {last_day} UTC (version 1")
    assert again[:2] == (
        0,
        f"{username} is already premium through {last_day} UTC; nothing changed\n",
    )
    assert f"  premium through {last_day} UTC\n" in shown[1]
    record = stack.services.users.find(username)
    assert record.version == 1
    audit, _ = stack.services.entitlements.list_audit(record.user_id, 10, None)
    assert len(audit) == 1


def test_reset_password_from_the_cli_signs_the_user_out_everywhere(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    username = unique("ned")
    make_user(stack, username, record=True)
    browser = stack.app.test_client()
    sign_in(browser, username)
    sid = cookie_value(browser)
    assert sid is not None
    update_session(stack, sid, created_at=int(datetime.now(UTC).timestamp()) - 600)
    other_device = access_token(stack, username)["RefreshToken"]

    code, out, err = cli(stack, tmp_path, capsys, "admin", "reset-password", username)

    assert (code, err) == (0, "")
    assert out.startswith(f"{username} must choose a new password")
    assert not refresh_works(stack, other_device)
    assert_signed_out(browser)
    status = stack.cognito.admin_get_user(UserPoolId=stack.pool_id, Username=username)
    assert status["UserStatus"] == "RESET_REQUIRED"  # in AWS sign-in now asks for a new one
