"""A small API Gateway (HTTP API, payload format 2.0) shim for the local web app.

In AWS, API Gateway turns each HTTP request into a payload 2.0 event, invokes
the Lambda handler and turns its result back into a response. Locally the web
app does the same in-process, so ``/api`` is answered by the very handler
modules that ship to Lambda. :func:`build_event` makes the event from a
werkzeug request the way API Gateway does (``rawPath``, ``rawQueryString``,
lower-case headers with repeats joined by commas, cookies in their own list,
``requestContext.http``, a body that is base64 when it is not UTF-8 text);
:func:`to_response` reads a result the way API Gateway does (a dict with
``statusCode`` is a proxy result; any other JSON value is a 200 JSON body; a
malformed result or a raising handler is a 500). :func:`invoke_v2` chains
the two. The only Flask piece is :func:`api_blueprint` / :func:`mount_api`,
which route ``/api/<path>`` through the shim.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Flask, request
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from app.http.router import MAX_BODY_BYTES

log = logging.getLogger("vidgate.web.apigw")

Handler = Callable[[dict[str, Any], Any], Any]
"""A Lambda handler: ``handler(event, context) -> result``."""

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Hop-by-hop headers and those API Gateway computes itself are not copied from a result.
_DROPPED_RESULT_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
_PATH_SAFE = "/!$&'()*+,;=:@~-._"


def build_event(
    http_request: Request,
    *,
    path_prefix: str = "",
    path: str | None = None,
    bearer_token: str | None = None,
) -> dict[str, Any]:
    """The payload 2.0 event API Gateway would send for ``http_request``.

    ``path_prefix`` is put in front of the request's path (for an app mounted
    where the API's own paths are shorter); ``path`` replaces it (decoded, it
    is percent-encoded here). With ``bearer_token`` the event carries
    ``authorization: Bearer <token>`` instead of the request's own header and
    no cookies: the web app calling the API on behalf of its session's user.
    At most :data:`app.http.router.MAX_BODY_BYTES` + 1 bytes of the body are read: the
    handler refuses anything longer (413) without the shim buffering it.
    """
    if path is None:
        path = path_prefix.rstrip("/") + http_request.path
    raw_path = quote(path, safe=_PATH_SAFE)
    raw_query = http_request.query_string.decode("utf-8", "replace")
    headers: dict[str, str] = {}
    for name, value in http_request.headers.items():
        key = name.lower()
        if key == "cookie" or (bearer_token is not None and key == "authorization"):
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    cookies: list[str] = []
    if bearer_token is not None:
        headers["authorization"] = f"Bearer {bearer_token}"
    else:
        cookie_header = http_request.headers.get("Cookie", "")
        cookies = [part.strip() for part in cookie_header.split(";") if part.strip()]
    now = time.time()
    host = http_request.host
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {
                "method": http_request.method,
                "path": path,
                "protocol": http_request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                # The request's peer: behind the local edge, the viewer (the web server
                # trusts one proxy hop: docs/local-edge.md#proxy-headers).
                "sourceIp": http_request.remote_addr or "",
                "userAgent": http_request.headers.get("User-Agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    query = http_request.args
    if query:
        event["queryStringParameters"] = {k: ",".join(query.getlist(k)) for k in query}
    data = http_request.stream.read(MAX_BODY_BYTES + 1)
    if data:
        try:
            event["body"] = data.decode("utf-8")
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(data).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def _bad_gateway(reason: str) -> Response:
    log.error(json.dumps({"event": "apigw_bad_result", "reason": reason}))
    return Response(
        json.dumps({"error": "internal", "message": "internal error"}),
        status=500,
        content_type="application/json",
    )


def to_response(result: Any) -> Response:
    """The HTTP response API Gateway would make of a handler's ``result`` (payload 2.0)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # "If your function returns valid JSON and doesn't return a statusCode,
        # API Gateway assumes 200 and application/json."
        try:
            text = json.dumps(result)
        except (TypeError, ValueError):
            return _bad_gateway("result is not JSON")
        return Response(text, status=200, content_type="application/json")
    status = result.get("statusCode")
    body = result.get("body", "")
    headers = result.get("headers") or {}
    cookies = result.get("cookies") or []
    encoded = result.get("isBase64Encoded", False)
    if (
        isinstance(status, bool)
        or not isinstance(status, int)
        or not 100 <= status <= 599
        or not isinstance(body, str | None)
        or not isinstance(headers, dict)
        or not isinstance(cookies, list)
        or not isinstance(encoded, bool)
    ):
        return _bad_gateway("malformed proxy result")
    try:
        payload = base64.b64decode(body or "", validate=True) if encoded else (body or "").encode()
    except (binascii.Error, ValueError):
        return _bad_gateway("isBase64Encoded with a body that is not base64")
    out = Headers()
    for name, value in headers.items():
        if str(name).lower() not in _DROPPED_RESULT_HEADERS:
            out.add(str(name), str(value))
    for cookie in cookies:
        out.add("Set-Cookie", str(cookie))
    response = Response(payload, status=status, headers=out)
    if "content-type" not in {k.lower() for k in headers} and not payload:
        response.headers.pop("Content-Type", None)
    return response


