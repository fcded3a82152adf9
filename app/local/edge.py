"""The local CloudFront edge: the front door of the local stack, as one distribution is in AWS.

A WSGI stand-in for the vidgate distribution in ``vidgate dev`` and the tests.
Its cache behaviours:

* ``/posters/*``: the private bucket, public (a behaviour without signers);
* ``/videos/*``: the private bucket, only to a valid CloudFront signed URL or
  signed cookies from a key of the trusted key group;
* everything else (the default behaviour): the web app, through
  :class:`app.local.proxy.OriginProxy`, bodies streamed both ways.

In front of every behaviour, as the site's web ACL is in AWS, a
:class:`~app.local.ratelimiter.RateLimiter` answers 429 to a client address past
a limit of :mod:`app.ratelimits`; behind every behaviour, as the managed
``SecurityHeadersPolicy`` is, the security headers are added to each response.

Without a web-app origin the whole distribution is the bucket (every path
signed but the public prefixes), as the media-only tests use it. The bucket is
read with the edge's own S3 client, as CloudFront reads through its origin
access. The signature rules, the order of checks, the refusal codes and where
the edge differs from CloudFront are in docs/local-edge.md.
"""

from __future__ import annotations

import contextlib
import email.errors
import email.utils
import ipaddress
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC
from http import HTTPStatus
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from app.local.ports import LOOPBACK, ensure_free
from app.local.proxy import (
    ALLOWED_METHODS,
    HEADER_DEFECTS,
    RAW_HEADERS,
    RAW_INPUT,
    Framing,
    FramingError,
    OriginError,
    OriginProxy,
    request_framing,
    request_headers,
)
from app.local.ratelimiter import Limited, RateLimiter
from app.ratelimits import HTML_BODY, JSON_BODY, Answer
from app.signing import (
    MAX_EPOCH,
    SIGNING_PARAMS,
    InvalidObjectKeyError,
    PublicKey,
    cloudfront_b64decode,
    load_public_key,
    path_to_object_key,
    public_key_pem,
)

logger = logging.getLogger("vidgate.edge")

StartResponse = Callable[..., Any]
Headers = list[tuple[str, str]]

MAX_URI_BYTES = 8192  # CloudFront's limit on the request URL
_MEDIA_METHODS = frozenset({"GET", "HEAD"})
# Presence of any of these makes a request a signed-URL request (U-7).
_URL_SIGNING_MARKERS = ("Expires", "Policy", "Signature", "Key-Pair-Id")
_MESSAGES = {
    "MissingKey": "Missing Key-Pair-Id query parameter or cookie value",
    "InvalidKey": "Unknown Key",
    "MalformedPolicy": "Malformed Policy",
    "AccessDenied": "Access denied",
}
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]*")
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.?)+(?::[0-9]{1,5})?")
_HOST_V6 = re.compile(r"\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")
_EPOCH_TEXT = re.compile(r"[0-9]{1,10}")
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.IGNORECASE)
_SHA1 = hashes.SHA1()  # noqa: S303 - CloudFront's default signature hash
_SHA256 = hashes.SHA256()
_PKCS1 = padding.PKCS1v15()
SECURITY_HEADERS: tuple[tuple[str, str, bool], ...] = (
    ("Strict-Transport-Security", "max-age=31536000", False),
    ("X-Content-Type-Options", "nosniff", True),
    ("X-Frame-Options", "SAMEORIGIN", False),
    ("Referrer-Policy", "strict-origin-when-cross-origin", False),
    ("X-XSS-Protection", "1; mode=block", False),
)
"""The managed SecurityHeadersPolicy: (name, value, replaces the origin's own value).

Only ``X-Content-Type-Options`` overrides the origin; for the others the web
app's value wins. HSTS is sent over HTTPS only (RFC 6797 section 7.2), so never
by the plain-HTTP local edge (docs/local-edge.md#security-headers).
"""
_PASSTHROUGH = (
    ("CacheControl", "Cache-Control"),
    ("ContentDisposition", "Content-Disposition"),
    ("ContentEncoding", "Content-Encoding"),
    ("ContentLanguage", "Content-Language"),
)


