"""Test helper: a user pool, an app client and signed-in accounts in the AWS emulator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PASSWORD = "Correct-Horse-9-battery!"


@dataclass(frozen=True)
class Account:
    username: str
    sub: str
    access_token: str
    id_token: str


def create_pool(cognito: Any, prefix: str) -> tuple[str, str]:
    """A user pool with an ``admin`` group and a no-secret app client: (pool id, client id)."""
    pool_id = cognito.create_user_pool(PoolName=f"{prefix}-pool")["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=f"{prefix}-web",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    cognito.create_group(UserPoolId=pool_id, GroupName="admin")
    return pool_id, client_id


def sign_in(
    cognito: Any,
    pool_id: str,
    client_id: str,
    username: str,
    groups: tuple[str, ...] = (),
    *,
    password: str = PASSWORD,
) -> Account:
    """Create a confirmed user (e-mail ``<username>@example.com``) in ``groups`` and sign in."""
    user = cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[
            {"Name": "email", "Value": f"{username}@example.com"},
            {"Name": "email_verified", "Value": "true"},
        ],
        MessageAction="SUPPRESS",
    )["User"]
    cognito.admin_set_user_password(
        UserPoolId=pool_id, Username=username, Password=password, Permanent=True
    )
    for group in groups:
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName=group)
    tokens = cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )["AuthenticationResult"]
    sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
    return Account(username, sub, tokens["AccessToken"], tokens["IdToken"])
