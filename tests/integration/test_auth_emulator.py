"""The verifier against real tokens from the AWS emulator's Cognito, fetched JWKS and all.

The emulator signs with one fixed RS256 key (kid ``dummy``) and serves its
JWKS at ``<endpoint>/<pool id>/.well-known/jwks.json``; the verifier uses the
default urllib fetcher against it, exactly as it would against Cognito.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from app.auth import CognitoVerifier, InvalidClientIdError, InvalidTokenUseError, TokenUse
from app.auth.jwks import JwksCache
from app.local.emulator import Emulator

pytestmark = pytest.mark.integration

PASSWORD = "Corr3ct-Horse-Battery!"  # a throwaway emulator user


@dataclass(frozen=True)
class SignedIn:
    pool_id: str
    client_id: str
    issuer: str
    jwks_url: str
    username: str
    user_sub: str
    access_token: str
    id_token: str


@pytest.fixture(scope="module")
def signed_in(emulator: Emulator, boto_session: boto3.Session) -> SignedIn:
    cognito: Any = boto_session.client("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName=f"vidgate-auth-{uuid.uuid4().hex[:8]}")["UserPool"][
        "Id"
    ]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="vidgate-web",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        ReadAttributes=["email", "email_verified"],
    )["UserPoolClient"]["ClientId"]
    username = "alice"
    user = cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[
            {"Name": "email", "Value": "alice@example.com"},
            {"Name": "email_verified", "Value": "true"},
        ],
        MessageAction="SUPPRESS",
    )["User"]
    cognito.admin_set_user_password(
        UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True
    )
    cognito.create_group(UserPoolId=pool_id, GroupName="admin")
    cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName="admin")
    result = cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]
    sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
    return SignedIn(
        pool_id=pool_id,
        client_id=client_id,
        issuer=f"https://cognito-idp.us-east-1.amazonaws.com/{pool_id}",
        jwks_url=f"{emulator.endpoint}/{pool_id}/.well-known/jwks.json",
        username=username,
        user_sub=sub,
        access_token=result["AccessToken"],
        id_token=result["IdToken"],
    )


def verifier(
    signed_in: SignedIn,
    token_use: TokenUse,
    *,
    client_id: str | None = None,
    jwks: JwksCache | None = None,
) -> CognitoVerifier:
    return CognitoVerifier(
        issuer=signed_in.issuer,
        client_id=client_id or signed_in.client_id,
        token_use=token_use,
        jwks=jwks or JwksCache(signed_in.jwks_url),
    )


def test_a_real_access_token_verifies_through_the_emulators_jwks(signed_in: SignedIn) -> None:
    access = verifier(signed_in, "access")
    principal = access.verify(signed_in.access_token)
    assert principal.user_id == signed_in.user_sub
    assert principal.username == signed_in.username
    assert principal.email is None
    assert principal.groups == ("admin",)
    assert principal.is_admin
    assert principal.token_use == "access"
    assert access.verify(signed_in.access_token) is principal  # second time from the claims cache


def test_a_real_id_token_verifies_through_the_emulators_jwks(signed_in: SignedIn) -> None:
    principal = verifier(signed_in, "id").verify(signed_in.id_token)
    assert principal.user_id == signed_in.user_sub
    assert principal.username == signed_in.username
    assert principal.email == "alice@example.com"
    assert principal.groups == ("admin",)
    assert principal.token_use == "id"


def test_an_access_token_is_refused_by_an_id_verifier(signed_in: SignedIn) -> None:
    with pytest.raises(InvalidTokenUseError):
        verifier(signed_in, "id").verify(signed_in.access_token)


def test_an_id_token_is_refused_by_an_access_verifier(signed_in: SignedIn) -> None:
    with pytest.raises(InvalidTokenUseError):
        verifier(signed_in, "access").verify(signed_in.id_token)


def test_a_token_for_another_app_client_is_refused(signed_in: SignedIn) -> None:
    with pytest.raises(InvalidClientIdError):
        verifier(signed_in, "access", client_id="some-other-client").verify(signed_in.access_token)


def test_the_emulator_jwks_is_fetched_once_for_both_token_kinds(signed_in: SignedIn) -> None:
    jwks = JwksCache(signed_in.jwks_url)
    verifier(signed_in, "access", jwks=jwks).verify(signed_in.access_token)
    verifier(signed_in, "id", jwks=jwks).verify(signed_in.id_token)
    assert jwks.fetch_count == 1
