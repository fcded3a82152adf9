"""The Flask web app: :func:`create_app` is its composition root.

``create_app()`` with no arguments reads the environment (through
:mod:`app.config`), builds :class:`~app.services.Services` once, and wires
the server-side sessions (Flask's session interface over DynamoDB), sign-in
state, CSRF protection, security headers (a CSP without inline script or
style), and the ONE error handler that turns every error
into a friendly page — or ``{"error": code, "message": text}`` JSON for
``/api`` paths and ``fetch()`` calls. It registers the sign-in blueprint and
every other ``app/web/*_views.py`` module that defines ``blueprint`` (a
:class:`flask.Blueprint`), in name order, so page modules plug in without
editing this file. ``/`` falls back to a placeholder home page when no
blueprint serves it.

``pages`` selects what one app serves. In AWS the viewer pages and the admin
pages are two Lambda functions with two IAM roles (docs/deploy.md), so the
internet-facing viewer function cannot write entitlements or the catalog:
``"viewer"`` is everything but ``/admin`` (and ``/api`` answers with the viewer
API only), ``"admin"`` is the ``/admin`` pages alone (the sign-in pages they
link to are known for building URLs, never served). Locally one process
serves both (``"all"``, the default).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import pkgutil
from pathlib import Path
from typing import Any, Literal

from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from app.config import Need, Settings, load_settings
from app.errors import ConfigurationError, UnauthorizedError, VidgateError
from app.services import Services
from app.web import context, csrf, dates, session_store, signin
from app.web.cognito_client import CognitoClient, HostedUi
from app.web.context import WebContext, wants_json, web
from app.web.envelope import EnvelopeCipher, kms_client
from app.web.session_store import COOKIE_NAME, SessionStore, token_context
from app.web.signin import current_user

log = logging.getLogger("vidgate.web")

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
STATIC = Path(__file__).resolve().parent / "static"
Pages = Literal["all", "viewer", "admin"]
"""What one app serves: the viewer pages, the admin pages, or both (the local web app)."""
VIEWER_NEEDS = frozenset(
    {
        Need.COGNITO,
        Need.TABLES,
        Need.SESSIONS,
        Need.SIGNING,
        Need.WEB,
        Need.BILLING,
        Need.STRIPE_API,
        Need.EVENTS,
    }
)
"""The viewer pages sign grants on the watch page (through the viewer API, in-process)."""
ADMIN_NEEDS = frozenset(
    {Need.COGNITO, Need.TABLES, Need.SESSIONS, Need.MEDIA, Need.WEB, Need.ANALYTICS, Need.BILLING}
)
"""The admin pages sign nothing (no signing key, no CloudFront settings); they start uploads,
write captions and posters in the bucket, query the viewing analytics and set prices."""
NEEDS = VIEWER_NEEDS | ADMIN_NEEDS
NEEDS_OF: dict[Pages, frozenset[Need]] = {
    "all": NEEDS,
    "viewer": VIEWER_NEEDS,
    "admin": ADMIN_NEEDS,
}
ADMIN_VIEWS = "admin"
"""The modules of the ``/admin`` pages (``admin*_views``): only apps with ``pages`` "admin" or
"all" register them."""
MAX_FORM_BYTES = 1024 * 1024

HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "throttled",
    500: "internal",
    503: "unavailable",
}
TITLES = {
    400: "Bad request",
    401: "Please sign in",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    409: "Conflict",
    413: "Too large",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}
FRIENDLY = {
    400: "That request could not be understood.",
    401: "Please sign in to continue.",
    403: "You do not have access to this page.",
    404: "We could not find that page.",
    405: "That action is not allowed here.",
    409: "Someone else changed this at the same time. Reload and try again.",
    413: "That request is too large.",
    429: "Too many requests. Please wait a moment and try again.",
    500: "Something went wrong on our side. Please try again.",
    503: "The service is temporarily unavailable. Please try again in a few minutes.",
}


def default_csp(settings: Settings) -> dict[str, list[str]]:
    """The Content-Security-Policy, as directive -> sources (no inline script or style).

    Other blueprints may add sources through ``app.config["VIDGATE_CSP"]``
    before the first request (e.g. ``["media-src"].append(...)``).
    """
    cdn = [settings.cdn_url] if settings.cdn_url else []
    hosted = [settings.cognito.domain] if settings.cognito and settings.cognito.domain else []
    return {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", *cdn],
        "media-src": ["'self'", "blob:", *cdn],
        "connect-src": ["'self'", *cdn],
        "worker-src": ["'self'"],  # hls.js's worker is a file under /static (workerPath)
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        # Browsers apply form-action to redirects after a POST too (sign-out -> hosted /logout).
        "form-action": ["'self'", *hosted],
        "frame-ancestors": ["'none'"],
    }


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    local_triggers: bool | None = None,
    pages: Pages = "all",
) -> Flask:
    """Build the web app.

    :param settings: validated settings; read from ``os.environ`` when None.
    :param services: the composition root to use; built from ``settings`` when None.
    :param local_triggers: run the Cognito PostConfirmation handler in-process
        after ConfirmSignUp / ConfirmForgotPassword (the emulator fires no
        triggers); default from ``VIDGATE_LOCAL_TRIGGERS=1``.
    :param pages: ``"viewer"`` (every page but ``/admin``), ``"admin"`` (the
        ``/admin`` pages alone) or ``"all"``; see the module docstring.
    :raises ConfigurationError: a missing or malformed setting.
    """
    if pages not in NEEDS_OF:
        raise ConfigurationError(f"pages must be one of {sorted(NEEDS_OF)}, got {pages!r}")
    if settings is None:
        settings = load_settings(os.environ, NEEDS_OF[pages])
    if settings.cognito is None:
        raise ConfigurationError("the web app needs the Cognito settings (Need.COGNITO)")
    if not (settings.web_secret_key and settings.sessions_table and settings.session_key_id):
        raise ConfigurationError(
            "the web app needs VIDGATE_SECRET_KEY, VIDGATE_SESSIONS_TABLE"
            " and VIDGATE_SESSION_KEY_ID"
        )
    if local_triggers is None:
        # The local stack sets VIDGATE_LOCAL_TRIGGERS=1 because the emulator
        # fires no Cognito triggers; in AWS, Cognito runs them.
        local_triggers = settings.local_triggers
    services = services or Services(settings)
    cognito_settings = settings.cognito

    app = Flask(
        __name__,
        template_folder=str(TEMPLATES),
        static_folder=str(STATIC),
        static_url_path="/static",
    )
    app.config.update(
        SECRET_KEY=settings.web_secret_key,
        MAX_CONTENT_LENGTH=MAX_FORM_BYTES,
        VIDGATE_CSP=default_csp(settings),
        VIDGATE_ADMIN_URL="/admin",
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",
        # Also Secure on any request that arrives over HTTPS (DynamoSessionInterface).
        SESSION_COOKIE_SECURE=settings.web_base_url.startswith("https://"),
    )

    web_context = WebContext(
        settings=settings,
        services=services,
        cognito=CognitoClient(
            services.cognito_idp,
            cognito_settings.client_id,
            user_pool_id=cognito_settings.user_pool_id,
        ),
        hosted=(
            HostedUi(cognito_settings.domain, cognito_settings.client_id)
            if cognito_settings.domain
            else None
        ),
        local_triggers=local_triggers,
        secret_key=settings.web_secret_key.encode(),
        base_url=settings.web_base_url,
    )
    app.extensions["vidgate.services"] = services
    context.init_app(app, web_context)
    # The session's Cognito tokens are sealed with KMS data keys (docs/sessions.md).
    cipher = EnvelopeCipher(
        kms_client(services.session),
        settings.session_key_id,
        context=token_context(settings.sessions_table),
    )
    # Static files and the bearer-token API never read the session.
    session_store.init_app(
        app,
        SessionStore(services.dynamodb, settings.sessions_table, cipher=cipher),
        sessionless=(f"{app.static_url_path}/", "/api/", "/webhooks/"),
    )
    signin.init_app(app)
    csrf.init_app(app)
    app.after_request(_security_headers)
    app.register_error_handler(Exception, handle_error)
    app.context_processor(_template_context)
    dates.init_app(app)

    from app.web.auth_views import blueprint as auth_blueprint

    if pages == "admin":
        # The admin pages link to sign-in, account and sign-out, which the viewer function serves.
        _register_links_only(app, auth_blueprint)
    else:
        _mount_api(app, services, with_admin=pages == "all")
        app.register_blueprint(auth_blueprint)
    for module in _view_modules(pages):
        blueprint = getattr(module, "blueprint", None)
        if blueprint is not None:
            app.register_blueprint(blueprint)
    if pages != "admin" and not any(rule.rule == "/" for rule in app.url_map.iter_rules()):
        app.add_url_rule("/", "home", _home)
    return app


def _mount_api(app: Flask, services: Services, *, with_admin: bool) -> None:
    """``/api`` answered by the Lambda handlers through the API Gateway v2 shim.

    Locally this is the HTTP API, the same code as in AWS; one warmed handler per
    app. In AWS the API's routes reach the handler functions first and only the
    paths no route claims fall through to the viewer web function: there the
    admin API is not mounted, so ``/api/admin/...`` never runs with its role.
    """
    from app.http.viewer import make_handler as viewer_handler
    from app.web.apigw import Handler, mount_api

    viewer = viewer_handler(services)
    app.extensions["vidgate.viewer_api"] = viewer
    handlers: dict[str, Handler] = {"/api": viewer}
    if with_admin:
        from app.http.admin import make_handler as admin_handler

        handlers["/api/admin"] = admin_handler(services)
    mount_api(app, handlers)
    if services.settings.stripe_webhook_secret_id:
        # Stripe webhooks (docs/selling.md#webhooks): in AWS their own function and route.
        from app.http.webhooks import make_handler as webhook_handler
        from app.web.apigw import api_blueprint

        app.register_blueprint(
            api_blueprint(webhook_handler(services), url_prefix="/webhooks", name="webhooks")
        )


def _register_links_only(app: Flask, blueprint: Blueprint) -> None:
    """Make ``url_for`` build ``blueprint``'s URLs in ``app`` without serving any of them."""
    scratch = Flask(__name__, static_folder=None)
    scratch.register_blueprint(blueprint)
    for rule in scratch.url_map.iter_rules():
        if rule.endpoint.startswith(f"{blueprint.name}."):
            app.add_url_rule(rule.rule, rule.endpoint, methods=rule.methods, build_only=True)


