"""Playback sessions ("streams"): concurrent-stream slots, heartbeats and resume positions.

A viewer's live streams are a map on their own user item (``users`` table),
next to the entitlement the grant reads anyway: ``streams`` (session id →
video, title, device, started, last seen, expiry, position) and a version
``streams_v`` that only opening a stream bumps. So a grant reads the slots
in the read it already makes (:meth:`StreamStore.read_of`, one item of the
batch with the video) and opens a stream with ONE conditional UpdateItem that
adds the new slot, drops the slots it saw dead, and succeeds only if nobody
opened a stream since that read: of many parallel grants, one per version
wins, the losers read again and either fit or get ``too_many_streams``.
A stream is live while now < its expiry (last heartbeat + two heartbeat
intervals), computed from the stored numbers, never from DynamoDB TTL. A
renewal is a conditional update of its own slot (live, same video) that also
records the position in ``watch`` (video id → position, when), the resume
history every device reads. The model, the atomicity argument and the costs
are in docs/playback-sessions.md.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from app.dynamo import (
    Item,
    KeyRead,
    b,
    error_code,
    format_time,
    n,
    s,
    unavailable_on_errors,
    utc_now,
)
from app.errors import (
    BadRequestError,
    DependencyUnavailableError,
    ForbiddenError,
    NotFoundError,
    VidgateError,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from app.entitlements import Entitlement

Plan = Literal["premium", "free"]

DEFAULT_LIMITS: Mapping[Plan, int] = {"premium": 2, "free": 1}
DEFAULT_HEARTBEAT_SECONDS = 60
HISTORY_MAX = 30
"""Resume entries kept per viewer (the oldest goes when a renewal adds one more)."""
SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
_THROTTLED = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"})

# Attribute names behind placeholders (no reserved-word clashes); the read projects these.
_ENTITLEMENT_NAMES = {
    "#id": "user_id",
    "#p": "premium",
    "#pu": "premium_until",
    "#v": "version",
    "#ua": "updated_at",
    "#ub": "updated_by",
    # What Stripe sold (subscription end, purchases and rentals): the rule judges them too.
    "#su": "stripe_until",
    "#pd": "paid",
}
_STREAM_NAMES = {**_ENTITLEMENT_NAMES, "#st": "streams", "#sv": "streams_v"}
_HISTORY_NAMES = {**_STREAM_NAMES, "#w": "watch"}


class TooManyStreamsError(VidgateError):
    """The viewer's plan allows no further concurrent stream; ``active`` lists the live ones."""

    status = 409
    code = "too_many_streams"

    def __init__(self, message: str, *, active: tuple[Stream, ...], limit: int) -> None:
        super().__init__(message)
        self.active = active
        self.limit = limit

    def details(self) -> dict[str, Any]:
        return {"limit": self.limit, "active": [stream.to_public() for stream in self.active]}


class SessionEndedError(VidgateError):
    """The renewal names a session that is over (ended, or silent for two intervals)."""

    status = 409
    code = "session_ended"


class SessionNotFoundError(NotFoundError):
    """No live stream of this viewer has this session id."""


class NoUserRecordError(ForbiddenError):
    """The viewer has no user record yet, so no stream can be opened for them."""


def validate_user_id(user_id: object) -> str:
    """:func:`app.entitlements.validate_user_id`, imported on first use (off the cold import)."""
    from app.entitlements import validate_user_id as validate

    return validate(user_id)


def new_session_id() -> str:
    """A fresh, unguessable session id: 32 lower-case hex digits."""
    return uuid.UUID(bytes=secrets.token_bytes(16)).hex


def check_session_id(value: object) -> str:
    """``value`` if it is a session id this service issues, else BadRequestError."""
    if not isinstance(value, str) or not SESSION_ID.match(value):
        raise BadRequestError("session_id must be the 32 hex digits a grant returned")
    return value


@dataclass(frozen=True)
class Stream:
    """One live (or dead, before cleanup) playback session of a viewer."""

    session_id: str
    video_id: str
    title: str
    device: str
    started_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    position: float
    plan: Plan = "free"
    duration: float = 0.0

    def live(self, now: datetime) -> bool:
        return now < self.expires_at

    def to_public(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "video_id": self.video_id,
            "title": self.title,
            "device": self.device,
            "started_at": format_time(self.started_at),
            "last_seen_at": format_time(self.last_seen_at),
            "position": self.position,
        }


