"""Schemathesis drives the whole HTTP API from ``docs/openapi.yaml`` through the web app's ``/api``.

Requests go in-process into the Flask app of :func:`app.web.create_app` (its
WSGI interface, no server), whose ``/api`` mount runs the very Lambda handlers
that ship (``lambda_handlers.playback`` and ``lambda_handlers.admin``) through
the API Gateway shim, against the AWS emulator: a real user pool, real tokens,
real tables. Every operation is tried with inputs that follow the spec and
with inputs that break it, three ways: anonymously, as a premium viewer
(alice) and as an admin (carol). Checks: no 5xx, every 4xx is JSON with the
``{"error", "message"}`` shape, status codes, content types, headers and
bodies as the spec says, authentication enforced where declared, 405 with
``Allow`` for other methods. Examples are bounded and derandomised, so CI
sees the same inputs on every run.

On top of what the spec generates, each listing gets cursors nested far past
Python's recursion limit, the premium change gets end dates at the edges of
the calendar and bodies nested past the API's limit (:mod:`tests.fuzz.edges`),
all checked the same way: a 400 by the spec, never a 5xx.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings

from app.web import create_app
from tests.fuzz import World, shared_world
from tests.fuzz.edges import CALENDAR_EDGES, DEEP_CURSORS

pytestmark = pytest.mark.integration

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
MAX_EXAMPLES = 50
"""Hypothesis examples per operation and identity, inputs that follow the spec and inputs that
break it together; schemathesis adds its deterministic coverage cases on top."""


def error_shape(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every 4xx/5xx answer is ``application/json`` ``{"error": code, "message": text}``."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), (response.status_code, content_type)
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("message"), str) and body["message"], body


@pytest.fixture(scope="module")
def world(aws_env: dict[str, str]) -> World:
    return shared_world(aws_env["AWS_ENDPOINT_URL"])


@pytest.fixture(scope="module")
def api_app(world: World) -> Flask:
    """The web app; create_app mounts both Lambda handlers under ``/api``."""
    app = create_app(world.settings(), services=world.services())
    app.config["TESTING"] = True
    return app


def load_spec(app: Flask, *, generate_auth: bool) -> schemathesis.BaseSchema:
    """The spec bound to ``app``: requests, and the checks' probes, go to it in-process.

    ``generate_auth``: schemathesis makes up (and, in negative mode, leaves out)
    the bearer token itself; off when the test sends a real one.
    """
    loaded = schemathesis.openapi.from_path(SPEC)
    loaded.app = app
    loaded.config.generation.update(
        max_examples=MAX_EXAMPLES,
        deterministic=True,
        with_security_parameters=generate_auth,
        # Unknown query parameters are ignored, as behind API Gateway: not a refusal.
        allow_extra_parameters=False,
    )
    checks = loaded.config.checks
    # The API refuses some schema-valid input for reasons a schema cannot state: a
    # cursor it did not issue, an `until` in the past, a user that does not exist.
    checks.update(excluded_check_names=["positive_data_acceptance"])
    # A PUT without If-Match is 428 Precondition Required (RFC 6585), not a plain 400.
    checks.missing_required_header.expected_statuses = ["400", "401", "403", "428"]
    return loaded


@pytest.fixture(scope="module")
def anonymous_spec(api_app: Flask) -> schemathesis.BaseSchema:
    return load_spec(api_app, generate_auth=True)


@pytest.fixture(scope="module")
def signed_in_spec(api_app: Flask) -> schemathesis.BaseSchema:
    return load_spec(api_app, generate_auth=False)


@pytest.fixture(scope="module")
def tokens(world: World) -> dict[str, str]:
    return {name: world.sign_in(name).access_token for name in ("alice", "carol")}


anonymous = schemathesis.pytest.from_fixture("anonymous_spec")
signed_in = schemathesis.pytest.from_fixture("signed_in_spec")

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def call_as(case: schemathesis.Case, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    case.call_and_validate(headers=headers, additional_checks=[error_shape])


@anonymous.parametrize()
@FUZZ_SETTINGS
def test_anonymous_callers_get_the_catalog_and_clean_refusals(case: schemathesis.Case) -> None:
    call_as(case, None)


@signed_in.parametrize()
@FUZZ_SETTINGS
def test_a_premium_viewer_gets_answers_by_the_spec(
    case: schemathesis.Case, tokens: dict[str, str]
) -> None:
    call_as(case, tokens["alice"])


@signed_in.parametrize()
@FUZZ_SETTINGS
def test_an_admin_gets_answers_by_the_spec(case: schemathesis.Case, tokens: dict[str, str]) -> None:
    call_as(case, tokens["carol"])


# --- inputs at the edges, through the spec's own operations ------------------------------

NOBODY = "fuzz-nobody-0000"
"""No user has this id: a change the API accepts gets as far as its 404, and changes nobody."""


def nested(depth: int) -> dict[str, Any]:
    value: Any = True
    for _ in range(depth):
        value = {"premium": value}
    return value


@pytest.mark.parametrize(
    ("path", "who"),
    [("/api/videos", None), ("/api/admin/users", "carol"), ("/api/admin/audit", "carol")],
)
@pytest.mark.parametrize("cursor", DEEP_CURSORS, ids=["open", "balanced", "objects", "in-a-key"])
def test_a_deeply_nested_cursor_is_a_400_by_the_spec(
    signed_in_spec: schemathesis.BaseSchema,
    tokens: dict[str, str],
    path: str,
    who: str | None,
    cursor: str,
) -> None:
    case = signed_in_spec[path]["GET"].Case(query={"cursor": cursor})
    headers = {"Authorization": f"Bearer {tokens[who]}"} if who else None

    response = case.call_and_validate(headers=headers, additional_checks=[error_shape])

    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"


def premium_change(spec: schemathesis.BaseSchema, body: dict[str, Any]) -> schemathesis.Case:
    return spec["/api/admin/users/{user_id}/premium"]["PUT"].Case(
        path_parameters={"user_id": NOBODY},
        headers={"If-Match": '"0"'},
        body=body,
        media_type="application/json",
    )


@pytest.mark.parametrize("until", CALENDAR_EDGES)
def test_an_end_date_at_an_edge_of_the_calendar_is_a_400_or_gets_to_the_user_lookup(
    signed_in_spec: schemathesis.BaseSchema, tokens: dict[str, str], until: str
) -> None:
    case = premium_change(signed_in_spec, {"premium": True, "until": until})

    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {tokens['carol']}"}, additional_checks=[error_shape]
    )

    assert response.status_code in (400, 404), response.text
    if until.startswith(("0001", "9999")):
        assert response.status_code == 400
        assert "9998-12-31" in response.json()["message"]


@pytest.mark.parametrize("depth", [33, 200])
def test_a_body_nested_past_the_limit_is_a_400_by_the_spec(
    signed_in_spec: schemathesis.BaseSchema, tokens: dict[str, str], depth: int
) -> None:
    case = premium_change(signed_in_spec, nested(depth))

    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {tokens['carol']}"}, additional_checks=[error_shape]
    )

    assert response.status_code == 400
    assert "nests deeper" in response.json()["message"]