def _view_modules(pages: Pages = "all") -> list[Any]:
    """The ``app/web/*_views.py`` modules ``pages`` serves (never ours), in name order."""
    names = sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).resolve().parent)])
        if info.name.endswith("_views") and info.name != "auth_views"
    )
    if pages == "viewer":
        names = [name for name in names if not name.startswith(ADMIN_VIEWS)]
    elif pages == "admin":
        names = [name for name in names if name.startswith(ADMIN_VIEWS)]
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


def _home() -> str:
    return render_template("home.html")


def _admin_url() -> str:
    try:
        return url_for("admin.index")
    except BuildError:
        return str(current_app.config.get("VIDGATE_ADMIN_URL", "/admin"))


def _template_context() -> dict[str, Any]:
    user = current_user()
    return {
        "current_user": user,
        "is_admin": bool(user and user.is_admin),
        "admin_url": _admin_url() if user and user.is_admin else None,
        "hosted_ui": web().hosted is not None,
    }


def _security_headers(response: Response) -> Response:
    directives = current_app.config["VIDGATE_CSP"]
    # A page may widen one directive for itself (the upload page: the bucket's endpoint).
    for name, sources in (g.get("csp_extra") or {}).items():
        directives = {**directives, name: [*directives.get(name, []), *sources]}
    response.headers["Content-Security-Policy"] = "; ".join(
        f"{name} {' '.join(sources)}" for name, sources in directives.items()
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if current_app.session_interface.get_cookie_secure(current_app):
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    if request.endpoint != "static" and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


def _describe(exc: BaseException) -> tuple[int, str, str]:
    """(status, stable code, friendly sentence) for any exception."""
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        return (
            status,
            HTTP_ERROR_CODES.get(status, "http_error"),
            FRIENDLY.get(status, FRIENDLY[400] if status < 500 else FRIENDLY[500]),
        )
    if isinstance(exc, VidgateError):
        status = exc.status
        friendly = getattr(exc, "friendly", None) or FRIENDLY.get(status, FRIENDLY[400])
        return status, exc.code, str(friendly)
    return 500, "internal", FRIENDLY[500]


def handle_error(exc: Exception) -> Response:
    """The one place errors become HTTP: a friendly page, or JSON for API/fetch callers.

    Details go to the log only; the client gets a status, a stable code and a sentence.
    """
    if isinstance(exc, InternalServerError) and isinstance(exc.original_exception, Exception):
        # Flask hands an error raised while finishing a response (saving the
        # session) to the 500 handler, wrapped: answer for its cause.
        exc = exc.original_exception
    status, code, friendly = _describe(exc)
    if status >= 500:
        if isinstance(exc, VidgateError | HTTPException):
            log.warning(
                json.dumps(
                    {
                        "event": "error",
                        "status": status,
                        "code": code,
                        "detail": str(exc)[:300],
                        "path": request.path,
                    }
                )
            )
        else:
            log.exception("unhandled error on %s %s", request.method, request.path)
    headers: dict[str, str] = {}
    if isinstance(exc, HTTPException):
        allow = exc.get_response().headers.get("Allow")
        if allow:
            headers["Allow"] = allow
    if wants_json():
        response = current_app.response_class(
            json.dumps({"error": code, "message": friendly}),
            status=status,
            mimetype="application/json",
            headers=headers,
        )
        return response
    if isinstance(exc, UnauthorizedError) and request.method == "GET":
        target = request.full_path if request.query_string else request.path
        return redirect(url_for("auth.sign_in", next=target))
    try:
        body = render_template(
            "error.html",
            status=status,
            code=code,
            title=TITLES.get(status, "Error"),
            message=friendly,
        )
    except Exception:
        log.exception("error page failed to render")
        body = f"<!doctype html><title>Error</title><p>{FRIENDLY.get(status, FRIENDLY[500])}</p>"
    return current_app.response_class(body, status=status, mimetype="text/html", headers=headers)
