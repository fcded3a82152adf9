"""CSRF protection for every state-changing form and same-origin JSON request.

A page gets a token derived from a secret: ``HMAC-SHA256(app secret,
secret)``, masked with a fresh one-time pad on every render (so the token in
a compressed page changes each time, against BREACH-style guessing). The
secret is, for a signed-in session, its own random CSRF secret kept
server-side in the session (renewed at sign-in); for an anonymous visitor,
who has no server-side session, a random nonce in its own cookie
(:data:`NONCE_COOKIE`, HttpOnly, SameSite=Lax), so anonymous pages with a
form write nothing server-side (docs/sessions.md#c-1). Forms send the token in
the hidden field ``csrf_token`` (Jinja global ``csrf_token()``); JSON
``fetch()`` calls send it in the ``X-CSRF-Token`` header, read from
``<meta name="csrf-token">``. For unsafe methods the ``Origin`` header (or,
when absent, ``Referer``) must also be this site when present; a browser
that sends neither relies on the token alone. ``/api/*`` is exempt: the
bearer-token API uses no cookies, so it cannot be forged cross-site.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from typing import TypeVar
from urllib.parse import urlsplit

from flask import Flask, current_app, g, request
from werkzeug.wrappers import Response

from app.errors import ForbiddenError
from app.web.context import web
from app.web.session_store import CSRF_SECRET, current_session

FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
NONCE_COOKIE = "vidgate_csrf"
NONCE_LIFETIME_SECONDS = 24 * 3600
"""An anonymous form older than this (its nonce cookie gone) is refused as expired."""
_ANONYMOUS = "pre-session:"
"""Prefix of an anonymous binding: never equal to a session secret (those have no ':')."""
_NONCE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_PAD_BYTES = 32
_DEFAULT_PORTS = {"http": 80, "https": 443}

F = TypeVar("F", bound=Callable[..., object])


class CsrfError(ForbiddenError):
    """The request lacks a valid CSRF token, or comes from another origin: 403 ``csrf``."""

    code = "csrf"
    friendly = (
        "This form has expired or was sent from another site. "
        "Go back, reload the page and try again."
    )


# --------------------------------------------------------------------------- pure core


def _expected(key: bytes, session_secret: str) -> bytes:
    return hmac.new(key, b"vidgate-csrf:" + session_secret.encode(), hashlib.sha256).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def generate_token(key: bytes, session_secret: str) -> str:
    """A fresh masked token for the session whose CSRF secret is ``session_secret``."""
    pad = secrets.token_bytes(_PAD_BYTES)
    raw = pad + _xor(pad, _expected(key, session_secret))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def validate_token(key: bytes, session_secret: str, token: object) -> bool:
    """True iff ``token`` was made by :func:`generate_token` for this key and secret."""
    if not isinstance(token, str) or not session_secret or len(token) > 128:
        return False
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return False
    if len(raw) != 2 * _PAD_BYTES:
        return False
    pad, masked = raw[:_PAD_BYTES], raw[_PAD_BYTES:]
    return hmac.compare_digest(_xor(pad, masked), _expected(key, session_secret))


def origin_of(url: str | None) -> str | None:
    """``scheme://host[:port]`` of ``url`` (lower case, default port dropped), or None."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def same_origin(origin: str | None, referer: str | None, allowed: Iterable[str]) -> bool:
    """Whether the request's ``Origin`` (else ``Referer``) is one of ``allowed``.

    Absent both, the answer is True: the token check still applies.
    ``Origin: null`` (sandboxed or privacy-redirected) is refused.
    """
    allowed_set = {o for o in (origin_of(a) for a in allowed) if o}
    if origin is not None:
        return origin_of(origin) in allowed_set
    if referer:
        return origin_of(referer) in allowed_set
    return True


# --------------------------------------------------------------------------- Flask glue


def _cookie_nonce() -> str:
    """This browser's anonymous nonce: set earlier in this request, else from its cookie."""
    if g.get("csrf_new_nonce"):
        return str(g.csrf_new_nonce)
    if g.get("csrf_drop_nonce"):
        return ""
    nonce = request.cookies.get(NONCE_COOKIE, "")
    return nonce if _NONCE.fullmatch(nonce) else ""


def _binding() -> str:
    """What this request's tokens are bound to ("" when nothing: every token is refused)."""
    opened = current_session()
    if opened is None:
        return ""
    if opened.server_side:
        secret = opened.get(CSRF_SECRET)
        return secret if isinstance(secret, str) else ""
    nonce = _cookie_nonce()
    return _ANONYMOUS + nonce if nonce else ""


def renew_secret() -> str:
    """Give this (signed-in) session a new CSRF secret: tokens from before stop counting.

    The anonymous nonce cookie is retired with it; after sign-out a new one is made.
    """
    opened = current_session()
    if opened is None:
        raise RuntimeError("no session is opened on this path")
    secret = secrets.token_urlsafe(32)
    opened[CSRF_SECRET] = secret
    g.csrf_drop_nonce = True
    g.pop("csrf_new_nonce", None)
    return secret


def csrf_token() -> str:
    """The token for this request (a Jinja global); makes the secret or nonce if needed."""
    opened = current_session()
    if opened is not None and opened.server_side:
        secret = opened.get(CSRF_SECRET)
        return generate_token(
            web().secret_key, secret if isinstance(secret, str) and secret else renew_secret()
        )
    nonce = _cookie_nonce()
    if not nonce:
        nonce = g.csrf_new_nonce = secrets.token_urlsafe(32)
    return generate_token(web().secret_key, _ANONYMOUS + nonce)


def csrf_exempt(view: F) -> F:
    """Mark a view as exempt (e.g. a callback that only reads); use sparingly."""
    view.csrf_exempt = True  # type: ignore[attr-defined]
    return view


def protect() -> None:
    """``before_request`` (after the session is loaded): refuse forged unsafe requests."""
    if request.method in SAFE_METHODS or request.path.startswith("/api/"):
        return
    if request.routing_exception is not None:
        return  # a 404/405 follows; nothing would run
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, "csrf_exempt", False):
        return
    allowed = [request.host_url, web().base_url]
    if not same_origin(request.headers.get("Origin"), request.headers.get("Referer"), allowed):
        raise CsrfError("cross-origin request refused")
    token = request.headers.get(HEADER) or request.form.get(FORM_FIELD)
    if not validate_token(web().secret_key, _binding(), token):
        raise CsrfError("missing or invalid CSRF token")


def set_nonce_cookie(response: Response) -> Response:
    """``after_request``: hand out the nonce a page's token was bound to, or retire it."""
    interface = current_app.session_interface
    domain = interface.get_cookie_domain(current_app)
    path = interface.get_cookie_path(current_app)
    secure = interface.get_cookie_secure(current_app)
    if g.get("csrf_new_nonce"):
        response.set_cookie(
            NONCE_COOKIE,
            g.csrf_new_nonce,
            max_age=NONCE_LIFETIME_SECONDS,
            domain=domain,
            path=path,
            secure=secure,
            samesite="Lax",
            httponly=True,
        )
    elif g.get("csrf_drop_nonce") and NONCE_COOKIE in request.cookies:
        response.delete_cookie(
            NONCE_COOKIE, domain=domain, path=path, secure=secure, samesite="Lax", httponly=True
        )
    return response


def init_app(app: Flask) -> None:
    app.before_request(protect)
    app.after_request(set_nonce_cookie)
    app.jinja_env.globals["csrf_token"] = csrf_token
