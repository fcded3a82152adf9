"""A tiny framework-free HTTP router for API Gateway proxy events.

It reads the event an API Gateway HTTP API delivers to a Lambda function
(payload format 2.0, the only kind infra/template.yaml deploys) into a
:class:`Request`, matches it against a route table with ``{name}`` path
parameters, calls the view and turns its :class:`Response` into the 2.0
result. Domain errors become HTTP here and only here: ``status`` and
``code`` of the :class:`~app.errors.VidgateError` make
``{"error": code, "message": text}``. A malformed event, a REST API
(payload 1.0) event among them, is a typed 4xx; :meth:`Router.handle` never
raises, and an unexpected exception is a 500 ``internal`` whose detail goes
only to the log.
No Flask, no boto3: the local web app reaches the same code through
``app.web.apigw``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, unquote

from app import json_input
from app.errors import BadRequestError, NotFoundError, VidgateError

log = logging.getLogger("vidgate.api")

MAX_BODY_BYTES = 64 * 1024
"""Every body this API accepts is a small JSON document; refuse anything bigger."""

JSON_HEADERS: Mapping[str, str] = {
    "content-type": "application/json",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
}

# What the client reads for statuses whose detail must stay in the log.
_PUBLIC_MESSAGES: Mapping[int, str] = {
    401: "a valid Cognito access token is required (Authorization: Bearer <token>)",
    500: "internal error",
    503: "a service this request depends on is unavailable; try again shortly",
}
_METHOD = re.compile(r"^[A-Z]{1,16}$")
_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class MalformedEventError(BadRequestError):
    """The Lambda event is not an HTTP API payload 2.0 event this router can read."""


class InvalidBodyError(BadRequestError):
    """The request body is not what the route accepts (not JSON, not an object, bad base64)."""


class PayloadTooLargeError(VidgateError):
    """The request body is larger than :data:`MAX_BODY_BYTES`."""

    status = 413
    code = "payload_too_large"


class RouteNotFoundError(NotFoundError):
    """No route matches the request path."""


class MethodNotAllowedError(VidgateError):
    """A route matches the path, but not with this method; ``allowed`` lists the methods."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


@dataclass(frozen=True)
class Request:
    """One HTTP request, read from a payload 2.0 event.

    ``headers`` have lower-case names; ``path`` is percent-decoded (for logs
    and display); routing uses ``segments``, the decoded path segments, so an
    encoded ``/`` stays inside its segment; ``path_params`` is filled in by the
    router.
    """

    method: str
    path: str
    segments: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    cookie_header: str = ""
    body: bytes = b""
    source_ip: str = ""
    request_id: str = ""
    stage: str = ""
    path_params: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @cached_property
    def cookies(self) -> Mapping[str, str]:
        """The request's cookies, parsed on first use (no route reads them on the hot path)."""
        return _parse_cookies(self.cookie_header)

    def json_object(self, *, required: bool = False) -> dict[str, Any]:
        """The body as a JSON object; an empty body is ``{}`` unless ``required``.

        :raises InvalidBodyError: not UTF-8 JSON, nested deeper than
            :data:`app.json_input.MAX_DEPTH`, or not an object.
        """
        if not self.body.strip():
            if required:
                raise InvalidBodyError("a JSON object body is required")
            return {}
        try:
            value = json_input.loads(self.body.decode("utf-8"))
        except json_input.JsonTooDeepError as exc:
            raise InvalidBodyError(
                f"the body nests deeper than {json_input.MAX_DEPTH} levels"
            ) from exc
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidBodyError("the body is not valid JSON") from exc
        if not isinstance(value, dict):
            raise InvalidBodyError("the body must be a JSON object")
        return value