def invoke_v2(
    handler: Handler,
    http_request: Request,
    *,
    path_prefix: str = "",
    path: str | None = None,
    bearer_token: str | None = None,
    context: Any = None,
) -> Response:
    """Run ``handler`` on ``http_request`` as API Gateway (payload 2.0) would; never raises.

    ``path_prefix``, ``path`` and ``bearer_token`` are those of :func:`build_event`.
    """
    event = build_event(http_request, path_prefix=path_prefix, path=path, bearer_token=bearer_token)
    try:
        result = handler(event, context)
    except Exception:
        log.exception(json.dumps({"event": "apigw_handler_raised", "path": event["rawPath"]}))
        return _bad_gateway("the handler raised")
    return to_response(result)


def invoke_as(handler: Handler, http_request: Request, *, path: str, access_token: str) -> Response:
    """Call ``handler`` at API ``path`` on behalf of a signed-in web session.

    For the web app's own same-origin, CSRF-protected routes (e.g. the watch
    page's grant renewal): the event carries the session's Cognito access
    token as ``Authorization: Bearer``, so the handler judges it exactly as it
    judges an API client, and none of the browser's cookies; the token never
    reaches page JavaScript. The request's method, query and body are kept.
    """
    return invoke_v2(handler, http_request, path=path, bearer_token=access_token)


def _pick(handlers: Mapping[str, Handler], path: str) -> Handler | None:
    """The handler of the longest prefix that ``path`` starts with (at a segment boundary)."""
    best: tuple[int, Handler] | None = None
    for prefix, candidate in handlers.items():
        stem = prefix.rstrip("/")
        if (path == stem or path.startswith(stem + "/")) and (best is None or len(stem) > best[0]):
            best = (len(stem), candidate)
    return best[1] if best else None


def api_blueprint(
    handlers: Handler | Mapping[str, Handler],
    *,
    url_prefix: str = "/api",
    name: str = "api",
) -> Blueprint:
    """A Blueprint answering every method under ``url_prefix`` through the shim.

    ``handlers`` is one Lambda handler, or a mapping of path prefixes (such as
    ``{"/api": viewer, "/api/admin": admin}``) to handlers, the longest matching
    prefix winning; a path no prefix covers is a JSON 404. The handler sees the
    full path (``/api/...``), exactly as behind API Gateway. Flask's automatic
    OPTIONS answer is off: the handler decides every method.
    """
    table: Mapping[str, Handler] = {url_prefix: handlers} if callable(handlers) else dict(handlers)
    blueprint = Blueprint(name, __name__, url_prefix=url_prefix)

    def proxy(path: str = "") -> Response:
        handler = _pick(table, request.path)
        if handler is None:
            return Response(
                json.dumps({"error": "not_found", "message": "no route"}),
                status=404,
                content_type="application/json",
            )
        return invoke_v2(handler, request)

    proxy.csrf_exempt = True  # type: ignore[attr-defined]  # bearer-token API, no cookies
    for rule in ("", "/", "/<path:path>"):
        blueprint.add_url_rule(
            rule,
            endpoint="proxy" if rule == "/<path:path>" else f"proxy_root{len(rule)}",
            view_func=proxy,
            methods=METHODS,
            provide_automatic_options=False,
            strict_slashes=False,
        )
    return blueprint


def mount_api(
    app: Flask, handlers: Handler | Mapping[str, Handler], *, url_prefix: str = "/api"
) -> None:
    """Register :func:`api_blueprint` on ``app``: ``/api/...`` answered by the Lambda handlers."""
    app.register_blueprint(api_blueprint(handlers, url_prefix=url_prefix))
