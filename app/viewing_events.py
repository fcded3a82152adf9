"""Viewing events: the one schema, and the emitter the request paths call.

:class:`ViewingEvents` turns ``emit(type, sub=…, plan=…, …)`` into one
validated, pseudonymous record (the Cognito ``sub`` becomes an HMAC-SHA256
with a secret key; no e-mail, no IP address has a field) and hands it to an
:class:`EventSink`. Emitting never raises and never waits on the network: a
bad event or a missing key is counted and logged, and the sink only queues.
The schema is documented in docs/viewing-events.md. No boto3 and no Flask
here: the Firehose sink and the key's source come in from the composition root.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

log = logging.getLogger("vidgate.viewing_events")

SCHEMA_VERSION = 1


class EventType(StrEnum):
    GRANT = "grant"
    REFUSAL = "refusal"
    START = "start"
    HEARTBEAT = "heartbeat"
    STOP = "stop"
    ERROR = "error"
    UPSELL_VIEW = "upsell_view"


PLANS = frozenset({"free", "premium"})
TIERS = frozenset({"free", "premium"})
FORMATS = frozenset({"hls", "mp4"})

# Every record carries every field, in this order (null when absent), so readers
# (DuckDB, the Glue table) see one stable set of columns. name -> JSON type.
FIELDS: dict[str, str] = {
    "schema_version": "integer",
    "event_id": "string",
    "ts": "string",
    "type": "string",
    "user_pid": "string",
    "plan": "string",
    "video_id": "string",
    "video_tier": "string",
    "session_id": "string",
    "format": "string",
    "reason": "string",
    "position_s": "number",
    "watched_s": "number",
    "startup_ms": "integer",
    "stall_ms": "integer",
    "rendition": "string",
    "bitrate": "integer",
}

# Measures an emit may carry: name -> (kind, upper bound or allowed values).
_MAX_SECONDS = 7 * 24 * 3600.0
_NUMBERS: dict[str, tuple[type, float]] = {
    "position_s": (float, _MAX_SECONDS),
    "watched_s": (float, 24 * 3600.0),
    "startup_ms": (int, 10 * 60 * 1000),
    "stall_ms": (int, 24 * 3600 * 1000),
    "bitrate": (int, 1_000_000_000),
}
_TEXTS = ("reason", "rendition")
_MAX_TEXT = 64
_MAX_ID = 128
KEY_RETRY_SECONDS = 60.0


class InvalidEventError(ValueError):
    """An event that does not fit the schema (counted and logged, never raised to callers)."""


class EventSink(Protocol):
    """Where records go. ``put`` must not block on I/O and must not raise."""

    def put(self, record: Mapping[str, Any]) -> None: ...


class RecordingSink:
    """A sink that keeps every record in memory, for tests."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def put(self, record: Mapping[str, Any]) -> None:
        with self._lock:
            self.records.append(dict(record))

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.records if r["type"] == event_type]


def pseudonym(key: bytes, sub: str) -> str:
    """The pseudonymous user id: HMAC-SHA256 of the Cognito ``sub``, hex."""
    return hmac.new(key, sub.encode("utf-8"), hashlib.sha256).hexdigest()