class _Refusal(Exception):
    """A response that ends request handling: an XML error with a status and a code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str | None = None,
        *,
        reason: str = "",
        headers: Headers | None = None,
    ) -> None:
        super().__init__(reason or code)
        self.status = status
        self.code = code
        self.message = message if message is not None else _MESSAGES.get(code, code)
        self.reason = reason
        self.headers = headers or []


def _deny(code: str, reason: str) -> _Refusal:
    return _Refusal(403, code, reason=reason)


@dataclass(frozen=True)
class _Credentials:
    """The signing values of one request, from its query or its cookies."""

    source: str  # "url" or "cookie"
    key_pair_id: str | None
    signature: str | None
    expires: str | None
    policy: str | None
    hash_algorithm: str | None
    duplicated: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Viewer:
    """The request URL as the viewer sent it, split where CloudFront matches it."""

    scheme: str
    host: str
    path: str
    query: str  # the viewer's own parameters, raw, in order; signing parameters removed

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path}" + (f"?{self.query}" if self.query else "")


# --- policy evaluation (pure) --------------------------------------------------


def glob_match(pattern: str, text: str) -> bool:
    """CloudFront wildcard match: ``*`` is zero or more characters, ``?`` exactly one.

    Iterative with one backtrack point, so the work is at most
    ``len(pattern) * len(text)`` whatever the pattern.
    """
    p = t = 0
    star, mark = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "*":
            star, mark = p, t
            p += 1
        elif p < len(pattern) and pattern[p] in ("?", text[t]):
            p += 1
            t += 1
        elif star != -1:
            p = star + 1
            mark += 1
            t = mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def resource_matches(resource: str, *, scheme: str, host: str, path: str, query: str) -> bool:
    """Whether custom-policy ``resource`` covers the URL, section by section (CP-3).

    The URL is split into protocol, domain, path and query (introduced by
    ``\\?`` in the pattern); a wildcard only matches inside its own section.
    A trailing ``*`` in the path implies ``\\?*``; a trailing ``*`` in the
    domain implies ``/*\\?*``; ``*example.com`` means ``*://*example.com/``;
    ``*`` alone matches every URL. Without a query section, the URL must have
    no query (other than the signing parameters).
    """
    if resource == "*":
        return True
    if "://" in resource:
        proto, rest = resource.split("://", 1)
    elif resource.startswith("*"):
        proto, rest = "*", resource
    else:
        return False
    domain, slash, tail = rest.partition("/")
    query_pattern: str | None
    if not slash:
        path_pattern, query_pattern = ("/*", "*") if domain.endswith("*") else ("/", None)
    else:
        path_pattern, escaped, query_text = ("/" + tail).partition("\\?")
        implied = "*" if path_pattern.endswith("*") else None
        query_pattern = query_text if escaped else implied
    if not glob_match(proto, scheme) or not glob_match(domain.lower(), host.lower()):
        return False
    if not glob_match(path_pattern, path):
        return False
    return query == "" if query_pattern is None else glob_match(query_pattern, query)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"duplicate key {name!r}")
        result[name] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _epoch_field(condition: Mapping[str, Any], name: str) -> int | None:
    if name not in condition:
        return None
    value = condition[name]
    if not isinstance(value, dict) or set(value) != {"AWS:EpochTime"}:
        raise ValueError(f"{name} must be {{'AWS:EpochTime': n}}")
    epoch = value["AWS:EpochTime"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(f"{name} must be an integer epoch up to {MAX_EPOCH}")
    return epoch


@dataclass(frozen=True)
class CustomPolicy:
    """A parsed custom policy: one statement, ``DateLessThan`` required."""

    resource: str | None
    date_less_than: int
    date_greater_than: int | None
    source_ip: ipaddress.IPv4Network | None

    @classmethod
    def parse(cls, document: bytes) -> CustomPolicy:
        """:raises ValueError: for anything but CloudFront's exact policy shape (CP-1, CP-4)."""
        try:
            doc = json.loads(
                document.decode("utf-8"),
                object_pairs_hook=_reject_duplicate_keys,
                parse_constant=_reject_constant,
            )
        except (UnicodeDecodeError, RecursionError) as exc:
            raise ValueError(f"policy is not JSON: {exc}") from exc
        if not isinstance(doc, dict) or set(doc) != {"Statement"}:
            raise ValueError("policy must be {'Statement': [...]}")
        statements = doc["Statement"]
        if isinstance(statements, dict):  # the 2023 URL docs' object form
            statements = [statements]
        if not isinstance(statements, list) or len(statements) != 1:
            raise ValueError("policy must hold exactly one statement")
        statement = statements[0]
        if not isinstance(statement, dict) or not {"Condition"} <= set(statement) <= {
            "Resource",
            "Condition",
        }:
            raise ValueError("a statement has a Condition and optionally a Resource, nothing else")
        resource = statement.get("Resource")
        if resource is not None and (
            not isinstance(resource, str)
            or not (resource == "*" or resource.startswith(("http://", "https://", "*")))
        ):
            raise ValueError("Resource must be a string starting with http://, https:// or *")
        condition = statement["Condition"]
        if not isinstance(condition, dict) or not set(condition) <= {
            "DateLessThan",
            "DateGreaterThan",
            "IpAddress",
        }:
            raise ValueError("Condition may hold only DateLessThan, DateGreaterThan, IpAddress")
        date_less_than = _epoch_field(condition, "DateLessThan")
        if date_less_than is None:
            raise ValueError("DateLessThan is required")
        source_ip = None
        if "IpAddress" in condition:
            ip = condition["IpAddress"]
            if (
                not isinstance(ip, dict)
                or set(ip) != {"AWS:SourceIp"}
                or not isinstance(ip["AWS:SourceIp"], str)
            ):
                raise ValueError("IpAddress must be {'AWS:SourceIp': 'a.b.c.d/n'}")
            text = ip["AWS:SourceIp"]
            if "/" not in text:
                raise ValueError("AWS:SourceIp must be a CIDR (a single host is /32)")
            source_ip = ipaddress.IPv4Network(text, strict=False)  # ValueError for IPv6 too
        return cls(resource, date_less_than, _epoch_field(condition, "DateGreaterThan"), source_ip)


def _verify(key: PublicKey, algorithm: str, signature: bytes, message: bytes) -> bool:
    digest = _SHA256 if algorithm == "SHA256" else _SHA1
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, _PKCS1, digest)
        else:
            key.verify(signature, message, ec.ECDSA(digest))
    except (InvalidSignature, ValueError):
        return False
    return True


def _canned_policy(resource: str, expires: int) -> bytes:
    # Byte-for-byte what botocore's build_policy emits for a canned policy (P-1).
    return (
        '{"Statement":[{"Resource":'
        + json.dumps(resource)
        + ',"Condition":{"DateLessThan":{"AWS:EpochTime":'
        + str(expires)
        + "}}}]}"
    ).encode("utf-8")


# --- HTTP helpers --------------------------------------------------------------


def _split_query(raw_query: str) -> tuple[str, dict[str, list[str]]]:
    own: list[str] = []
    signing: dict[str, list[str]] = {}
    for piece in raw_query.split("&") if raw_query else []:
        name, _, value = piece.partition("=")
        if name in SIGNING_PARAMS:
            signing.setdefault(name, []).append(value)
        else:
            own.append(piece)
    return "&".join(own), signing


def _parse_cookies(header: str) -> dict[str, str]:
    # Browsers send the cookie of the most specific Path first, so the first one wins.
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, eq, value = part.strip().partition("=")
        if eq and name.startswith("CloudFront-") and name not in cookies:
            cookies[name] = value.strip()
    return cookies


_UNSATISFIABLE = (-1, -1)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range to serve, ``None`` for the whole object, or ``(-1, -1)`` for 416.

    Only one ``bytes=`` range is honoured; a malformed header or several
    ranges mean the whole object (V-1: CloudFront answers 200 to invalid ranges).
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match:
        return None
    first_text, last_text = match.groups()
    try:
        first = int(first_text) if first_text else None
        last = int(last_text) if last_text else None
    except ValueError:  # more digits than int() parses
        return None
    if first is None:
        if last is None:
            return None
        if last == 0 or size == 0:
            return _UNSATISFIABLE
        return max(0, size - last), size - 1
    if last is not None and last < first:
        return None
    if first >= size:
        return _UNSATISFIABLE
    return first, size - 1 if last is None else min(last, size - 1)


def _http_date(value: Any) -> str | None:
    try:
        return email.utils.format_datetime(value.astimezone(UTC), usegmt=True)
    except (TypeError, ValueError, AttributeError):
        return None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _status_line(status: int) -> str:
    return f"{status} {_phrase(status)}"


def _request_target(environ: Mapping[str, Any]) -> str:
    """The raw request target in origin form (path and query), checked as CloudFront would."""
    raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw_uri is None:  # a WSGI server that keeps no raw URI: rebuild a canonical one
        path = quote(environ.get("PATH_INFO", "").encode("latin-1"), safe="/")
        query = environ.get("QUERY_STRING", "")
        raw_uri = path + (f"?{query}" if query else "")
    if len(raw_uri) > MAX_URI_BYTES:
        raise _Refusal(414, "UriTooLong", "Request-URI Too Large", reason=f"{len(raw_uri)} bytes")
    if not _PRINTABLE_ASCII.fullmatch(raw_uri):
        raise _Refusal(400, "InvalidURI", "Invalid URI", reason="non-ASCII or blank in the URI")
    if raw_uri.startswith(("http://", "https://")):  # absolute-form request target
        after_scheme = raw_uri.split("://", 1)[1]
        raw_uri = "/" + after_scheme.partition("/")[2]
    return str(raw_uri)


def _raw_path(environ: Mapping[str, Any]) -> str:
    """The raw path the behaviours are matched on; "" when the target itself is refused."""
    try:
        return _request_target(environ).partition("?")[0]
    except _Refusal:
        return ""  # the default behaviour refuses it just the same


def _bad_request(exc: FramingError) -> _Refusal:
    return _Refusal(exc.status, "BadRequest", "Bad request.", reason=exc.reason)


def _framing(environ: Mapping[str, Any], headers: Headers) -> Framing:
    try:
        return request_framing(environ, headers)
    except FramingError as exc:
        raise _bad_request(exc) from None


def _check_method(method: str, framing: Framing, allowed: frozenset[str]) -> None:
    """The behaviour's allowed methods; a GET with a body is refused, as CloudFront does."""
    if method not in allowed:
        raise _Refusal(
            403,
            "MethodNotAllowed",
            "This distribution is not configured to allow the HTTP request method "
            "that was used for this request.",
            reason=f"method {method}",
            headers=[("Allow", ", ".join(sorted(allowed)))],
        )
    if method == "GET" and framing.has_body:
        raise _Refusal(403, "GetWithBody", "A GET request may not carry a body.", reason="body")


def with_security_headers(headers: Headers, *, https: bool) -> Headers:
    """``headers`` plus the :data:`SECURITY_HEADERS` the response lacks (or must override)."""
    result = list(headers)
    present = {name.lower() for name, _ in result}
    for name, value, override in SECURITY_HEADERS:
        if name == "Strict-Transport-Security" and not https:
            continue
        if override:
            result = [(n, v) for n, v in result if n.lower() != name.lower()]
        elif name.lower() in present:
            continue
        result.append((name, value))
    return result


def rate_limited_response(limited: Limited) -> tuple[int, Headers, Iterable[bytes]]:
    """The 429 of the refusing rule: its JSON or HTML body (as in the web ACL), ``Retry-After``."""
    if limited.rule.answer is Answer.JSON:
        body, content_type = JSON_BODY.encode(), "application/json"
    else:
        body, content_type = HTML_BODY.encode(), "text/html; charset=utf-8"
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Retry-After", str(limited.retry_after)),
        ("Cache-Control", "no-store"),
    ]
    return 429, headers, [body]


def _abort_connection(environ: Mapping[str, Any]) -> None:
    """Cut the viewer's connection (after a broken origin body) so it cannot look complete."""
    connection = environ.get("werkzeug.socket")
    if isinstance(connection, socket.socket):
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)


class _S3Stream:
    """A WSGI body reading an S3 StreamingBody ``chunk_size`` bytes at a time, then closing it."""

    def __init__(self, body: Any, chunk_size: int, key: str) -> None:
        self._body = body
        self._chunk_size = chunk_size
        self._key = key

    def __iter__(self) -> Iterator[bytes]:
        try:
            while True:
                chunk = self._body.read(self._chunk_size)
                if not chunk:
                    return
                yield chunk
        except (BotoCoreError, OSError) as exc:
            # Headers are gone already; end the body short so the client sees the failure.
            logger.warning("origin read failed mid-stream for %r: %s", self._key, exc)

    def close(self) -> None:
        self._body.close()


# --- the WSGI app --------------------------------------------------------------


class EdgeApp:
    """The local CloudFront distribution as a WSGI app (see the module docstring).

    ``trusted_keys`` is the key group: key id → public key (object or PEM),
    parsed once here. ``public_prefixes`` are object-key prefixes served without
    a signature (a cache behaviour without trusted signers). With ``origin`` (the
    web app), only paths under ``media_prefixes`` go to the bucket and every
    other request is proxied there; without it, every path is the bucket's.
    With ``rate_limiter``, a client address past a limit gets 429 before any
    behaviour sees its request.
    """

    def __init__(
        self,
        *,
        s3_client: Any,
        bucket: str,
        trusted_keys: Mapping[str, PublicKey | bytes | str],
        public_prefixes: tuple[str, ...] = ("posters/",),
        origin: OriginProxy | None = None,
        media_prefixes: tuple[str, ...] = ("videos/", "posters/"),
        clock: Callable[[], float] = time.time,
        chunk_size: int = 1024 * 1024,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        for prefixes in (public_prefixes, media_prefixes):
            if any(not prefix or prefix.startswith("/") for prefix in prefixes):
                raise ValueError("prefixes are non-empty object-key prefixes without a leading '/'")
        if origin is not None and not all(
            public.startswith(tuple(media_prefixes)) for public in public_prefixes
        ):
            raise ValueError("with a web-app origin, public prefixes must be media prefixes too")
        self._s3 = s3_client
        self._bucket = bucket
        # A PEM round trip validates key objects too (RSA-2048 / P-256 public keys only).
        self._keys: dict[str, PublicKey] = {
            key_id: load_public_key(key if isinstance(key, bytes | str) else public_key_pem(key))
            for key_id, key in trusted_keys.items()
        }
        self._public_prefixes = tuple(public_prefixes)
        self._origin = origin
        # Path patterns like CloudFront's ("videos/*"): matched on the raw path, case-sensitive.
        self._media_paths = tuple("/" + prefix for prefix in media_prefixes)
        self._clock = clock
        self._chunk_size = chunk_size
        self._limiter = rate_limiter

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        raw_path = _raw_path(environ)
        to_origin = self._origin is not None and not raw_path.startswith(self._media_paths)
        https = environ.get("wsgi.url_scheme") == "https"
        limited = self._rate_limit(environ, method, raw_path)
        if limited is not None:
            status, refusal_headers, refusal_body = rate_limited_response(limited)
            start_response(
                _status_line(status), with_security_headers(refusal_headers, https=https)
            )
            return [] if method == "HEAD" else refusal_body
        try:
            if to_origin:
                status_line, headers, body = self._proxy(environ, method)
            else:
                status, headers, body = self._handle(environ, method)
                status_line = _status_line(status)
        except _Refusal as refusal:
            if refusal.status >= 500:
                logger.warning("edge %s: %s", refusal.code, refusal.reason)
            else:
                logger.info("edge refused (%s): %s", refusal.code, refusal.reason)
            status, headers, body = self._error(refusal, page=to_origin)
            status_line = _status_line(status)
        except Exception:
            logger.exception("edge failed on %s %s", method, environ.get("RAW_URI", ""))
            failure = _Refusal(500, "InternalError", "Internal error")
            status, headers, body = self._error(failure, page=to_origin)
            status_line = _status_line(status)
        start_response(status_line, with_security_headers(headers, https=https))
        if method == "HEAD":
            if hasattr(body, "close"):
                body.close()
            return []
        return body

    def _rate_limit(self, environ: dict[str, Any], method: str, raw_path: str) -> Limited | None:
        # The front door: the socket's peer is the client (no proxy stands before the edge).
        if self._limiter is None:
            return None
        client = str(environ.get("REMOTE_ADDR", ""))
        limited = self._limiter.check(client, method, raw_path)
        if limited is not None and limited.first:
            logger.info(
                "edge rate limit %r: %s is over %d requests in %d s; 429 for %d s",
                limited.rule.name,
                client,
                limited.rule.limit,
                limited.rule.window_seconds,
                limited.retry_after,
            )
        return limited

    @staticmethod
    def _error(refusal: _Refusal, *, page: bool = False) -> tuple[int, Headers, Iterable[bytes]]:
        """CloudFront's XML error body, or for the web app's paths, an HTML error page."""
        if page:
            title = f"{refusal.status} ERROR"
            body = (
                '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                "<title>ERROR: The request could not be satisfied</title></head><body>"
                f"<h1>{escape(title)}</h1><h2>The request could not be satisfied.</h2>"
                f"<p>{escape(refusal.message)}</p>"
                "<hr><p>Generated by the vidgate local edge (a CloudFront stand-in).</p>"
                "</body></html>\n"
            ).encode()
            content_type = "text/html; charset=utf-8"
        else:
            body = (
                '<?xml version="1.0" encoding="UTF-8"?><Error><Code>'
                + escape(refusal.code)
                + "</Code><Message>"
                + escape(refusal.message)
                + "</Message></Error>"
            ).encode("utf-8")
            content_type = "text/xml"
        headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            *refusal.headers,
        ]
        return refusal.status, headers, [body]

    # -- the web app (default behaviour)

    def _proxy(self, environ: dict[str, Any], method: str) -> tuple[str, Headers, Iterable[bytes]]:
        assert self._origin is not None
        headers = request_headers(environ)
        framing = _framing(environ, headers)
        _check_method(method, framing, ALLOWED_METHODS)
        target = _request_target(environ)
        viewer, _ = self._viewer(environ)
        try:
            answer = self._origin.forward(
                environ,
                method=method,
                target=target,
                headers=self._origin.upstream_headers(
                    headers,
                    framing=framing,
                    client_ip=str(environ.get("REMOTE_ADDR", "")),
                    scheme=viewer.scheme,
                    host=viewer.host,
                ),
                framing=framing,
                on_broken_body=lambda: _abort_connection(environ),
            )
        except FramingError as exc:
            raise _bad_request(exc) from None
        except OriginError as exc:
            message = (
                "The local edge could not connect to the web app (the origin)."
                if exc.status == 502
                else "The web app (the origin) took too long to answer."
            )
            code = "BadGateway" if exc.status == 502 else "GatewayTimeout"
            raise _Refusal(exc.status, code, message, reason=exc.reason) from None
        reason = answer.reason if _HEADER_VALUE.fullmatch(answer.reason or "") else ""
        status_line = f"{answer.status} {reason or _phrase(answer.status)}"
        return status_line, answer.headers, answer

    # -- request → object key

    def _handle(self, environ: dict[str, Any], method: str) -> tuple[int, Headers, Iterable[bytes]]:
        _check_method(method, _framing(environ, request_headers(environ)), _MEDIA_METHODS)
        viewer, signing = self._viewer(environ)
        try:
            key = path_to_object_key(viewer.path)
        except InvalidObjectKeyError as exc:
            raise _Refusal(400, "InvalidURI", "Invalid URI", reason=str(exc)) from None
        if not key.startswith(self._public_prefixes):
            self._authorize(environ, viewer, signing)
        return self._serve(environ, method, key)

    def _viewer(self, environ: dict[str, Any]) -> tuple[_Viewer, dict[str, list[str]]]:
        raw_uri = _request_target(environ)
        raw_path, _, raw_query = raw_uri.partition("?")
        host = (
            environ.get("HTTP_HOST")
            or f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
        )
        if not (_HOST.fullmatch(host) or _HOST_V6.fullmatch(host)):
            raise _Refusal(400, "InvalidHost", "Invalid Host header", reason=f"host {host!r}")
        query, signing = _split_query(raw_query)
        scheme = str(environ.get("wsgi.url_scheme", "http"))
        return _Viewer(scheme, host.lower(), raw_path, query), signing

    # -- authorization

    @staticmethod
    def _credentials(environ: dict[str, Any], signing: dict[str, list[str]]) -> _Credentials | None:
        if any(name in signing for name in _URL_SIGNING_MARKERS):
            first = {name: values[0] for name, values in signing.items()}
            return _Credentials(
                source="url",
                key_pair_id=first.get("Key-Pair-Id"),
                signature=first.get("Signature"),
                expires=first.get("Expires"),
                policy=first.get("Policy"),
                hash_algorithm=first.get("Hash-Algorithm"),
                duplicated=tuple(name for name, values in signing.items() if len(values) > 1),
            )
        cookies = _parse_cookies(str(environ.get("HTTP_COOKIE", "")))
        if not cookies:
            return None
        return _Credentials(
            source="cookie",
            key_pair_id=cookies.get("CloudFront-Key-Pair-Id"),
            signature=cookies.get("CloudFront-Signature"),
            expires=cookies.get("CloudFront-Expires"),
            policy=cookies.get("CloudFront-Policy"),
            hash_algorithm=cookies.get("CloudFront-Hash-Algorithm"),
        )

    def _authorize(
        self, environ: dict[str, Any], viewer: _Viewer, signing: dict[str, list[str]]
    ) -> None:
        creds = self._credentials(environ, signing)
        if creds is None or not creds.key_pair_id:
            raise _deny("MissingKey", "no key pair id in the query or cookies")
        public_key = self._keys.get(creds.key_pair_id)
        if public_key is None:
            raise _deny("InvalidKey", f"key pair id {creds.key_pair_id!r} is not in the key group")
        if creds.duplicated:
            raise _deny("AccessDenied", f"repeated signing parameters {creds.duplicated}")
        if creds.hash_algorithm is None:
            algorithm = "SHA1"
        elif creds.hash_algorithm == "SHA256":
            algorithm = "SHA256"
        else:
            raise _deny("AccessDenied", f"unknown Hash-Algorithm {creds.hash_algorithm[:40]!r}")
        if not creds.signature:
            raise _deny("AccessDenied", f"no signature in the {creds.source}")
        try:
            signature = cloudfront_b64decode(creds.signature)
        except ValueError:
            raise _deny("AccessDenied", "signature is not CloudFront base64") from None
        if creds.policy is not None and creds.expires is not None:
            raise _deny("AccessDenied", "both Expires and Policy given")
        now = self._clock()
        if creds.policy is not None:
            self._check_custom(public_key, algorithm, signature, creds.policy, viewer, environ, now)
        elif creds.expires is not None:
            self._check_canned(public_key, algorithm, signature, creds.expires, viewer, now)
        else:
            raise _deny("MalformedPolicy", "neither Expires nor Policy given")

    @staticmethod
    def _check_canned(
        key: PublicKey,
        algorithm: str,
        signature: bytes,
        expires_text: str,
        viewer: _Viewer,
        now: float,
    ) -> None:
        if not _EPOCH_TEXT.fullmatch(expires_text) or int(expires_text) > MAX_EPOCH:
            raise _deny("AccessDenied", f"Expires {expires_text[:20]!r} is not an epoch")
        expires = int(expires_text)
        if not _verify(key, algorithm, signature, _canned_policy(viewer.url, expires)):
            raise _deny("AccessDenied", f"canned signature does not match {viewer.url!r}")
        if not now < expires:
            raise _deny("AccessDenied", f"expired at {expires} (now {int(now)})")

    @staticmethod
    def _check_custom(
        key: PublicKey,
        algorithm: str,
        signature: bytes,
        policy_text: str,
        viewer: _Viewer,
        environ: dict[str, Any],
        now: float,
    ) -> None:
        try:
            if not policy_text:
                raise ValueError("empty")
            document = cloudfront_b64decode(policy_text)
        except ValueError:
            raise _deny("MalformedPolicy", "policy is not CloudFront base64") from None
        if not _verify(key, algorithm, signature, document):
            raise _deny("AccessDenied", "custom policy signature does not verify")
        try:
            policy = CustomPolicy.parse(document)
        except ValueError as exc:
            raise _deny("MalformedPolicy", str(exc)) from None
        if policy.resource is not None and not resource_matches(
            policy.resource,
            scheme=viewer.scheme,
            host=viewer.host,
            path=viewer.path,
            query=viewer.query,
        ):
            raise _deny(
                "AccessDenied", f"resource {policy.resource!r} does not cover {viewer.url!r}"
            )
        if not now < policy.date_less_than:
            raise _deny("AccessDenied", f"expired at {policy.date_less_than} (now {int(now)})")
        if policy.date_greater_than is not None and not now > policy.date_greater_than:
            raise _deny(
                "AccessDenied", f"not valid before {policy.date_greater_than} (now {int(now)})"
            )
        if policy.source_ip is not None:
            try:
                address = ipaddress.ip_address(str(environ.get("REMOTE_ADDR", "")))
            except ValueError:
                address = None
            if not isinstance(address, ipaddress.IPv4Address) or address not in policy.source_ip:
                raise _deny("AccessDenied", f"viewer {address} is outside {policy.source_ip}")

    # -- the origin

    def _origin_error(self, exc: Exception, key: str) -> _Refusal:
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchKey", "NotFound", "404") or status == 404:
                return _Refusal(404, "NoSuchKey", "The specified key does not exist.", reason=key)
            if code in ("AccessDenied", "403") or status == 403:
                return _Refusal(
                    403, "AccessDenied", "Access Denied", reason=f"origin refused {key!r}"
                )
            if code in ("PreconditionFailed", "412") or status == 412:
                return _Refusal(
                    503, "SlowDown", "The object changed; retry.", reason=f"{key!r} changed"
                )
            return _Refusal(
                502, "BadGateway", "The origin answered an error.", reason=f"{code} for {key!r}"
            )
        return _Refusal(502, "BadGateway", "The origin could not be reached.", reason=str(exc))

    def _serve(
        self, environ: dict[str, Any], method: str, key: str
    ) -> tuple[int, Headers, Iterable[bytes]]:
        range_header = environ.get("HTTP_RANGE")
        try:
            if method == "GET" and range_header is None:
                got = self._s3.get_object(Bucket=self._bucket, Key=key)
                return (
                    200,
                    self._headers(got, int(got["ContentLength"])),
                    _S3Stream(got["Body"], self._chunk_size, key),
                )
            head = self._s3.head_object(Bucket=self._bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._origin_error(exc, key) from None
        size = int(head["ContentLength"])
        byte_range = parse_range(range_header, size)
        if byte_range is not None and not self._if_range_holds(environ, head):
            byte_range = None
        if byte_range == _UNSATISFIABLE:
            raise _Refusal(
                416,
                "InvalidRange",
                "The requested range is not satisfiable",
                reason=f"{range_header!r} of {size} bytes",
                headers=[("Content-Range", f"bytes */{size}"), ("Accept-Ranges", "bytes")],
            )
        if byte_range is None:
            status, length, extra = 200, size, []
        else:
            first, last = byte_range
            status, length = 206, last - first + 1
            extra = [("Content-Range", f"bytes {first}-{last}/{size}")]
        headers = self._headers(head, length) + extra
        if method == "HEAD":
            return status, headers, []
        request: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if byte_range is not None:
            request["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        if head.get("ETag"):
            request["IfMatch"] = head["ETag"]
        try:
            got = self._s3.get_object(**request)
        except (ClientError, BotoCoreError) as exc:
            raise self._origin_error(exc, key) from None
        return status, headers, _S3Stream(got["Body"], self._chunk_size, key)

    @staticmethod
    def _if_range_holds(environ: dict[str, Any], head: Mapping[str, Any]) -> bool:
        raw = environ.get("HTTP_IF_RANGE")
        if not isinstance(raw, str):
            return True
        validator = raw.strip()
        if validator.startswith(('"', "W/")):
            return bool(validator == head.get("ETag")) and not validator.startswith("W/")
        return validator == _http_date(head.get("LastModified"))

    @staticmethod
    def _headers(meta: Mapping[str, Any], length: int) -> Headers:
        headers = [
            ("Content-Type", str(meta.get("ContentType") or "binary/octet-stream")),
            ("Content-Length", str(length)),
            ("Accept-Ranges", "bytes"),
        ]
        if meta.get("ETag"):
            headers.append(("ETag", str(meta["ETag"])))
        last_modified = _http_date(meta.get("LastModified"))
        if last_modified:
            headers.append(("Last-Modified", last_modified))
        for field, header in _PASSTHROUGH:
            value = meta.get(field)
            if isinstance(value, str):
                headers.append((header, value))
        # Object metadata is not ours to trust: drop what HTTP/1.1 cannot carry.
        return [(name, value) for name, value in headers if _HEADER_VALUE.fullmatch(value)]


# --- the server ----------------------------------------------------------------


_BODY_DEFECTS = (
    email.errors.StartBoundaryNotFoundDefect,
    email.errors.CloseBoundaryNotFoundDefect,
    email.errors.MultipartInvariantViolationDefect,
)
"""What the header parser says about a multipart body it never read (a form upload's
``Content-Type``): not a malformed header block."""


class _EdgeRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler, quiet, handing the edge the request as received.

    The edge frames request bodies itself: werkzeug's environ keeps only the
    last of repeated ``Content-Length`` fields and decodes ``chunked``
    leniently, so the raw fields and the undecoded stream go in the environ.
    Werkzeug closes every connection after one response, so no second request
    ever follows on the same connection.
    """

    def make_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().make_environ()
        environ[RAW_HEADERS] = list(self.headers.items())
        environ[HEADER_DEFECTS] = any(
            not isinstance(defect, _BODY_DEFECTS) for defect in self.headers.defects
        )
        environ["wsgi.input"] = self.rfile
        environ.pop("wsgi.input_terminated", None)
        environ[RAW_INPUT] = True
        return environ

    _defaults_due: frozenset[str] = frozenset()

    def send_response(self, code: int, message: str | None = None) -> None:
        # Server and Date only where the answer has none (a proxied one keeps the web app's).
        self.log_request(code)
        self.send_response_only(code, message)
        self._defaults_due = frozenset({"server", "date"})

    def send_header(self, keyword: str, value: str) -> None:
        self._defaults_due = self._defaults_due - {keyword.lower()}
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        due, self._defaults_due = self._defaults_due, frozenset()
        if "server" in due:
            super().send_header("Server", self.version_string())
        if "date" in due:
            super().send_header("Date", self.date_time_string())
        super().end_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class EdgeServer:
    """A running edge on loopback; ``stop()`` (or leaving the ``with`` block) shuts it down."""

    def __init__(self, server: BaseWSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.port = int(server.server_port)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self) -> EdgeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_edge(app: EdgeApp, port: int = 0) -> EdgeServer:
    """Serve ``app`` on ``127.0.0.1:port`` (0 = any free port) from a background thread.

    :raises app.local.ports.PortBusyError: when ``port`` is taken.
    """
    if port:
        ensure_free(port, "local CloudFront edge")
    server = make_server(LOOPBACK, port, app, threaded=True, request_handler=_EdgeRequestHandler)
    thread = threading.Thread(
        target=server.serve_forever, name=f"vidgate-edge-{server.server_port}", daemon=True
    )
    thread.start()
    return EdgeServer(server, thread)