@dataclass(frozen=True)
class WatchEntry:
    """Where a viewer left a video (seconds), and when: the resume history."""

    video_id: str
    title: str
    position: float
    at: datetime
    duration: float = 0.0

    @property
    def progress(self) -> float:
        """How much of the video was watched, 0 to 1 (0 when the duration is unknown)."""
        return min(1.0, self.position / self.duration) if self.duration > 0 else 0.0

    def to_public(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "title": self.title,
            "position": self.position,
            "duration": self.duration,
            "at": format_time(self.at),
        }


@dataclass(frozen=True)
class ViewerState:
    """What one read of the user item says: entitlement, stream slots, resume history."""

    user_id: str
    exists: bool
    entitlement: Entitlement
    streams: tuple[Stream, ...]
    version: int
    history: tuple[WatchEntry, ...] = ()

    def live(self, now: datetime) -> tuple[Stream, ...]:
        return tuple(sorted((st for st in self.streams if st.live(now)), key=_started))

    def dead(self, now: datetime) -> tuple[Stream, ...]:
        return tuple(st for st in self.streams if not st.live(now))

    def position_of(self, video_id: str) -> WatchEntry | None:
        return next((entry for entry in self.history if entry.video_id == video_id), None)


@dataclass(frozen=True)
class Heartbeat:
    """What a renewal reports: the position, and from the player its quality figures."""

    position: float = 0.0
    rendition: str | None = None
    bitrate: int | None = None
    stall_ms: float | None = None
    startup_ms: float | None = None


def _started(stream: Stream) -> datetime:
    return stream.started_at