def iso_ts(seconds: float) -> str:
    """UTC ISO-8601 with milliseconds and ``Z``; sorts as text and as time."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _text(name: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
        raise InvalidEventError(f"{name} must be printable text of 1-{limit} characters")
    return value


def build_record(
    event_type: str,
    *,
    user_pid: str,
    plan: str,
    ts: str,
    event_id: str,
    video_id: str | None = None,
    video_tier: str | None = None,
    session_id: str | None = None,
    **measures: object,
) -> dict[str, Any]:
    """One schema-conforming record; :raises InvalidEventError: naming the first bad field."""
    try:
        kind = EventType(event_type)
    except ValueError:
        raise InvalidEventError(f"unknown event type {event_type!r}") from None
    if plan not in PLANS:
        raise InvalidEventError(f"plan must be one of {sorted(PLANS)}, got {plan!r}")
    if video_tier is not None and video_tier not in TIERS:
        raise InvalidEventError(f"video_tier must be one of {sorted(TIERS)}, got {video_tier!r}")
    if kind is not EventType.UPSELL_VIEW and video_id is None:
        raise InvalidEventError(f"a {kind} event needs a video_id")
    record: dict[str, Any] = dict.fromkeys(FIELDS)
    record.update(
        schema_version=SCHEMA_VERSION,
        event_id=event_id,
        ts=ts,
        type=kind.value,
        user_pid=user_pid,
        plan=plan,
        video_id=None if video_id is None else _text("video_id", video_id, _MAX_ID),
        video_tier=video_tier,
        session_id=None if session_id is None else _text("session_id", session_id, _MAX_ID),
    )
    for name, value in measures.items():
        if value is None:
            continue
        if name == "format":
            if value not in FORMATS:
                raise InvalidEventError(f"format must be one of {sorted(FORMATS)}, got {value!r}")
            record[name] = value
        elif name in _TEXTS:
            record[name] = _text(name, value, _MAX_TEXT)
        elif name in _NUMBERS:
            record[name] = _number(name, value)
        else:
            raise InvalidEventError(f"unknown field {name!r}")
    return record


def _number(name: str, value: object) -> int | float:
    kind, high = _NUMBERS[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEventError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or not 0 <= value <= high:
        raise InvalidEventError(f"{name} must be between 0 and {high:g}, got {value!r}")
    return round(value) if kind is int else round(float(value), 3)


class ViewingEvents:
    """The emitter: validate, pseudonymize, stamp, hand to the sink; never raise, never block.

    :param sink: where records go (the Firehose sink in the app, a recording one in tests).
    :param key: the HMAC key, or a loader called on first use (again at most every
        ``KEY_RETRY_SECONDS`` after a failure; events meanwhile are dropped and counted).
    :param clock: wall-clock seconds for the events' ``ts``.
    :param monotonic: seconds for the key-retry pause.
    """

    def __init__(
        self,
        sink: EventSink,
        key: bytes | Callable[[], bytes],
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self._key: bytes | None = key if isinstance(key, bytes) else None
        self._load_key = None if isinstance(key, bytes) else key
        self._key_failed_at: float | None = None
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.counts = {"emitted": 0, "invalid": 0, "no_key": 0}

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def _key_or_none(self) -> bytes | None:
        if self._key is not None:
            return self._key
        with self._lock:
            if self._key is not None or self._load_key is None:
                return self._key
            failed = self._key_failed_at
            if failed is not None and self._monotonic() - failed < KEY_RETRY_SECONDS:
                return None
            try:
                key = self._load_key()
                if not isinstance(key, bytes) or len(key) < 16:
                    raise ValueError("the viewing-events key must be at least 16 bytes")
            except Exception:
                self._key_failed_at = self._monotonic()
                log.exception("viewing events: HMAC key unavailable; events are dropped")
                return None
            self._key = key
            return key

    def emit(
        self,
        event_type: str,
        *,
        sub: str,
        plan: str,
        video_id: str | None = None,
        video_tier: str | None = None,
        session_id: str | None = None,
        **measures: object,
    ) -> bool:
        """Queue one event; ``True`` if it was handed to the sink. Never raises."""
        try:
            if not isinstance(sub, str) or not sub:
                raise InvalidEventError("sub must be a non-empty string")
            key = self._key_or_none()
            if key is None:
                self._count("no_key")
                return False
            record = build_record(
                event_type,
                user_pid=pseudonym(key, sub),
                plan=plan,
                ts=iso_ts(self._clock()),
                event_id=uuid.uuid4().hex,
                video_id=video_id,
                video_tier=video_tier,
                session_id=session_id,
                **measures,
            )
            self.sink.put(record)
        except InvalidEventError as exc:
            self._count("invalid")
            log.warning("viewing events: invalid %s event dropped: %s", event_type, exc)
            return False
        except Exception:
            self._count("invalid")
            log.exception("viewing events: %s event dropped", event_type)
            return False
        self._count("emitted")
        return True

    def stats(self) -> dict[str, int]:
        """The emitter's counters, plus the sink's own (sent, dropped, …) when it has them."""
        with self._lock:
            counts = dict(self.counts)
        sink_stats = getattr(self.sink, "stats", None)
        if callable(sink_stats):
            counts.update(sink_stats())
        return counts
