"""What the web app builds once (:class:`WebContext`) and how a request reaches it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app, request

if TYPE_CHECKING:
    from app.config import Settings
    from app.services import Services
    from app.web.cognito_client import CognitoClient, HostedUi

EXTENSION = "vidgate.web"


@dataclass
class WebContext:
    """The web layer's collaborators, on ``app.extensions["vidgate.web"]``."""

    settings: Settings
    services: Services
    cognito: CognitoClient
    hosted: HostedUi | None
    local_triggers: bool
    secret_key: bytes
    base_url: str
    clock: Callable[[], float] = time.time


def init_app(app: Flask, context: WebContext) -> None:
    app.extensions[EXTENSION] = context


def web() -> WebContext:
    context: WebContext = current_app.extensions[EXTENSION]
    return context


def current_services() -> Services:
    """The app's :class:`~app.services.Services` (built once per process)."""
    return web().services


def wants_json() -> bool:
    """Answer this request with JSON rather than a page (API paths, fetch() calls)."""
    if request.path.startswith("/api/") or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )
