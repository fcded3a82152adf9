"""The web app's two doors into Cognito, with every failure turned into a typed error.

:class:`CognitoClient` is a thin wrapper over the ``cognito-idp`` API calls
the password flows use (``InitiateAuth``, ``RespondToAuthChallenge``,
``SignUp``, ``ConfirmSignUp``, ``ForgotPassword``, ``RevokeToken``...);
:class:`HostedUi` speaks OAuth 2.0 to the Cognito hosted UI (authorization
code with PKCE S256, state and nonce) through Authlib. Both raise one
:class:`CognitoError` subclass per reason, each carrying a ``friendly``
sentence a person can act on; anything that means "Cognito cannot answer
now" (throttling aside) is a :class:`CognitoUnavailableError` (503). Nothing
here knows about Flask.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc6749.errors import MismatchingStateException
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from botocore.exceptions import BotoCoreError, ClientError

from app.errors import DependencyUnavailableError, VidgateError

log = logging.getLogger("vidgate.web.cognito")

HOSTED_UI_SCOPE = "openid email profile"
HTTP_TIMEOUT_SECONDS = 10.0


# --------------------------------------------------------------------------- errors


class CognitoError(VidgateError):
    """Base of Cognito's refusals: each subclass names one reason and how to fix it.

    ``friendly`` is safe to show; the exception message (Cognito's own) goes to the log.
    """

    status = 400
    code = "sign_in_error"
    friendly = "Something went wrong. Please try again."

    def __init__(self, message: str = "", *, friendly: str | None = None) -> None:
        super().__init__(message or self.friendly)
        if friendly is not None:
            self.friendly = friendly


class InvalidCredentialsError(CognitoError):
    """Wrong password, or no such user (the same answer, so accounts cannot be probed)."""

    status = 401
    code = "invalid_credentials"
    friendly = "The username, e-mail or password is not right."


class UnknownUserError(InvalidCredentialsError):
    """Cognito said ``UserNotFoundException``; shown exactly like a wrong password."""


class UserNotConfirmedError(CognitoError):
    status = 403
    code = "user_not_confirmed"
    friendly = "This account is not confirmed yet. Enter the code we e-mailed you."


class PasswordResetRequiredError(CognitoError):
    status = 403
    code = "password_reset_required"
    friendly = "You need to choose a new password. We can e-mail you a code to do that."


class PasswordPolicyError(CognitoError):
    code = "password_policy"
    friendly = (
        "That password is too weak. Use at least 12 characters with upper- and "
        "lower-case letters, a number and a symbol."
    )


class WrongPasswordError(CognitoError):
    """A password change named a current password that is not right."""

    code = "wrong_password"
    friendly = "Your current password is not right. Nothing was changed."


class CodeMismatchError(CognitoError):
    code = "code_mismatch"
    friendly = "That code is not right. Check the e-mail we sent and try again."


class ExpiredCodeError(CognitoError):
    code = "expired_code"
    friendly = "That code has expired or was already used. Ask for a new one."


class UsernameExistsError(CognitoError):
    status = 409
    code = "user_exists"
    friendly = "An account with that username or e-mail already exists. Try signing in."


class AlreadyConfirmedError(CognitoError):
    status = 409
    code = "already_confirmed"
    friendly = "This account is already confirmed. You can sign in."


class InvalidInputError(CognitoError):
    code = "invalid_input"
    friendly = "Please check the details you entered and try again."


class TooManyRequestsError(CognitoError):
    status = 429
    code = "throttled"
    friendly = "Too many attempts. Please wait a few minutes and try again."


class ChallengeExpiredError(CognitoError):
    """The sign-in challenge session is unknown or expired (Cognito keeps it 3 minutes)."""

    status = 401
    code = "challenge_expired"
    friendly = "That sign-in took too long. Please sign in again."


class UnsupportedChallengeError(CognitoError):
    status = 403
    code = "unsupported_challenge"
    friendly = "This account needs a sign-in step this site does not support yet."


class TokenRefreshRejectedError(CognitoError):
    """The refresh token was revoked, expired or is unknown: the session is over."""

    status = 401
    code = "session_expired"
    friendly = "Your session has ended. Please sign in again."


class StateMismatchError(CognitoError):
    """The hosted UI came back with a ``state`` this browser did not send."""

    code = "state_mismatch"
    friendly = "That sign-in link is not valid for this browser. Please sign in again."


class NonceMismatchError(CognitoError):
    """The id token's ``nonce`` is not the one this sign-in sent."""

    status = 401
    code = "nonce_mismatch"
    friendly = "The sign-in could not be verified. Please sign in again."


class UnverifiableTokensError(CognitoError):
    """Tokens from a sign-in did not pass our own verification: nobody is signed in."""

    status = 401
    code = "unverifiable_tokens"
    friendly = "The sign-in could not be verified. Please sign in again."


class HostedUiRefusedError(CognitoError):
    """The hosted UI or its token endpoint answered with an OAuth error."""

    status = 401
    code = "sign_in_refused"
    friendly = "The sign-in did not complete. Please try again."


class CognitoUnavailableError(DependencyUnavailableError):
    """Cognito could not be reached or could not answer: 503, nobody is signed in."""

    friendly = "Sign-in is unavailable right now. Please try again in a few minutes."


_BY_CODE: Mapping[str, type[CognitoError]] = {
    "NotAuthorizedException": InvalidCredentialsError,
    "UserNotFoundException": UnknownUserError,
    "UserNotConfirmedException": UserNotConfirmedError,
    "PasswordResetRequiredException": PasswordResetRequiredError,
    "InvalidPasswordException": PasswordPolicyError,
    "CodeMismatchException": CodeMismatchError,
    "ExpiredCodeException": ExpiredCodeError,
    "UsernameExistsException": UsernameExistsError,
    "AliasExistsException": UsernameExistsError,
    "InvalidParameterException": InvalidInputError,
    "TooManyRequestsException": TooManyRequestsError,
    "TooManyFailedAttemptsException": TooManyRequestsError,
    "LimitExceededException": TooManyRequestsError,
}
_UNAVAILABLE_CODES = frozenset(
    {
        "InternalErrorException",
        "ServiceUnavailable",
        "ResourceNotFoundException",  # wrong pool/client id: misconfiguration, not the user
        "CodeDeliveryFailureException",
        "InvalidLambdaResponseException",
        "UnexpectedLambdaException",
        "UserLambdaValidationException",
        "InvalidSmsRoleAccessPolicyException",
        "InvalidEmailRoleAccessPolicyException",
        "UnauthorizedException",
        "ForbiddenException",
    }
)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _is_unimplemented(exc: ClientError) -> bool:
    """The endpoint does not implement the operation at all.

    Cognito answers every failure of an operation it has with a modelled error
    code (``InternalErrorException``...). The local emulator (moto) has no
    ``RevokeToken`` and no ``ResendConfirmationCode``: its server answers an
    unmodelled HTTP 500 with an HTML page, which botocore reports with the bare
    status as the error code.
    """
    return _status(exc) in (500, 501) and _code(exc) == str(_status(exc))


def translate(exc: Exception, operation: str, **overrides: type[CognitoError]) -> Exception:
    """The typed error for a failed ``cognito-idp`` call (``overrides``: per-operation codes)."""
    if isinstance(exc, BotoCoreError):
        return CognitoUnavailableError(f"Cognito {operation} failed: {type(exc).__name__}")
    if not isinstance(exc, ClientError):
        return exc
    code = _code(exc)
    message = str(exc.response.get("Error", {}).get("Message", ""))[:300]
    log.info(json.dumps({"event": "cognito_refusal", "operation": operation, "code": code}))
    if code in overrides:
        return overrides[code](f"{operation}: {code}: {message}")
    if code in _BY_CODE:
        return _BY_CODE[code](f"{operation}: {code}: {message}")
    if code in _UNAVAILABLE_CODES or _status(exc) >= 500:
        return CognitoUnavailableError(f"Cognito {operation} failed: {code or _status(exc)}")
    log.warning("unexpected Cognito error on %s: %s %s", operation, code, message)
    return CognitoError(f"{operation}: {code}: {message}")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Tokens:
    """What a successful authentication returns. Never logged, never sent to a page."""

    access_token: str
    id_token: str
    refresh_token: str | None
    expires_in: int

    def __repr__(self) -> str:
        return (
            f"Tokens(expires_in={self.expires_in}, refresh={'yes' if self.refresh_token else 'no'})"
        )


@dataclass(frozen=True)
class Challenge:
    """Cognito wants one more step before it issues tokens."""

    name: str
    session: str
    username: str
    parameters: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Challenge(name={self.name!r}, username={self.username!r})"


@dataclass(frozen=True)
class SignUpResult:
    user_sub: str
    confirmed: bool
    destination: str | None


def _tokens(result: Mapping[str, Any], *, refresh_token: str | None = None) -> Tokens:
    return Tokens(
        access_token=str(result["AccessToken"]),
        id_token=str(result["IdToken"]),
        refresh_token=str(result.get("RefreshToken") or refresh_token or "") or None,
        expires_in=int(result.get("ExpiresIn", 3600)),
    )


# --------------------------------------------------------------------------- the API client


class CognitoClient:
    """The user-pool API calls of the password flows, for one public app client.

    :param client: a boto3 ``cognito-idp`` client (``Services.cognito_idp``).
    :param client_id: the app client (no secret: a public client).
    :param user_pool_id: needed only by :meth:`user_attributes` (local triggers).
    """

    def __init__(self, client: Any, client_id: str, *, user_pool_id: str = "") -> None:
        self._client = client
        self.client_id = client_id
        self.user_pool_id = user_pool_id

    def _call(
        self,
        operation: str,
        overrides: Mapping[str, type[CognitoError]] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self._client, operation)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, operation, **(overrides or {})) from exc
        return response

    def _auth_result(self, response: Mapping[str, Any], username: str) -> Tokens | Challenge:
        if "AuthenticationResult" in response:
            return _tokens(response["AuthenticationResult"])
        parameters = dict(response.get("ChallengeParameters") or {})
        return Challenge(
            name=str(response.get("ChallengeName", "")),
            session=str(response.get("Session", "")),
            username=str(
                parameters.get("USERNAME") or parameters.get("USER_ID_FOR_SRP") or username
            ),
            parameters=parameters,
        )

    def sign_in(self, username: str, password: str) -> Tokens | Challenge:
        """``InitiateAuth`` USER_PASSWORD_AUTH.

        :raises InvalidCredentialsError: wrong password (``UnknownUserError``: no such user).
        :raises UserNotConfirmedError, PasswordResetRequiredError, TooManyRequestsError:
        """
        response = self._call(
            "initiate_auth",
            ClientId=self.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
        return self._auth_result(response, username)

    def respond_new_password(self, challenge: Challenge, new_password: str) -> Tokens | Challenge:
        """Answer NEW_PASSWORD_REQUIRED (``RespondToAuthChallenge``).

        :raises PasswordPolicyError: the new password breaks the policy.
        :raises ChallengeExpiredError: the challenge session is over.
        """
        response = self._call(
            "respond_to_auth_challenge",
            {
                "NotAuthorizedException": ChallengeExpiredError,
                "ExpiredCodeException": ChallengeExpiredError,
            },
            ClientId=self.client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=challenge.session,
            ChallengeResponses={"USERNAME": challenge.username, "NEW_PASSWORD": new_password},
        )
        return self._auth_result(response, challenge.username)

    def refresh(self, refresh_token: str) -> Tokens:
        """New access and id tokens (``InitiateAuth`` REFRESH_TOKEN_AUTH); the refresh token stays.

        :raises TokenRefreshRejectedError: revoked, expired or unknown refresh token.
        """
        response = self._call(
            "initiate_auth",
            {
                "NotAuthorizedException": TokenRefreshRejectedError,
                "UserNotFoundException": TokenRefreshRejectedError,
                "InvalidParameterException": TokenRefreshRejectedError,
            },
            ClientId=self.client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": refresh_token},
        )
        if "AuthenticationResult" not in response:
            raise TokenRefreshRejectedError("refresh answered with a challenge")
        return _tokens(response["AuthenticationResult"], refresh_token=refresh_token)

    def sign_up(self, username: str, email: str, password: str) -> SignUpResult:
        """``SignUp`` with the ``email`` attribute; Cognito e-mails a confirmation code."""
        response = self._call(
            "sign_up",
            ClientId=self.client_id,
            Username=username,
            Password=password,
            UserAttributes=[{"Name": "email", "Value": email}],
        )
        delivery = response.get("CodeDeliveryDetails") or {}
        return SignUpResult(
            user_sub=str(response.get("UserSub", "")),
            confirmed=bool(response.get("UserConfirmed", False)),
            destination=delivery.get("Destination"),
        )

    def confirm_sign_up(self, username: str, code: str) -> None:
        """``ConfirmSignUp``. In AWS, Cognito then runs the PostConfirmation trigger.

        :raises CodeMismatchError, ExpiredCodeError: a wrong or stale code.
        :raises AlreadyConfirmedError: nothing to confirm.
        :raises InvalidCredentialsError: no such (unconfirmed) user.
        """
        self._call(
            "confirm_sign_up",
            {"NotAuthorizedException": AlreadyConfirmedError},
            ClientId=self.client_id,
            Username=username,
            ConfirmationCode=code,
        )

    def resend_code(self, username: str) -> None:
        """``ResendConfirmationCode``."""
        self._call(
            "resend_confirmation_code",
            {"NotAuthorizedException": AlreadyConfirmedError},
            ClientId=self.client_id,
            Username=username,
        )

    def forgot_password(self, username: str) -> None:
        """``ForgotPassword``. An unknown user looks exactly like a known one."""
        try:
            self._call("forgot_password", ClientId=self.client_id, Username=username)
        except UnknownUserError:
            log.info(json.dumps({"event": "forgot_password_unknown_user"}))

    def confirm_forgot_password(self, username: str, code: str, new_password: str) -> None:
        """``ConfirmForgotPassword``.

        :raises CodeMismatchError, ExpiredCodeError, PasswordPolicyError:
        """
        self._call(
            "confirm_forgot_password",
            {
                "UserNotFoundException": CodeMismatchError,
                "ResourceNotFoundException": CodeMismatchError,
            },
            ClientId=self.client_id,
            Username=username,
            ConfirmationCode=code,
            Password=new_password,
        )

    def change_password(self, access_token: str, previous: str, proposed: str) -> None:
        """``ChangePassword`` with the viewer's own access token.

        :raises WrongPasswordError: the current password is not right.
        :raises PasswordPolicyError: the new password is too weak.
        """
        self._call(
            "change_password",
            {"NotAuthorizedException": WrongPasswordError},
            AccessToken=access_token,
            PreviousPassword=previous,
            ProposedPassword=proposed,
        )

    def sign_out(self, refresh_token: str | None, access_token: str | None) -> str:
        """End the Cognito side of a session; returns how (for the log).

        ``RevokeToken`` revokes the refresh token and every access/id token
        issued from it. Where the endpoint does not implement ``RevokeToken``
        (the local emulator: see :func:`_is_unimplemented`), or the app client
        has token revocation turned off (``UnsupportedOperationException``),
        fall back to ``GlobalSignOut`` with the access token: it also makes
        the refresh token unusable, but for every session of the user, not
        just this one — a broader sign-out, never a weaker one.

        :raises CognitoUnavailableError: Cognito cannot be reached.
        """
        if refresh_token:
            try:
                self._client.revoke_token(Token=refresh_token, ClientId=self.client_id)
                return "revoke_token"
            except ClientError as exc:
                fallback = _is_unimplemented(exc) or _code(exc) == "UnsupportedOperationException"
                if not fallback:
                    if _code(exc) in ("NotAuthorizedException", "UnsupportedTokenTypeException"):
                        return "already_invalid"
                    raise translate(exc, "revoke_token") from exc
                log.info(json.dumps({"event": "revoke_token_fallback", "code": _code(exc)}))
            except BotoCoreError as exc:
                raise translate(exc, "revoke_token") from exc
        if not access_token:
            return "nothing_to_revoke"
        try:
            self._client.global_sign_out(AccessToken=access_token)
        except ClientError as exc:
            if _code(exc) == "NotAuthorizedException":
                return "already_invalid"
            raise translate(exc, "global_sign_out") from exc
        except BotoCoreError as exc:
            raise translate(exc, "global_sign_out") from exc
        return "global_sign_out"

    def own_attributes(self, access_token: str) -> dict[str, str]:
        """``GetUser`` with the user's own access token: their attributes (e.g. ``email``)."""
        response = self._call(
            "get_user",
            {"NotAuthorizedException": TokenRefreshRejectedError},
            AccessToken=access_token,
        )
        return {a["Name"]: a["Value"] for a in response.get("UserAttributes", [])}

    def user_attributes(self, username: str) -> tuple[str, dict[str, str]]:
        """``AdminGetUser``: the user's real username and attributes (for local triggers)."""
        response = self._call("admin_get_user", UserPoolId=self.user_pool_id, Username=username)
        attributes = {a["Name"]: a["Value"] for a in response.get("UserAttributes", [])}
        return str(response["Username"]), attributes


# --------------------------------------------------------------------------- the hosted UI


@dataclass(frozen=True)
class AuthorizationRequest:
    """One hosted-UI round trip in progress: kept server-side in the session only."""

    url: str
    state: str
    nonce: str
    code_verifier: str

    def to_dict(self) -> dict[str, str]:
        return {"state": self.state, "nonce": self.nonce, "code_verifier": self.code_verifier}


def payload_claim(token: str, claim: str) -> object:
    """A claim of a JWT whose signature the caller has ALREADY verified.

    The verifier's :class:`~app.auth.Principal` has no ``nonce``; this reads it
    from the same token string that just passed verification.
    """
    try:
        segment = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError):
        return None
    return data.get(claim) if isinstance(data, dict) else None


