"""Confirm, resend, forgot and reset answer an unknown account exactly as a known one.

The web app runs over a fake of the ``cognito-idp`` calls those forms make,
answering as Cognito does (documented behaviour) both with
``PreventUserExistenceErrors`` ENABLED (what the template sets) and LEGACY
(``UserNotFoundException``): whatever the fake says about the account, the
person sees the same status and page, and the app makes the same calls.
Sessions live in the recording DynamoDB fake; no network.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from flask import Flask
from flask.testing import FlaskClient

from app.config import load_settings
from app.services import Services
from app.web import NEEDS, create_app
from app.web.auth_views import CODE_SENT, CONFIRM_REFUSED, RESET_CODE_SENT, RESET_REFUSED
from tests.unit.session_fakes import FakeDynamoDB

ENV = {
    "AWS_REGION": "eu-west-1",
    "VIDGATE_USER_POOL_ID": "eu-west-1_AbC123",
    "VIDGATE_CLIENT_ID": "3abc",
    "VIDGATE_JWKS_URL": "http://127.0.0.1:9/jwks.json",
    "VIDGATE_USERS_TABLE": "users",
    "VIDGATE_VIDEOS_TABLE": "videos",
    "VIDGATE_AUDIT_TABLE": "audit",
    "VIDGATE_SESSIONS_TABLE": "sessions",
    "VIDGATE_SESSION_KEY_ID": "alias/vidgate-test-session-tokens",
    "VIDGATE_BUCKET": "bucket",
    "VIDGATE_CDN_URL": "https://d111111abcdef8.cloudfront.net/",
    "VIDGATE_SIGNING_KEY_SECRET": "vidgate/key",
    "VIDGATE_KEY_PAIR_ID": "K2JCJMDEHXQW5F",
    "VIDGATE_SECRET_KEY": "x" * 40,
    "VIDGATE_BASE_URL": "http://localhost",
}
RIGHT_CODE = "246810"


def refusal(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} (fake)"}}, operation)


@dataclass
class Account:
    confirmed: bool
    verified_email: bool = True
    code: str | None = None


@dataclass
class FakeCognito:
    """Cognito's answers to the four calls, for the accounts it has.

    ``prevent``: PreventUserExistenceErrors ENABLED (unknown users get the
    answers Cognito documents for them) or LEGACY (UserNotFoundException).
    """

    prevent: bool
    accounts: dict[str, Account] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def _account(self, operation: str, username: str, if_unknown: ClientError | None) -> Account:
        account = self.accounts.get(username)
        if account is not None:
            return account
        if not self.prevent:
            raise refusal("UserNotFoundException", operation)
        if if_unknown is not None:
            raise if_unknown
        return Account(confirmed=False)  # answered as if it existed

    def confirm_sign_up(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("ConfirmSignUp")
        mismatch = refusal("CodeMismatchException", "ConfirmSignUp")
        account = self._account("ConfirmSignUp", kwargs["Username"], mismatch)
        if account.confirmed:
            raise refusal("NotAuthorizedException", "ConfirmSignUp")
        if account.code is None:
            raise refusal("ExpiredCodeException", "ConfirmSignUp")
        if kwargs["ConfirmationCode"] != account.code:
            raise mismatch
        account.confirmed = True
        return {}

    def resend_confirmation_code(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("ResendConfirmationCode")
        account = self._account("ResendConfirmationCode", kwargs["Username"], None)
        if account.confirmed:
            raise refusal("InvalidParameterException", "ResendConfirmationCode")
        return {"CodeDeliveryDetails": {"Destination": "s***@e***", "DeliveryMedium": "EMAIL"}}

    def forgot_password(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("ForgotPassword")
        account = self._account("ForgotPassword", kwargs["Username"], None)
        if not account.verified_email:
            raise refusal("InvalidParameterException", "ForgotPassword")
        return {"CodeDeliveryDetails": {"Destination": "s***@e***", "DeliveryMedium": "EMAIL"}}

    def confirm_forgot_password(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("ConfirmForgotPassword")
        mismatch = refusal("CodeMismatchException", "ConfirmForgotPassword")
        account = self._account("ConfirmForgotPassword", kwargs["Username"], mismatch)
        if len(kwargs["Password"]) < 12:
            raise refusal("InvalidPasswordException", "ConfirmForgotPassword")
        if account.code is None:
            raise refusal("ExpiredCodeException", "ConfirmForgotPassword")
        if kwargs["ConfirmationCode"] != account.code:
            raise mismatch
        return {}


class NoSecrets:
    def get_secret_value(self, **_: Any) -> dict[str, Any]:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")


def make_app(cognito: FakeCognito) -> Flask:
    settings = load_settings(ENV, NEEDS)
    services = Services(settings)
    services.dynamodb = FakeDynamoDB()
    services.cognito_idp = cognito
    services.secretsmanager = NoSecrets()
    return create_app(settings, services=services, local_triggers=False)


@pytest.fixture(params=[True, False], ids=["prevent-user-existence-errors", "legacy"])
def cognito(request: pytest.FixtureRequest) -> Iterator[FakeCognito]:
    yield FakeCognito(
        prevent=request.param,
        accounts={
            "zq-pending": Account(confirmed=False, code=RIGHT_CODE),
            "zq-no-code": Account(confirmed=False),
            "zq-confirmed": Account(confirmed=True, code=RIGHT_CODE),
            "zq-unverified": Account(confirmed=True, verified_email=False),
        },
    )


# Names that occur nowhere else on a page, so taking the echoed one out leaves the rest.
VARIANTS = ["zq-pending", "zq-no-code", "zq-confirmed", "zq-unverified", "zq-ghost", "zq-ghost2"]
GHOST = "zq-ghost"


def neutral(page: str, echoed: str) -> str:
    page = re.sub(r'name="csrf_token" value="[^"]+"', "", page)
    page = re.sub(r'<meta name="csrf-token" content="[^"]+">', "", page)
    return page.replace(echoed, "ECHO")


def post(client: FlaskClient, page: str, action: str, data: dict[str, str]) -> Any:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).text)
    assert found
    return client.post(action, data={"csrf_token": found.group(1), **data})


def answer(
    app: Flask, page: str, action: str, data: dict[str, str], echoed: str
) -> tuple[Any, ...]:
    """(status, where it sends the person, the page they see): echoed input taken out."""
    client = app.test_client()
    response = post(client, page, action, data)
    location = response.headers.get("Location", "")
    shown = client.get(location).text if location else response.text
    return response.status_code, location.replace(echoed, "ECHO"), neutral(shown, echoed)


def test_confirm_answers_every_account_state_the_same(cognito: FakeCognito) -> None:
    app = make_app(cognito)
    answers = {
        name: answer(
            app, "/auth/confirm", "/auth/confirm", {"username": name, "code": "111111"}, name
        )
        for name in VARIANTS
    }

    assert len(set(answers.values())) == 1, {k: v[:2] for k, v in answers.items()}
    status, _, page = answers[GHOST]
    assert status == 400 and CONFIRM_REFUSED in page
    assert cognito.calls == ["ConfirmSignUp"] * len(VARIANTS), "the same work for everyone"


def test_a_right_code_still_confirms(cognito: FakeCognito) -> None:
    status, location, _ = answer(
        make_app(cognito),
        "/auth/confirm",
        "/auth/confirm",
        {"username": "zq-pending", "code": RIGHT_CODE},
        "zq-pending",
    )
    assert (status, location) == (302, "/auth/sign-in?username=ECHO")
    assert cognito.accounts["zq-pending"].confirmed


def test_resend_answers_every_account_state_the_same(cognito: FakeCognito) -> None:
    app = make_app(cognito)
    answers = {
        name: answer(app, "/auth/confirm", "/auth/confirm/resend", {"username": name}, name)
        for name in VARIANTS
    }

    assert len(set(answers.values())) == 1
    assert CODE_SENT in answers[GHOST][2]
    assert cognito.calls == ["ResendConfirmationCode"] * len(VARIANTS)


def test_forgot_answers_every_account_state_the_same(cognito: FakeCognito) -> None:
    app = make_app(cognito)
    answers = {
        name: answer(app, "/auth/forgot", "/auth/forgot", {"identifier": name}, name)
        for name in VARIANTS
    }

    assert len(set(answers.values())) == 1
    assert answers[GHOST][:2] == (302, "/auth/reset?identifier=ECHO")
    assert RESET_CODE_SENT in answers[GHOST][2]
    assert cognito.calls == ["ForgotPassword"] * len(VARIANTS)


@pytest.mark.parametrize("password", ["Long-Enough-Pass-1!", "short"], ids=["strong", "weak"])
def test_reset_answers_every_account_state_the_same(cognito: FakeCognito, password: str) -> None:
    app = make_app(cognito)
    answers = {
        name: answer(
            app,
            "/auth/reset",
            "/auth/reset",
            {
                "identifier": name,
                "code": "111111",
                "password": password,
                "password_repeat": password,
            },
            name,
        )
        for name in VARIANTS
    }

    assert len(set(answers.values())) == 1
    status, _, page = answers[GHOST]
    assert status == 400 and RESET_REFUSED in page
    assert cognito.calls == ["ConfirmForgotPassword"] * len(VARIANTS)