class StreamStore:
    """Opens, renews, lists and ends a viewer's streams on their user item.

    :param limits: concurrent streams per plan.
    :param heartbeat_seconds: how often players renew; a stream is over after two silent ones.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        users_table: str,
        audit_table: str,
        *,
        limits: Mapping[Plan, int] = DEFAULT_LIMITS,
        heartbeat_seconds: int = DEFAULT_HEARTBEAT_SECONDS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if heartbeat_seconds <= 0:
            raise ValueError("heartbeat_seconds must be positive")
        self._client = client
        self._users = users_table
        self._audit = audit_table
        self.limits = dict(limits)
        self.heartbeat_seconds = heartbeat_seconds
        self._clock = clock

    @property
    def silence_seconds(self) -> int:
        """After how long without a heartbeat a stream is over: two renewal intervals."""
        return 2 * self.heartbeat_seconds

    def limit_for(self, plan: Plan) -> int:
        return self.limits[plan]

    # --- reads ---------------------------------------------------------------------

    def read_of(self, user_id: str, *, history: bool = False) -> KeyRead[ViewerState]:
        """The user item's entitlement and streams (and ``history``), as one read of a batch.

        :raises BadRequestError: a malformed user id.
        """
        validate_user_id(user_id)
        names = _HISTORY_NAMES if history else _STREAM_NAMES

        def parse(item: Item | None) -> ViewerState:
            return state_from_item(user_id, item)

        return KeyRead(self._users, {"user_id": s(user_id)}, parse, ", ".join(names), names)

    def get(self, user_id: str, *, history: bool = False) -> ViewerState:
        """The same read alone: one strongly consistent GetItem."""
        read = self.read_of(user_id, history=history)
        with unavailable_on_errors():
            item = self._client.get_item(
                TableName=self._users,
                Key=read.key,
                ConsistentRead=True,
                ProjectionExpression=read.projection or "",
                ExpressionAttributeNames=dict(read.names or {}),
            ).get("Item")
        return read.parse(item)

    def active(self, user_id: str) -> tuple[Stream, ...]:
        """The viewer's live streams, oldest first."""
        return self.get(user_id).live(self._clock())

    # --- writes --------------------------------------------------------------------

    def open(
        self,
        state: ViewerState,
        *,
        video_id: str,
        title: str,
        device: str,
        plan: Plan,
        position: float = 0.0,
        duration: float = 0.0,
        now: datetime | None = None,
    ) -> Stream:
        """Open a stream for ``state``'s viewer: one conditional UpdateItem when nobody races.

        ``state`` is the read the caller made; after a lost race the item is read
        again and the decision made anew, so the limit holds however many grants run.

        :raises TooManyStreamsError: the plan's limit of live streams is reached.
        :raises NoUserRecordError: the viewer has no user record.
        :raises DependencyUnavailableError: DynamoDB cannot be reached, or kept refusing.
        """
        limit = self.limit_for(plan)
        session_id = new_session_id()
        for _attempt in range(limit + 8):
            moment = now or self._clock()
            if not state.exists:
                raise NoUserRecordError(f"user {state.user_id} has no record yet")
            live = state.live(moment)
            if len(live) >= limit:
                raise TooManyStreamsError(
                    f"{len(live)} of {limit} streams in use", active=live, limit=limit
                )
            stamp = _epoch(moment)
            slot: Item = {
                "v": s(video_id),
                "t": s(title[:200]),
                "d": s(device[:80]),
                "s": n(stamp),
                "l": n(stamp),
                "e": n(stamp + self.silence_seconds),
                "p": _number(position),
                "pl": s(plan),
                "du": _number(duration),
            }
            names: dict[str, str] = {
                "#id": "user_id",
                "#st": "streams",
                "#sv": "streams_v",
                "#w": "watch",
            }
            values: Item = {":one": n(1), ":empty": {"M": {}}}
            if not state.streams and state.version == 0:
                # No map yet (or never a stream): create it whole, if still nobody has.
                update = "SET #st = :map, #sv = :one, #w = if_not_exists(#w, :empty)"
                condition = "attribute_exists(#id) AND attribute_not_exists(#sv)"
                values[":map"] = {"M": {session_id: {"M": slot}}}
            else:
                removes = [f"#st.#d{i}" for i in range(len(state.dead(moment)))]
                for i, dead in enumerate(state.dead(moment)):
                    names[f"#d{i}"] = dead.session_id
                names["#new"] = session_id
                # The resume map exists once a stream was opened: renewals only set entries.
                update = "SET #st.#new = :slot, #sv = #sv + :one, #w = if_not_exists(#w, :empty)"
                if removes:
                    update += " REMOVE " + ", ".join(removes)
                condition = "attribute_exists(#id) AND #sv = :seen"
                values[":slot"] = {"M": slot}
                values[":seen"] = n(state.version)
            try:
                with unavailable_on_errors():
                    self._client.update_item(
                        TableName=self._users,
                        Key={"user_id": s(state.user_id)},
                        UpdateExpression=update,
                        ConditionExpression=condition,
                        ExpressionAttributeNames=names,
                        ExpressionAttributeValues=values,
                    )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                state = self.get(state.user_id)  # someone opened a stream first: decide again
                continue
            return _stream_from_slot(session_id, slot)
        raise DependencyUnavailableError("too many concurrent stream openings; try again")

    def renew(
        self,
        state: ViewerState,
        session_id: str,
        *,
        video_id: str,
        title: str,
        beat: Heartbeat,
        now: datetime | None = None,
    ) -> Stream:
        """A heartbeat: the live slot ``session_id`` is seen now, at ``beat.position``.

        The position also goes into the resume history (``state`` read with
        ``history=True`` says which entries to drop beyond :data:`HISTORY_MAX`).

        :raises SessionEndedError: the session is not live (ended, silent too long, unknown).
        :raises BadRequestError: the session plays another video.
        """
        moment = now or self._clock()
        mine = next((st for st in state.streams if st.session_id == session_id), None)
        if mine is None or not mine.live(moment):
            raise SessionEndedError("this stream has ended")
        if mine.video_id != video_id:
            raise BadRequestError("this session plays another video")
        stamp = _epoch(moment)
        names = {"#st": "streams", "#sid": session_id, "#w": "watch", "#vid": video_id}
        values: Item = {
            ":now": n(stamp),
            ":exp": n(stamp + self.silence_seconds),
            ":pos": _number(beat.position),
            ":entry": {"M": _watch_item(title, beat.position, stamp, mine.duration)},
        }
        update = "SET #st.#sid.#l = :now, #st.#sid.#e = :exp, #st.#sid.#pp = :pos, #w.#vid = :entry"
        names.update({"#l": "l", "#e": "e", "#pp": "p"})
        stale = _history_overflow(state.history, video_id)
        if stale:
            update += " REMOVE " + ", ".join(f"#w.#old{i}" for i in range(len(stale)))
            names.update({f"#old{i}": entry.video_id for i, entry in enumerate(stale)})
        try:
            with unavailable_on_errors():
                self._client.update_item(
                    TableName=self._users,
                    Key={"user_id": s(state.user_id)},
                    UpdateExpression=update,
                    # Only a slot that is still live: an ended or silent stream stays over.
                    ConditionExpression="#st.#sid.#e > :now",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise SessionEndedError("this stream has ended") from exc
            raise
        return Stream(
            session_id=session_id,
            video_id=video_id,
            title=mine.title,
            device=mine.device,
            started_at=mine.started_at,
            last_seen_at=_from_epoch(stamp),
            expires_at=_from_epoch(stamp + self.silence_seconds),
            position=beat.position,
            plan=mine.plan,
            duration=mine.duration,
        )

    def end(self, user_id: str, session_id: str, *, position: float | None = None) -> Stream:
        """End the viewer's own live stream ``session_id`` (and keep its position for resume).

        :raises SessionNotFoundError: the viewer has no live stream with this id.
        """
        validate_user_id(user_id)
        check_session_id(session_id)
        state = self.get(user_id, history=True)
        moment = self._clock()
        mine = next((st for st in state.live(moment) if st.session_id == session_id), None)
        if mine is None:
            raise SessionNotFoundError("no such live stream")
        names = {"#st": "streams", "#sid": session_id, "#e": "e"}
        values: Item = {":now": n(_epoch(moment))}
        update = "REMOVE #st.#sid"
        if position is not None:
            names.update({"#w": "watch", "#vid": mine.video_id})
            values[":entry"] = {
                "M": _watch_item(mine.title, position, _epoch(moment), mine.duration)
            }
            update = "SET #w.#vid = :entry " + update
        try:
            with unavailable_on_errors():
                self._client.update_item(
                    TableName=self._users,
                    Key={"user_id": s(user_id)},
                    UpdateExpression=update,
                    ConditionExpression="#st.#sid.#e > :now",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise SessionNotFoundError("no such live stream") from exc
            raise
        return mine

    def end_by_admin(self, user_id: str, session_id: str, *, actor: str) -> Stream:
        """End ``user_id``'s live stream ``session_id`` for an admin, with its audit record.

        The slot's removal and the audit record are one transaction.

        :raises SessionNotFoundError: the user has no live stream with this id.
        """
        validate_user_id(user_id)
        check_session_id(session_id)
        state = self.get(user_id)
        moment = self._clock()
        mine = next((st for st in state.live(moment) if st.session_id == session_id), None)
        if mine is None:
            raise SessionNotFoundError("no such live stream")
        token = uuid.uuid4().hex
        stamp = format_time(moment)
        premium = state.entitlement.premium
        audit: Item = {
            "user_id": s(user_id),
            "event_id": s(f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}#{token}"),
            "entity": s("audit"),
            "actor": s(actor),
            "action": s("end_stream"),
            "premium_before": b(premium),
            "premium_after": b(premium),
            "version": n(state.entitlement.version),
            "at": s(stamp),
            "session_id": s(session_id),
            "video_id": s(mine.video_id),
            "device": s(mine.device),
        }
        try:
            with unavailable_on_errors():
                self._client.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": self._users,
                                "Key": {"user_id": s(user_id)},
                                "UpdateExpression": "REMOVE #st.#sid",
                                "ConditionExpression": "#st.#sid.#e > :now",
                                "ExpressionAttributeNames": {
                                    "#st": "streams",
                                    "#sid": session_id,
                                    "#e": "e",
                                },
                                "ExpressionAttributeValues": {":now": n(_epoch(moment))},
                            }
                        },
                        {
                            "Put": {
                                "TableName": self._audit,
                                "Item": audit,
                                "ConditionExpression": "attribute_not_exists(event_id)",
                            }
                        },
                    ],
                    ClientRequestToken=token,
                )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = [
                str(reason.get("Code", "None"))
                for reason in exc.response.get("CancellationReasons", [])
            ]
            if _THROTTLED.intersection(reasons):
                raise DependencyUnavailableError("DynamoDB is throttling") from exc
            raise SessionNotFoundError("no such live stream") from exc
        return mine


