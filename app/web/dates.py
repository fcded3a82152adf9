"""How the web pages show a moment: one formatter for every page.

Admin pages show UTC, always the same way (``27 Nov 2026, 16:05 UTC``).
Viewer pages put the same text in ``<time datetime="…Z">`` and
``static/localtime.js`` rewrites it in the viewer's own time zone and
language; without script the UTC text stays.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask

from app.dynamo import format_time

NONE = "—"


def utc_text(moment: datetime | None) -> str:
    """``27 Nov 2026, 16:05 UTC`` (an em dash for None); a naive datetime counts as UTC."""
    if moment is None:
        return NONE
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def utc_day(moment: datetime | None) -> str:
    """``27 Nov 2026`` (the UTC day; an em dash for None)."""
    if moment is None:
        return NONE
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return f"{moment.day} {moment:%b %Y}"


def iso_utc(moment: datetime | None) -> str:
    """``2026-11-27T16:05:00Z``: the ``datetime`` attribute of ``<time>`` (empty for None)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_time(moment)


def format_duration(seconds: float) -> str:
    """``75.4`` → ``"1:15"``; an hour or more → ``"1:02:03"``."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def init_app(app: Flask) -> None:
    """Register the filters ``admin_utc``, ``utc_day`` and ``iso_utc``."""
    app.add_template_filter(utc_text, "admin_utc")
    app.add_template_filter(utc_day, "utc_day")
    app.add_template_filter(iso_utc, "iso_utc")