class HostedUi:
    """OAuth 2.0 with the Cognito hosted UI: authorization code + PKCE (S256), state, nonce.

    :param domain: the hosted UI base URL, e.g. ``https://auth.example.com``.
    :param client_id: the public app client (no secret).
    """

    def __init__(
        self,
        domain: str,
        client_id: str,
        *,
        scope: str = HOSTED_UI_SCOPE,
        timeout: float = HTTP_TIMEOUT_SECONDS,
    ) -> None:
        self.domain = domain.rstrip("/")
        self.client_id = client_id
        self.scope = scope
        self.timeout = timeout

    @property
    def token_endpoint(self) -> str:
        return f"{self.domain}/oauth2/token"

    @property
    def revocation_endpoint(self) -> str:
        return f"{self.domain}/oauth2/revoke"

    def _session(
        self, redirect_uri: str | None = None, *, scope: str | None = None
    ) -> OAuth2Session:
        return OAuth2Session(
            client_id=self.client_id,
            scope=scope,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method="none",  # noqa: S106 - a public client: no secret
            revocation_endpoint_auth_method="none",
            default_timeout=self.timeout,
        )

    def begin(self, redirect_uri: str, *, screen: str = "login") -> AuthorizationRequest:
        """A fresh authorization URL with its state, nonce and PKCE verifier.

        ``screen`` picks the hosted page: ``login`` (``/oauth2/authorize``),
        ``signup`` or ``forgotPassword``; all come back to ``redirect_uri``.
        """
        path = {
            "login": "/oauth2/authorize",
            "signup": "/signup",
            "forgotPassword": "/forgotPassword",
        }[screen]
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 chars, within RFC 7636's 43..128
        with self._session(redirect_uri, scope=self.scope) as oauth:
            url, _ = oauth.create_authorization_url(
                f"{self.domain}{path}", state=state, code_verifier=verifier, nonce=nonce
            )
        return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)

    def finish(
        self,
        pending: Mapping[str, str],
        redirect_uri: str,
        callback_url: str,
        returned_state: str | None,
    ) -> Tokens:
        """Exchange the callback's code for tokens, after checking ``state``.

        The nonce is the caller's to check, on the id token, after verifying it.

        :raises StateMismatchError: no pending sign-in, or another state.
        :raises HostedUiRefusedError: the token endpoint refused the code (or the verifier).
        :raises CognitoUnavailableError: the token endpoint cannot be reached.
        """
        expected = pending.get("state") or ""
        if (
            not expected
            or not returned_state
            or not hmac.compare_digest(expected.encode(), returned_state.encode())
        ):
            raise StateMismatchError("state does not match the pending sign-in")
        try:
            with self._session(redirect_uri) as oauth:
                token = oauth.fetch_token(
                    self.token_endpoint,
                    authorization_response=callback_url,
                    state=expected,
                    code_verifier=pending["code_verifier"],
                )
        except MismatchingStateException as exc:
            raise StateMismatchError("state does not match the pending sign-in") from exc
        except AuthlibBaseError as exc:
            raise HostedUiRefusedError(f"token endpoint: {exc.error}") from exc
        except (requests.RequestException, ValueError) as exc:
            raise CognitoUnavailableError(
                f"hosted UI token endpoint: {type(exc).__name__}"
            ) from exc
        return self._tokens(token)

    def refresh(self, refresh_token: str) -> Tokens:
        """New tokens from the token endpoint (grant ``refresh_token``).

        :raises TokenRefreshRejectedError: revoked, expired or unknown refresh token.
        """
        try:
            with self._session() as oauth:
                token = oauth.refresh_token(self.token_endpoint, refresh_token=refresh_token)
        except AuthlibBaseError as exc:
            raise TokenRefreshRejectedError(f"token endpoint: {exc.error}") from exc
        except (requests.RequestException, ValueError) as exc:
            raise CognitoUnavailableError(
                f"hosted UI token endpoint: {type(exc).__name__}"
            ) from exc
        tokens = self._tokens(token)
        return Tokens(
            tokens.access_token,
            tokens.id_token,
            tokens.refresh_token or refresh_token,
            tokens.expires_in,
        )

    def revoke(self, refresh_token: str) -> None:
        """Revoke the refresh token (and the tokens issued from it) at ``/oauth2/revoke``."""
        try:
            with self._session() as oauth:
                response = oauth.revoke_token(
                    self.revocation_endpoint,
                    token=refresh_token,
                    token_type_hint="refresh_token",  # noqa: S106
                )
        except requests.RequestException as exc:
            raise CognitoUnavailableError(f"hosted UI revocation: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise CognitoUnavailableError(f"hosted UI revocation answered {response.status_code}")
        if response.status_code != 200:
            log.info(json.dumps({"event": "revoke_refused", "status": response.status_code}))

    def logout_url(self, logout_uri: str) -> str:
        """The hosted UI's ``/logout``, which ends its own cookie session and comes back."""
        return f"{self.domain}/logout?" + urlencode(
            {"client_id": self.client_id, "logout_uri": logout_uri}
        )

    @staticmethod
    def _tokens(token: Mapping[str, Any]) -> Tokens:
        if not token.get("access_token") or not token.get("id_token"):
            raise HostedUiRefusedError("token endpoint answered without access and id tokens")
        return Tokens(
            access_token=str(token["access_token"]),
            id_token=str(token["id_token"]),
            refresh_token=str(token.get("refresh_token") or "") or None,
            expires_in=int(token.get("expires_in", 3600)),
        )


def s256_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(sha256(verifier)) without padding (for tests and checks)."""
    return str(create_s256_code_challenge(verifier))