# --- item mapping ----------------------------------------------------------------------


def state_from_item(user_id: str, item: Mapping[str, Any] | None) -> ViewerState:
    """The :class:`ViewerState` of a users-table item (None: no record)."""
    from app.entitlements import Entitlement, entitlement_from_item

    if not item:
        entitlement = Entitlement(user_id=user_id, premium=False, premium_until=None, version=0)
        return ViewerState(user_id, False, entitlement, (), 0)
    slots = item.get("streams", {}).get("M", {})
    streams = tuple(
        _stream_from_slot(sid, slot.get("M", {}))
        for sid, slot in slots.items()
        if isinstance(slot, Mapping)
    )
    watch = item.get("watch", {}).get("M", {})
    history = tuple(
        sorted(
            (_watch_from_item(vid, entry.get("M", {})) for vid, entry in watch.items()),
            key=lambda entry: entry.at,
            reverse=True,
        )
    )
    version = int(item.get("streams_v", {}).get("N", "0"))
    return ViewerState(
        user_id, True, entitlement_from_item(user_id, item), streams, version, history
    )


def _stream_from_slot(session_id: str, slot: Mapping[str, Any]) -> Stream:
    def num(key: str) -> float:
        try:
            return float(slot.get(key, {}).get("N", "0"))
        except ValueError:
            return 0.0

    return Stream(
        session_id=session_id,
        video_id=slot.get("v", {}).get("S", ""),
        title=slot.get("t", {}).get("S", ""),
        device=slot.get("d", {}).get("S", ""),
        started_at=_from_epoch(int(num("s"))),
        last_seen_at=_from_epoch(int(num("l"))),
        expires_at=_from_epoch(int(num("e"))),
        position=num("p"),
        plan="premium" if slot.get("pl", {}).get("S") == "premium" else "free",
        duration=num("du"),
    )


