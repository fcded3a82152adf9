"""The admin API: premium management and the audit trail.

One handler answers API Gateway HTTP API events (payload format 2.0) for
the admin routes of the HTTP API (docs/openapi.yaml)::

    GET /api/admin/users?limit&cursor&email_prefix   → {items, next_cursor}
    PUT /api/admin/users/{user_id}/premium           If-Match: "<version>" (or *: forced)
        {"premium": bool, "until": ISO-8601 | null}  → 200 new state · 409 stale (+ current)
                                                       · 412 weak/foreign tags only
    GET /api/admin/audit?user_id&limit&cursor        → {items, next_cursor}, newest first
    GET /api/admin/users/{user_id}/streams           → {items}: the user's live streams
    DELETE /api/admin/users/{user_id}/streams/{session_id} → 204, audited (one transaction)

Every route wants a Cognito access token (``Authorization: Bearer``) whose
``cognito:groups`` holds ``admin``, of a user Cognito still lists in that group
(checked server-side, at most 30 s old); the handler verifies it itself, before it
reads anything else of the request, so a non-admin learns nothing (403 even
for a user id that does not exist). A premium change is written with its
audit record in one DynamoDB transaction conditioned on the version the
caller names in ``If-Match`` (:meth:`app.entitlements.EntitlementStore.set_premium`):
of many concurrent writers with the same version exactly one wins, the
others get 409 with the state that won. The audit names the admin by their
Cognito username. No Flask here: the admin Lambda function and the web app
(through ``app.web.apigw``) call it.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from typing import Any

from app.auth import Principal, extract_bearer
from app.config import Need, load_settings
from app.dynamo import parse_limit
from app.entitlements import Entitlement, parse_until, validate_user_id
from app.errors import ForbiddenError, VersionConflictError
from app.http.params import parse_if_match
from app.http.router import (
    InvalidBodyError,
    Request,
    Response,
    Router,
    error_response,
    json_response,
)
from app.services import Services
from app.streams import check_session_id
from app.user_pool import ADMIN_GROUP

log = logging.getLogger("vidgate.http.admin")
logging.getLogger("vidgate").setLevel(logging.INFO)  # premium changes are logged too

NEEDS = frozenset({Need.COGNITO, Need.TABLES})
"""What this function needs from the environment (app.config)."""

DEFAULT_PAGE_SIZE = 25
_BODY_FIELDS = frozenset({"premium", "until"})


class NotAdminError(ForbiddenError):
    """The token is valid, but its user is not in the Cognito group ``admin``."""


# --- input parsing ------------------------------------------------------------------


def premium_body(body: dict[str, Any]) -> tuple[bool, datetime | None]:
    """``premium`` and ``until`` of a PUT body (whether they go together is the store's check).

    :raises BadRequestError: a missing or mistyped field, an unknown field, a bad date.
    """
    unknown = set(body) - _BODY_FIELDS
    if unknown:
        raise InvalidBodyError(f"unknown field(s): {', '.join(sorted(unknown))}")
    premium = body.get("premium")
    if not isinstance(premium, bool):
        raise InvalidBodyError("premium is required and must be true or false")
    return premium, parse_until(body.get("until"))


def _etag(version: int) -> str:
    return f'"{version}"'


# --- the API -------------------------------------------------------------------------


class AdminApi:
    """The route table of the admin API over one :class:`Services`; call it with an event."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.router = Router()
        self.router.add("GET", "/api/admin/users", self.list_users)
        self.router.add("PUT", "/api/admin/users/{user_id}/premium", self.set_premium)
        self.router.add("GET", "/api/admin/audit", self.list_audit)
        self.router.add("GET", "/api/admin/users/{user_id}/streams", self.list_streams)
        self.router.add(
            "DELETE", "/api/admin/users/{user_id}/streams/{session_id}", self.end_stream
        )

    def __call__(self, event: object, context: object = None) -> dict[str, Any]:
        return self.router.handle(event)

    def warm(self) -> None:
        """Build the clients and verifier now, so the first request does not pay for them."""
        try:
            _ = self.services.access_verifier, self.services.entitlements, self.services.users
        except Exception:
            log.exception(json.dumps({"event": "warm_failed"}))

    def _admin(self, request: Request) -> Principal:
        """The verified admin behind the request's bearer token.

        Both the token's ``cognito:groups`` (a snapshot) and Cognito itself now
        (cached at most 30 s, :class:`app.user_pool.UserPool`) must say ``admin``,
        so a removal from the group ends access within 30 s.

        :raises AuthError: no valid access token (401).
        :raises NotAdminError: a valid token of someone outside the admin group (403).
        :raises UserPoolUnavailableError: Cognito cannot say (503, never admin by default).
        """
        principal = self.services.access_verifier.verify(
            extract_bearer(request.header("authorization"))
        )
        if ADMIN_GROUP not in principal.groups or not self.services.user_pool.is_member(
            principal.username, ADMIN_GROUP
        ):
            raise NotAdminError(f"{principal.username} is not in the {ADMIN_GROUP} group")
        return principal

    # --- views ---------------------------------------------------------------------

    def list_users(self, request: Request) -> Response:
        self._admin(request)
        limit = parse_limit(request.query.get("limit"), DEFAULT_PAGE_SIZE)
        cursor = request.query.get("cursor") or None
        prefix = request.query.get("email_prefix") or None
        users, next_cursor = self.services.users.list(limit, cursor, prefix)
        return json_response(
            {"items": [user.to_dict() for user in users], "next_cursor": next_cursor}
        )

    def set_premium(self, request: Request) -> Response:
        admin = self._admin(request)
        user_id = request.path_params["user_id"]
        # The body first: RFC 9110 (13.2.1) evaluates preconditions only on a request
        # that would otherwise succeed, so a bad body is a 400 whatever If-Match says.
        premium, until = premium_body(request.json_object(required=True))
        if_match = parse_if_match(request.header("if-match"))
        try:
            state = self.services.entitlements.set_premium(
                user_id,
                premium,
                until,
                actor=admin.username,
                expected_version=None if if_match.forced else if_match.versions,
                forced=if_match.forced,
            )
        except VersionConflictError as exc:
            response = error_response(exc)
            current = exc.current
            if isinstance(current, Entitlement):
                response.body["current"] = current.to_dict()
                response.headers["etag"] = _etag(current.version)
            return response
        log.info(
            json.dumps(
                {
                    "event": "premium_changed",
                    "user_id": user_id,
                    "premium": state.premium,
                    "until": state.to_dict()["premium_until"],
                    "version": state.version,
                    "actor": admin.username,
                    "forced": if_match.forced,
                    "request_id": request.request_id,
                }
            )
        )
        return json_response(state.to_dict(), etag=_etag(state.version))

    def list_streams(self, request: Request) -> Response:
        self._admin(request)
        user_id = validate_user_id(request.path_params["user_id"])
        streams = self.services.streams.active(user_id)
        return json_response({"items": [stream.to_public() for stream in streams]})

    def end_stream(self, request: Request) -> Response:
        admin = self._admin(request)
        user_id = validate_user_id(request.path_params["user_id"])
        session_id = check_session_id(request.path_params["session_id"])
        stream = self.services.streams.end_by_admin(user_id, session_id, actor=admin.username)
        log.info(
            json.dumps(
                {
                    "event": "stream_ended_by_admin",
                    "user_id": user_id,
                    "session": stream.session_id,
                    "actor": admin.username,
                    "request_id": request.request_id,
                }
            )
        )
        return Response(status=204)

    def list_audit(self, request: Request) -> Response:
        self._admin(request)
        limit = parse_limit(request.query.get("limit"), DEFAULT_PAGE_SIZE)
        cursor = request.query.get("cursor") or None
        user_id = request.query.get("user_id") or None
        records, next_cursor = self.services.entitlements.list_audit(user_id, limit, cursor)
        return json_response(
            {"items": [record.to_dict() for record in records], "next_cursor": next_cursor}
        )


def make_handler(services: Services, *, warm: bool = True) -> AdminApi:
    """A handler over ``services`` (tests and the web app pass theirs)."""
    api = AdminApi(services)
    if warm:
        api.warm()
    return api


def from_environment() -> AdminApi:
    """The process-wide API of the Lambda function: settings from the environment, once."""
    return make_handler(Services(load_settings(os.environ, NEEDS)))
