"""The front door's per-client rate limits: the one definition AWS WAF and the local edge share.

:data:`RATE_RULES` are the rate-based rules of the site's web ACL, in priority
order. Each counts the requests of one client address that it matches (by
method and by URI path, percent-decoded and normalised as :func:`normalized_path`
does) over a trailing window, and answers the requests beyond its limit with 429
(a JSON body for the API and the player's grant route, an HTML page for the
rest). :data:`ROUTE_THROTTLES` are the HTTP API's per-route throttles (all
clients together). ``infra/render.py`` writes the web ACL and the stage's
``RouteSettings`` of ``infra/template.yaml`` from this module and the local
edge enforces the same rules per client IP; docs/deploy.md#rate-limits says why
each number is what it is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

WINDOWS_SECONDS = (60, 120, 300, 600)
"""The evaluation windows AWS WAF offers a rate-based rule."""
MIN_LIMIT = 10
"""The lowest limit AWS WAF accepts for a rate-based rule (per window)."""

_NAME = re.compile(r"[a-z][a-z0-9-]{0,40}")


class Answer(StrEnum):
    """What a refused request gets: the API's JSON error, or a page for a person."""

    JSON = "json"
    HTML = "html"


RATE_LIMITED_CODE = "rate_limited"
RATE_LIMITED_MESSAGE = "Too many requests from your address. Please wait a few minutes."
JSON_BODY = json.dumps(
    {"error": RATE_LIMITED_CODE, "message": RATE_LIMITED_MESSAGE}, separators=(",", ":")
)
"""The 429 body on the API: the API's error shape, ``{"error": code, "message": text}``."""
HTML_BODY = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>Too many requests - vidgate</title></head>"
    '<body style="font-family:sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem">'
    "<h1>Too many requests</h1>"
    "<p>We received too many requests from your address in a short time, so we are "
    "pausing them for a few minutes. Your account and your purchases are fine.</p>"
    '<p>Please wait a few minutes, then <a href="/">go back to the videos</a>.</p>'
    "</body></html>"
)
"""The 429 page for everything that is not the API: self-contained (no stylesheet or script)."""


@dataclass(frozen=True)
class PathPattern:
    """A normalised URI path that starts with ``prefix`` and ends with ``suffix``.

    Two independent tests, as the web ACL's two byte matches are: the ends may
    overlap (``/watch/grant`` matches ``/watch/`` + ``/grant``).
    """

    prefix: str
    suffix: str = ""

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/"):
            raise ValueError(f"a path prefix starts with '/', got {self.prefix!r}")

    def matches(self, path: str) -> bool:
        return path.startswith(self.prefix) and path.endswith(self.suffix)


@dataclass(frozen=True)
class RateRule:
    """Per client address: at most ``limit`` matching requests in any ``window_seconds``.

    A request matches when its method is one of ``methods`` (empty: any), its
    normalised path matches one of ``paths`` (empty: any) and none of
    ``except_paths``.
    """

    name: str
    limit: int
    window_seconds: int
    answer: Answer
    why: str
    methods: frozenset[str] = frozenset()
    paths: tuple[PathPattern, ...] = ()
    except_paths: tuple[PathPattern, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"rule name {self.name!r}: lower-case letters, digits and '-'")
        if self.window_seconds not in WINDOWS_SECONDS:
            raise ValueError(f"{self.name}: the window must be one of {WINDOWS_SECONDS} seconds")
        if self.limit < MIN_LIMIT:
            raise ValueError(f"{self.name}: the limit must be at least {MIN_LIMIT}")
        if any(method != method.upper() or not method for method in self.methods):
            raise ValueError(f"{self.name}: methods are upper-case names")

    def applies(self, method: str, path: str) -> bool:
        """Whether a request counts toward this rule; ``path`` from :func:`normalized_path`."""
        if self.methods and method not in self.methods:
            return False
        if self.paths and not any(pattern.matches(path) for pattern in self.paths):
            return False
        return not any(pattern.matches(path) for pattern in self.except_paths)


_API = PathPattern("/api/")
_MEDIA = PathPattern("/videos/")
_API_GRANT = PathPattern("/api/videos/", "/playback")
_PLAYER_GRANT = PathPattern("/watch/", "/grant")

RATE_RULES: tuple[RateRule, ...] = (
    RateRule(
        name="auth",
        limit=20,
        window_seconds=300,
        answer=Answer.HTML,
        why="sign-in, sign-up, confirm, forgot, reset: password guessing and e-mail floods",
        methods=frozenset({"POST"}),
        paths=(PathPattern("/auth/"),),
    ),
    RateRule(
        name="grants",
        limit=300,
        window_seconds=300,
        answer=Answer.JSON,
        why="playback grants: a viewer renews about once per signed-URL lifetime",
        methods=frozenset({"POST"}),
        paths=(_API_GRANT, _PLAYER_GRANT),
    ),
    RateRule(
        name="api",
        limit=1000,
        window_seconds=300,
        answer=Answer.JSON,
        why="the rest of the HTTP API: catalog, account, admin",
        paths=(_API,),
    ),
    RateRule(
        name="site",
        limit=2000,
        window_seconds=300,
        answer=Answer.HTML,
        why="pages, static files and posters; signed media under /videos/ is not counted",
        except_paths=(_API, _MEDIA, _PLAYER_GRANT),
    ),
)
"""The web ACL's rate-based rules, in priority order (the first that refuses answers)."""


@dataclass(frozen=True)
class RouteThrottle:
    """An HTTP API route's own token bucket (requests per second and burst, all clients)."""

    route_key: str
    rate_per_second: int
    burst: int


ROUTE_THROTTLES: tuple[RouteThrottle, ...] = (
    RouteThrottle("POST /auth/{proxy+}", rate_per_second=25, burst=50),
    RouteThrottle("POST /api/videos/{id}/playback", rate_per_second=200, burst=400),
    RouteThrottle("POST /watch/{id}/grant", rate_per_second=200, burst=400),
)
"""Routes with a bucket of their own, so a flood elsewhere cannot use up grants or sign-ins."""


def url_decode(text: str) -> str:
    """WAF's ``URL_DECODE``: ``%XX`` escapes decoded once; ``+`` stays ``+`` (a path is no form)."""
    return unquote(text, errors="replace")


def normalize_path(path: str) -> str:
    """WAF's ``NORMALIZE_PATH``: repeated slashes, ``.`` and ``..`` segments folded away.

    As WAF's, a ``..`` with nothing before it to remove (at the beginning) is kept.
    """
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == ".." and segments and segments[-1] != "..":
            segments.pop()
            continue
        segments.append(segment)
    trailing = "/" if segments and path.endswith(("/", "/.", "/..")) else ""
    return "/" + "/".join(segments) + trailing


def normalized_path(raw_path: str) -> str:
    """The path as the rules see it: :func:`url_decode`, then :func:`normalize_path`.

    The two text transformations the web ACL applies before it matches a path,
    so ``/%61uth//./sign-in`` counts as ``/auth/sign-in``.
    """
    return normalize_path(url_decode(raw_path))


def matching_rules(method: str, raw_path: str) -> list[RateRule]:
    """The rules a request counts toward, in priority order."""
    path = normalized_path(raw_path)
    return [rule for rule in RATE_RULES if rule.applies(method.upper(), path)]