@dataclass
class Response:
    """What a view answers: a JSON-able ``body`` (or None), extra headers and Set-Cookie values."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)


View = Callable[[Request], Response]


def json_response(body: Any, status: int = 200, **headers: str) -> Response:
    return Response(status=status, body=body, headers=dict(headers))


def error_response(exc: VidgateError) -> Response:
    """The one mapping from a domain error to HTTP: status, stable code, safe message."""
    message = _PUBLIC_MESSAGES.get(exc.status) or str(exc) or exc.code.replace("_", " ")
    body = {"error": exc.code, "message": message, **exc.details()}
    response = Response(status=exc.status, body=body)
    if isinstance(exc, MethodNotAllowedError):
        response.headers["allow"] = ", ".join(exc.allowed)
    if exc.status == 401:
        response.headers["www-authenticate"] = 'Bearer realm="vidgate"'
    return response


def internal_error_response() -> Response:
    return Response(status=500, body={"error": "internal", "message": _PUBLIC_MESSAGES[500]})


# --- event parsing ------------------------------------------------------------------


def _is_str_map(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _optional_map(event: Mapping[str, Any], key: str) -> dict[str, str]:
    value = event.get(key)
    if value is None:
        return {}
    if not _is_str_map(value):
        raise MalformedEventError(f"event field {key!r} must be an object of strings")
    return dict(value)


def _optional_str(container: Mapping[str, Any], key: str, where: str = "event") -> str:
    value = container.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedEventError(f"{where} field {key!r} must be a string")
    return value


def _required_str(container: Mapping[str, Any], key: str, where: str = "event") -> str:
    value = container.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEventError(f"{where} field {key!r} is missing or not a string")
    return value


def _object(container: Mapping[str, Any], key: str, where: str = "event") -> dict[str, Any]:
    value = container.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedEventError(f"{where} field {key!r} must be an object")
    return value


def _body(event: Mapping[str, Any], max_bytes: int) -> bytes:
    raw = event.get("body")
    encoded = event.get("isBase64Encoded", False)
    if not isinstance(encoded, bool):
        raise MalformedEventError("event field 'isBase64Encoded' must be a boolean")
    if raw is None:
        return b""
    if not isinstance(raw, str):
        raise MalformedEventError("event field 'body' must be a string or null")
    # Check the size before decoding, so a huge body costs nothing.
    if len(raw) > (max_bytes * 4 // 3 + 4 if encoded else max_bytes * 4):
        raise PayloadTooLargeError(f"the body is larger than {max_bytes} bytes")
    if encoded:
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidBodyError("the body is marked base64 but is not valid base64") from exc
    else:
        body = raw.encode("utf-8", "surrogatepass")
    if len(body) > max_bytes:
        raise PayloadTooLargeError(f"the body is larger than {max_bytes} bytes")
    return body


def _method(value: str) -> str:
    method = value.upper()
    if not _METHOD.match(method):
        raise MalformedEventError("the HTTP method is malformed")
    return method


def _path(value: str) -> str:
    if not value.startswith("/"):
        raise MalformedEventError("the request path must start with '/'")
    return value


def _parse_cookies(header: str) -> dict[str, str]:
    if not header:
        return {}
    from http.cookies import CookieError, SimpleCookie  # only routes that read cookies pay

    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def _parse_v2(event: Mapping[str, Any], max_body: int) -> Request:
    context = _object(event, "requestContext")
    http = _object(context, "http", "requestContext")
    if not http:
        raise MalformedEventError("a 2.0 event needs requestContext.http")
    method = _method(_required_str(http, "method", "requestContext.http"))
    raw_path = _path(_required_str(event, "rawPath"))
    # rawPath is as sent (percent-encoded); decode segment by segment so an
    # encoded "/" inside a segment cannot create a new segment.
    segments = tuple(unquote(part) for part in _segments(raw_path))
    raw_query = _optional_str(event, "rawQueryString")
    if raw_query:
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
    else:
        query = _optional_map(event, "queryStringParameters")
    headers = {k.lower(): v for k, v in _optional_map(event, "headers").items()}
    cookie_list = event.get("cookies")
    if cookie_list is None:
        cookie_list = []
    if not isinstance(cookie_list, list) or not all(isinstance(c, str) for c in cookie_list):
        raise MalformedEventError("event field 'cookies' must be a list of strings")
    return Request(
        method=method,
        path=unquote(raw_path),
        segments=segments,
        headers=headers,
        query=query,
        cookie_header="; ".join(cookie_list) if cookie_list else headers.get("cookie", ""),
        body=_body(event, max_body),
        source_ip=_optional_str(http, "sourceIp", "requestContext.http"),
        request_id=_optional_str(context, "requestId", "requestContext"),
        stage=_optional_str(context, "stage", "requestContext"),
    )


def parse_event(event: object, *, max_body_bytes: int = MAX_BODY_BYTES) -> Request:
    """Read an API Gateway HTTP API event (payload format 2.0) into a :class:`Request`.

    :raises MalformedEventError: not an object, not ``"version": "2.0"`` (a REST API
        payload 1.0 event included), or a field missing or of the wrong type.
    :raises InvalidBodyError: ``isBase64Encoded`` with a body that is not base64.
    :raises PayloadTooLargeError: a body over ``max_body_bytes``.
    """
    if not isinstance(event, dict):
        raise MalformedEventError("the event must be a JSON object")
    if event.get("version") != "2.0":
        raise MalformedEventError("not an API Gateway HTTP API event (payload format 2.0)")
    return _parse_v2(event, max_body_bytes)


# --- results ------------------------------------------------------------------------


def to_result(response: Response) -> dict[str, Any]:
    """The Lambda result an HTTP API expects (payload format 2.0)."""
    headers = {**JSON_HEADERS, **{k.lower(): v for k, v in response.headers.items()}}
    body = "" if response.body is None else json.dumps(response.body, separators=(",", ":"))
    if response.body is None:
        headers.pop("content-type", None)
    result: dict[str, Any] = {
        "statusCode": response.status,
        "headers": headers,
        "body": body,
        "isBase64Encoded": False,
    }
    if response.cookies:
        result["cookies"] = list(response.cookies)
    return result


# --- routing ------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    view: View
    segments: tuple[str, ...]

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        if len(segments) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for wanted, found in zip(self.segments, segments, strict=True):
            name = _PARAM.match(wanted)
            if name:
                if not found:
                    return None
                params[name.group(1)] = found
            elif wanted != found:
                return None
        return params


def _segments(path: str) -> list[str]:
    trimmed = path.rstrip("/") or "/"
    return trimmed.split("/")[1:]


class Router:
    """A route table; :meth:`handle` turns an API Gateway event into a Lambda result."""

    def __init__(self, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.routes: list[Route] = []
        self.max_body_bytes = max_body_bytes

    def add(self, method: str, pattern: str, view: View) -> None:
        if not pattern.startswith("/"):
            raise ValueError(f"route pattern must start with '/': {pattern!r}")
        self.routes.append(Route(method.upper(), pattern, view, tuple(_segments(pattern))))

    def route(self, method: str, pattern: str) -> Callable[[View], View]:
        def register(view: View) -> View:
            self.add(method, pattern, view)
            return view

        return register

    def _match(self, segments: Sequence[str]) -> list[tuple[Route, dict[str, str]]]:
        return [
            (route, params)
            for route in self.routes
            if (params := route.match(segments)) is not None
        ]

    def resolve(
        self, method: str, segments: Sequence[str], *, stage: str = ""
    ) -> tuple[View, dict[str, str]]:
        """The view and path parameters for ``method`` and the decoded path ``segments``.

        A path that carries the API Gateway stage as its first segment (HTTP
        APIs with a named stage) is matched without it when it does not match
        as it is.

        :raises RouteNotFoundError: no route has this path.
        :raises MethodNotAllowedError: routes have this path, with other methods.
        """
        segments = tuple(segments)
        matches = self._match(segments)
        if not matches and stage and stage != "$default" and segments[:1] == (stage,):
            matches = self._match(segments[1:])
        if not matches:
            raise RouteNotFoundError("no route for " + "/" + "/".join(segments))
        for route, params in matches:
            if route.method == method:
                return route.view, params
        allowed = tuple(sorted({route.method for route, _ in matches}))
        raise MethodNotAllowedError(f"{method} is not allowed here", allowed=allowed)

    def dispatch(self, request: Request) -> Response:
        """Route ``request`` and call its view; domain errors propagate."""
        view, params = self.resolve(request.method, request.segments, stage=request.stage)
        return view(replace(request, path_params=params))

    def handle(self, event: object) -> dict[str, Any]:
        """Answer one API Gateway event. Never raises."""
        request: Request | None = None
        try:
            request = parse_event(event, max_body_bytes=self.max_body_bytes)
            response = self.dispatch(request)
        except VidgateError as exc:
            _log_refusal(exc, request)
            response = error_response(exc)
        except Exception:
            log.exception(
                json.dumps(
                    {
                        "event": "api_error",
                        "status": 500,
                        "method": request.method if request else None,
                        "path": request.path if request else None,
                        "request_id": request.request_id if request else None,
                    }
                )
            )
            response = internal_error_response()
        try:
            return to_result(response)
        except Exception:  # a view returned a body json cannot encode
            log.exception(json.dumps({"event": "api_error", "status": 500, "stage": "encode"}))
            return to_result(internal_error_response())


def _log_refusal(exc: VidgateError, request: Request | None) -> None:
    level = logging.WARNING if exc.status >= 500 else logging.INFO
    log.log(
        level,
        json.dumps(
            {
                "event": "api_refusal",
                "status": exc.status,
                "error": exc.code,
                "reason": type(exc).__name__,
                "detail": str(exc),
                "method": request.method if request else None,
                "path": request.path if request else None,
                "request_id": request.request_id if request else None,
            }
        ),
    )