def _watch_from_item(video_id: str, entry: Mapping[str, Any]) -> WatchEntry:
    try:
        position = float(entry.get("p", {}).get("N", "0"))
        at = int(entry.get("a", {}).get("N", "0"))
        duration = float(entry.get("d", {}).get("N", "0"))
    except ValueError:
        position, at, duration = 0.0, 0, 0.0
    title = entry.get("t", {}).get("S", "")
    return WatchEntry(video_id, title, position, _from_epoch(at), duration)


def _watch_item(title: str, position: float, stamp: int, duration: float) -> Item:
    return {"t": s(title[:200]), "p": _number(position), "a": n(stamp), "d": _number(duration)}


def _history_overflow(history: tuple[WatchEntry, ...], adding: str) -> list[WatchEntry]:
    """The oldest entries to drop so that adding ``adding`` keeps :data:`HISTORY_MAX`."""
    kept = [entry for entry in history if entry.video_id != adding]
    extra = len(kept) + 1 - HISTORY_MAX
    return kept[-extra:] if extra > 0 else []


def _number(value: float) -> dict[str, str]:
    return {"N": f"{max(0.0, round(float(value), 1)):.1f}"}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _from_epoch(stamp: int) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


# --- devices ---------------------------------------------------------------------------

_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def device_label(user_agent: str | None) -> str:
    """A short label for a User-Agent, e.g. ``Chrome on Linux`` (``Unknown device`` if none)."""
    agent = (user_agent or "").strip()
    if not agent:
        return "Unknown device"
    browser = next((name for token, name in _BROWSERS if token in agent), None)
    system = next((name for token, name in _SYSTEMS if token in agent), None)
    if "HeadlessChrome/" in agent:
        browser = "Headless Chrome"
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system or ""
    return agent.split("/", 1)[0][:40] or "Unknown device"
