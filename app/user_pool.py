"""Server-side calls on the Cognito user pool: group membership now, and sign-out everywhere.

A token's ``cognito:groups`` is a snapshot taken when it was issued; removing
someone from a group does not change tokens already out there (up to an hour
old). :meth:`UserPool.is_member` asks Cognito (``AdminListGroupsForUser``) and
caches the answer per process for at most :data:`MEMBERSHIP_TTL_SECONDS`, so
a removal takes effect within that time. If Cognito cannot answer, the check
fails closed (:class:`UserPoolUnavailableError`, 503), never "member".
:meth:`UserPool.sign_out_everywhere` is ``AdminUserGlobalSignOut``: every
refresh token of the user stops working (docs/cognito-tokens.md#c-doc-6).
Both are IAM-authorised admin calls on the pool. With ``admin_needs_totp``
(``AdminMfa=TOTP`` in the template), a member of ``admin`` counts as one only
once TOTP MFA is set up for them (``AdminGetUser``'s ``UserMFASettingList``):
Cognito's MFA setting is per pool, so the group's requirement is enforced here,
where every admin check passes (docs/runbooks.md#admin-totp).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.errors import DependencyUnavailableError
from app.ttl_cache import TtlCache

log = logging.getLogger("vidgate.user_pool")

ADMIN_GROUP = "admin"
"""The Cognito group whose members may use the admin pages and the admin API."""
MEMBERSHIP_TTL_SECONDS = 30.0
"""How old a cached membership answer may be: a removal takes effect within this time."""
_PAGE = 60  # AdminListGroupsForUser's largest page
TOTP_MFA = "SOFTWARE_TOKEN_MFA"
"""Cognito's name for authenticator-app (TOTP) MFA in ``UserMFASettingList``."""


class UserPoolUnavailableError(DependencyUnavailableError):
    """Cognito could not answer an admin call (down, throttling, or not permitted): 503."""


class UserPool:
    """Admin calls on one user pool, through a ``cognito-idp`` client built once per process.

    :param membership_ttl: seconds a group-membership answer is reused (0: never).
    :param clock: monotonic seconds, for the membership cache.
    :param admin_needs_totp: the ``admin`` group counts only for users with TOTP MFA set up.
    """

    def __init__(
        self,
        client: Any,
        user_pool_id: str,
        *,
        membership_ttl: float = MEMBERSHIP_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        admin_needs_totp: bool = False,
    ) -> None:
        self._client = client
        self.user_pool_id = user_pool_id
        self.admin_needs_totp = admin_needs_totp
        self._groups: TtlCache[str, frozenset[str]] = TtlCache(membership_ttl, clock=clock)

    def groups_of(self, username: str) -> frozenset[str]:
        """The groups ``username`` is in now (at most ``membership_ttl`` seconds old).

        A user the pool does not know (deleted) is in no group. With
        ``admin_needs_totp``, ``admin`` is left out for a user without TOTP MFA.

        :raises UserPoolUnavailableError: Cognito cannot answer.
        """
        return self._groups.get_or_load(username, lambda: self._effective_groups(username))

    def is_member(self, username: str, group: str) -> bool:
        """:raises UserPoolUnavailableError: Cognito cannot answer (never a default yes)."""
        return group in self.groups_of(username)

    def forget(self, username: str) -> None:
        """Drop the cached membership of ``username`` in this process."""
        self._groups.discard(username)

    def sign_out_everywhere(self, username: str) -> None:
        """``AdminUserGlobalSignOut``: every refresh token of the user stops working.

        Access and id tokens already issued stay valid until they expire.
        A user the pool does not know has nothing to sign out.

        :raises UserPoolUnavailableError: Cognito cannot answer.
        """
        try:
            self._client.admin_user_global_sign_out(UserPoolId=self.user_pool_id, Username=username)
        except (ClientError, BotoCoreError) as exc:
            if _code(exc) == "UserNotFoundException":
                return
            raise _unavailable("admin_user_global_sign_out", exc) from exc
        self.forget(username)
        log.info(json.dumps({"event": "signed_out_everywhere", "username": username}))

    def _effective_groups(self, username: str) -> frozenset[str]:
        groups = self._list_groups(username)
        if self.admin_needs_totp and ADMIN_GROUP in groups and not self._has_totp(username):
            log.warning(json.dumps({"event": "admin_without_totp", "username": username}))
            return groups - {ADMIN_GROUP}
        return groups

    def _has_totp(self, username: str) -> bool:
        try:
            user = self._client.admin_get_user(UserPoolId=self.user_pool_id, Username=username)
        except (ClientError, BotoCoreError) as exc:
            if _code(exc) == "UserNotFoundException":
                return False
            raise _unavailable("admin_get_user", exc) from exc
        return TOTP_MFA in user.get("UserMFASettingList", [])

    def _list_groups(self, username: str) -> frozenset[str]:
        groups: set[str] = set()
        request: dict[str, Any] = {
            "UserPoolId": self.user_pool_id,
            "Username": username,
            "Limit": _PAGE,
        }
        while True:
            try:
                response = self._client.admin_list_groups_for_user(**request)
            except (ClientError, BotoCoreError) as exc:
                if _code(exc) == "UserNotFoundException":
                    return frozenset()
                raise _unavailable("admin_list_groups_for_user", exc) from exc
            groups.update(str(group["GroupName"]) for group in response.get("Groups", []))
            token = response.get("NextToken")
            if not token:
                return frozenset(groups)
            request["NextToken"] = token


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def _unavailable(operation: str, exc: Exception) -> UserPoolUnavailableError:
    detail = _code(exc) or type(exc).__name__
    log.warning(
        json.dumps({"event": "user_pool_unavailable", "operation": operation, "code": detail})
    )
    return UserPoolUnavailableError(f"Cognito {operation} failed: {detail}")
