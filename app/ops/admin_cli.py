"""The operator commands behind ``vidgate admin|videos|keys``: premium, the catalog, signing keys.

Configuration is what the Lambda functions read (:mod:`app.config`), taken
from the environment, so the same commands work against real AWS (with the
operator's own credentials) and against the local stack. ``--env-file FILE``
adds the ``KEY=VALUE`` lines of a file on top of the environment (the file
wins); without it, ``.vidgate/dev.env`` (written by ``vidgate dev``) is used
when it exists and no ``VIDGATE_*`` variable is set. The boto3 session is
built from that merged mapping alone (credentials, region, endpoint), never
by changing this process's environment.

Every premium change names its operator in the audit trail: ``--as NAME``,
else the AWS identity (STS GetCallerIdentity ARN), else the OS user. Each
command prints what it did; refusals are :class:`OperatorError` (one line,
exit code 1 in :mod:`app.cli`).
"""

from __future__ import annotations

import getpass
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.config import Need, Settings, load_settings
from app.entitlements import AuditRecord, Entitlement, describe_end
from app.errors import (
    AmbiguousUserError,
    ConfigurationError,
    UserNotFoundError,
    VersionConflictError,
)
from app.ops.cli import DEFAULT_WAIT_SECONDS, EX_TEMPFAIL
from app.services import Services
from app.users import UserRecord

if TYPE_CHECKING:
    from app.catalog import Video

log = logging.getLogger("vidgate.admin_cli")

DEFAULT_ENV_FILE = Path(".vidgate") / "dev.env"
STS_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 1}, connect_timeout=3, read_timeout=5
)
# boto3 service name -> the suffix of its AWS_ENDPOINT_URL_<SERVICE> variable.
_ENDPOINT_SUFFIX = {
    "cognito-idp": "COGNITO_IDENTITY_PROVIDER",
    "secretsmanager": "SECRETS_MANAGER",
}

Say = Callable[[str], None]


class OperatorError(Exception):
    """A command cannot do what was asked; the message is one line for the operator."""


# --- configuration -------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments, blank lines, optional ``export`` and quotes).

    :raises OperatorError: the file cannot be read or a line is not ``KEY=VALUE``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OperatorError(f"cannot read env file {path}: {exc.strerror or exc}") from exc
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name.replace("_", "").isalnum():
            raise OperatorError(f"{path}:{number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name] = value
    return values


def operator_environment(
    env_file: Path | None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment the commands read: ``environ`` plus the env file's values.

    With ``env_file=None`` the default ``.vidgate/dev.env`` is used only when
    it exists and ``environ`` has no ``VIDGATE_*`` variable (so a shell set up
    for AWS is never overridden by a leftover local file).
    """
    base = dict(os.environ if environ is None else environ)
    if env_file is None:
        if any(name.startswith("VIDGATE_") for name in base) or not DEFAULT_ENV_FILE.is_file():
            return base
        env_file = DEFAULT_ENV_FILE
    return {**base, **read_env_file(env_file)}


class OperatorSession(boto3.Session):
    """A boto3 session whose credentials, region and endpoint come from a mapping.

    boto3 reads ``AWS_ENDPOINT_URL[_<SERVICE>]`` from the process environment
    only; this session passes the mapping's endpoint to each client instead.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        kwargs: dict[str, Any] = {
            "region_name": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
        }
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            kwargs["aws_access_key_id"] = env["AWS_ACCESS_KEY_ID"]
            kwargs["aws_secret_access_key"] = env["AWS_SECRET_ACCESS_KEY"]
            kwargs["aws_session_token"] = env.get("AWS_SESSION_TOKEN") or None
        elif env.get("AWS_PROFILE"):
            kwargs["profile_name"] = env["AWS_PROFILE"]
        super().__init__(**kwargs)
        self._env = dict(env)

    def endpoint_for(self, service_name: str) -> str | None:
        suffix = _ENDPOINT_SUFFIX.get(service_name, service_name.upper().replace("-", "_"))
        return (
            self._env.get(f"AWS_ENDPOINT_URL_{suffix}") or self._env.get("AWS_ENDPOINT_URL") or None
        )

    def client(self, service_name: str, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("endpoint_url") is None:
            endpoint = self.endpoint_for(service_name)
            if endpoint:
                kwargs["endpoint_url"] = endpoint
        return super().client(service_name, **kwargs)  # type: ignore[call-overload]


def one_line(exc: BaseException) -> str:
    """A multi-line message (``head:`` then ``- item`` lines) as one line."""
    parts = [part.strip(" -") for part in str(exc).splitlines() if part.strip(" -")]
    if len(parts) > 1 and parts[0].endswith(":"):
        return f"{parts[0]} {'; '.join(parts[1:])}"
    return "; ".join(parts)


@dataclass
class Operator:
    """What a command works with: settings, services and where it prints."""

    env: dict[str, str]
    settings: Settings
    services: Services
    say: Say = print

    @classmethod
    def load(
        cls,
        needs: Iterable[Need],
        *,
        env_file: Path | None = None,
        environ: Mapping[str, str] | None = None,
        say: Say = print,
    ) -> Operator:
        """Settings for ``needs`` from the environment (and env file), and their services.

        :raises OperatorError: a missing or malformed setting (all named, on one line).
        """
        env = operator_environment(env_file, environ)
        try:
            settings = load_settings(env, frozenset(needs))
        except ConfigurationError as exc:
            hint = (
                ""
                if env_file
                else " (run inside the project after `vidgate dev`, or pass --env-file)"
            )
            raise OperatorError(one_line(exc) + hint) from exc
        return cls(env, settings, Services(settings, session=OperatorSession(env)), say)

    @cached_property
    def identity(self) -> str | None:
        """The caller's AWS identity ARN (STS GetCallerIdentity), or None if it cannot be read."""
        try:
            sts = self.services.session.client("sts", config=STS_CONFIG)
            return str(sts.get_caller_identity()["Arn"])
        except (ClientError, BotoCoreError, KeyError) as exc:
            log.debug("no caller identity: %s", exc)
            return None

    def actor(self, explicit: str | None) -> str:
        """Who the audit names: ``--as``, else the AWS identity, else the OS user."""
        if explicit is not None:
            name = explicit.strip()
            if not name or len(name) > 256:
                raise OperatorError("--as needs a name of 1 to 256 characters")
            return name
        if self.identity:
            return self.identity
        try:
            return f"os:{getpass.getuser()}"
        except (KeyError, OSError):
            return "os:unknown"


# --- formatting ------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else "-"


def premium_text(state: Entitlement, now: datetime) -> str:
    """``premium through 2030-12-31 UTC`` / ``premium (no end date)`` / ``premium ended (…)``
    / ``not premium``: the end date as ``--until`` took it (app.entitlements.describe_end)."""
    if not state.premium:
        return "not premium"
    if state.premium_until is None:
        return "premium (no end date)"
    if state.is_active(now):
        return f"premium {describe_end(state.premium_until)}"
    return f"premium ended (it ran {describe_end(state.premium_until)})"


def describe_user(record: UserRecord, now: datetime) -> list[str]:
    state = record.entitlement
    return [
        f"{record.username} <{record.email or '-'}>  id {record.user_id}",
        f"  {premium_text(state, now)}",
        f"  version {record.version}; last change {_when(record.updated_at)} "
        f"by {record.updated_by or '-'}",
    ]


def describe_audit(record: AuditRecord, who: str) -> str:
    def state(premium: bool, until: datetime | None) -> str:
        if not premium:
            return "free"
        return f"premium {describe_end(until)}" if until else "premium"

    return (
        f"{_when(record.at)}  {who:<20} {record.action:<6}  "
        f"{state(record.premium_before, record.until_before)} -> "
        f"{state(record.premium_after, record.until_after)}  "
        f"by {record.actor}  (v{record.version}{', forced' if record.forced else ''})"
    )


# --- admin -------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _find(operator: Operator, identifier: str) -> UserRecord:
    """The one user ``identifier`` names; several matches are refused, never picked."""
    try:
        return operator.services.users.find(identifier)
    except UserNotFoundError:
        raise OperatorError(f"no user matches {identifier!r} (id, username or e-mail)") from None
    except AmbiguousUserError as exc:
        found = ", ".join(f"{user.username} (id {user.user_id})" for user in exc.matches)
        raise OperatorError(
            f"{identifier!r} matches more than one user: {found}; name one by its user id"
        ) from None


def _change(
    operator: Operator,
    record: UserRecord,
    premium: bool,
    until: datetime | None,
    actor: str,
) -> Entitlement:
    try:
        return operator.services.entitlements.set_premium(
            record.user_id, premium, until, actor=actor, expected_version=record.version
        )
    except VersionConflictError as exc:
        raise OperatorError(
            f"{record.username} was changed by someone else just now; nothing was written. "
            "Check with `vidgate admin show` and run the command again"
        ) from exc


def admin_grant(
    operator: Operator, identifier: str, until_text: str | None, as_name: str | None
) -> int:
    from app.entitlements import parse_until

    until = parse_until(until_text, naive_is_utc=True)
    actor = operator.actor(as_name)
    record = _find(operator, identifier)
    state = _change(operator, record, True, until, actor)
    if state.version == record.version:
        operator.say(f"{record.username} is already {premium_text(state, _now())}; nothing changed")
        return 0
    operator.say(
        f"{record.username} is now {premium_text(state, _now())} "
        f"(version {state.version}, by {actor})"
    )
    return 0


def admin_revoke(operator: Operator, identifier: str, as_name: str | None) -> int:
    actor = operator.actor(as_name)
    record = _find(operator, identifier)
    if not record.premium:
        operator.say(f"{record.username} is not premium; nothing changed")
        return 0
    state = _change(operator, record, False, None, actor)
    operator.say(f"{record.username} is no longer premium (version {state.version}, by {actor})")
    return 0


def admin_show(operator: Operator, identifier: str) -> int:
    for line in describe_user(_find(operator, identifier), _now()):
        operator.say(line)
    return 0


def admin_reset_password(operator: Operator, identifier: str) -> int:
    """Make the user choose a new password (an e-mailed code), and sign them out everywhere.

    ``AdminResetUserPassword``, then ``AdminUserGlobalSignOut`` (every refresh
    token) and the end of every web session opened before now.
    """
    record = _find(operator, identifier)
    pool = operator.services.user_pool
    try:
        operator.services.cognito_idp.admin_reset_user_password(
            UserPoolId=pool.user_pool_id, Username=record.username
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "UserNotFoundException":
            raise
        raise OperatorError(f"{record.username} is not in the user pool") from None
    pool.sign_out_everywhere(record.username)
    ended = operator.services.users.end_sessions(record.user_id)
    operator.say(
        f"{record.username} must choose a new password (we e-mailed a code); signed out "
        f"everywhere: refresh tokens revoked, web sessions before {_when(ended)} ended"
    )
    return 0


def admin_audit(operator: Operator, identifier: str | None, limit: int, cursor: str | None) -> int:
    names: dict[str, str] = {}
    user_id = None
    if identifier is not None:
        record = _find(operator, identifier)
        user_id = record.user_id
        names[user_id] = record.username
    records, next_cursor = operator.services.entitlements.list_audit(user_id, limit, cursor)
    if not records:
        operator.say("no premium changes recorded")
    for item in records:
        if item.user_id not in names:
            try:
                names[item.user_id] = operator.services.users.get(item.user_id).username
            except UserNotFoundError:
                names[item.user_id] = item.user_id
        operator.say(describe_audit(item, names[item.user_id]))
    if next_cursor:
        operator.say(f"more: --cursor {next_cursor}")
    return 0


# --- videos ------------------------------------------------------------------------------


POLL_SECONDS = 0.5
RESTORE_DAYS = 7
"""Days a restored original stays readable: time for the re-transcode and a retry."""
RESTORE_TIER = "Standard"
RESTORE_TIMES = {"Expedited": "1-5 minutes", "Standard": "3-5 hours", "Bulk": "5-12 hours"}
"""Typical S3 Glacier Flexible Retrieval restore times (docs/publishing.md#lifecycle)."""
ARCHIVED_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


def videos_add(
    operator: Operator,
    path: Path,
    *,
    title: str,
    tier: str,
    description: str,
    video_id: str | None,
    part_size_mib: int,
    wait: bool = True,
    wait_timeout: float = DEFAULT_WAIT_SECONDS,
) -> int:
    from app.ops.uploads import MIB, VideoDetails, progress_bar, submit_video

    draft = submit_video(
        path,
        VideoDetails(title=title, tier=tier, description=description, video_id=video_id),
        s3=operator.services.s3,
        bucket=operator.settings.bucket,
        catalog=operator.services.catalog,
        pipeline=operator.services.publishing,
        progress=progress_bar,
        part_size=part_size_mib * MIB,
    )
    if not wait:
        operator.say(
            f"uploaded video {draft.video_id}: {draft.title!r} ({draft.tier}); it is "
            f"{draft.state}: `vidgate videos list` shows when it is ready"
        )
        return 0
    video = wait_until_done(operator, draft.video_id, timeout=wait_timeout)
    operator.say(
        f"added video {video.video_id}: {video.title!r} ({video.tier}, "
        f"{video.duration_seconds:.1f} s, {video.size_bytes / MIB:.1f} MiB) "
        f"at s3://{operator.settings.bucket}/{video.hls_key or video.object_key}"
    )
    return 0


def wait_until_done(
    operator: Operator,
    video_id: str,
    *,
    timeout: float,
    job_id: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Video:
    """Follow the video to ready (returned) or failed (:class:`OperatorError`), with a
    progress bar of the catalog's percent; with ``job_id``, only that job's run counts."""
    from tqdm import tqdm

    catalog = operator.services.catalog
    end = clock() + timeout
    with tqdm(total=100, unit="%", desc="transcoding", disable=None, leave=True) as bar:
        while True:
            video = catalog.get_any(video_id)
            mine = job_id is None or video.job_id == job_id
            if mine and video.state == "processing" and video.progress > bar.n:
                bar.update(video.progress - bar.n)
            if mine and video.state == "ready":
                bar.update(100 - bar.n)
                return video
            if mine and video.state == "failed":
                raise OperatorError(f"video {video_id} failed: {video.failure_reason}")
            if clock() >= end:
                raise OperatorError(
                    f"video {video_id} is still {video.state} after {timeout:.0f} s "
                    "(is the transcoder running?); `vidgate videos list` shows it"
                )
            sleep(POLL_SECONDS)


def videos_retranscode(
    operator: Operator,
    video_id: str,
    *,
    wait: bool = True,
    wait_timeout: float = DEFAULT_WAIT_SECONDS,
) -> int:
    """Run the ladder again from the kept original; an archived original is restored first."""
    from app.errors import VideoNotFoundError
    from app.publishing import retranscode_message

    services = operator.services
    bucket = operator.settings.bucket
    try:
        video = services.catalog.get_any(video_id)
    except VideoNotFoundError:
        raise OperatorError(f"no video with id {video_id!r}") from None
    if video.source_key is None:
        raise OperatorError(f"video {video_id} was added before the pipeline: it has no original")
    if video.state == "processing" and not services.publishing.is_stale(video):
        raise OperatorError(f"video {video_id} is being transcoded (attempt {video.attempts})")
    try:
        head = services.s3.head_object(Bucket=bucket, Key=video.source_key)
    except ClientError as exc:
        raise OperatorError(
            f"the original s3://{bucket}/{video.source_key} cannot be read: "
            f"{exc.response.get('Error', {}).get('Code', '?')}"
        ) from exc
    if head.get("StorageClass") in ARCHIVED_CLASSES:
        restore = head.get("Restore") or ""
        if 'ongoing-request="true"' in restore:
            operator.say(
                f"the original of {video_id} is being restored from S3 Glacier "
                f"({RESTORE_TIER} retrievals take {RESTORE_TIMES[RESTORE_TIER]}); "
                "run this command again when it is restored"
            )
            return EX_TEMPFAIL
        if 'ongoing-request="false"' not in restore:
            services.s3.restore_object(
                Bucket=bucket,
                Key=video.source_key,
                RestoreRequest={
                    "Days": RESTORE_DAYS,
                    "GlacierJobParameters": {"Tier": RESTORE_TIER},
                },
            )
            operator.say(
                f"the original of {video_id} is archived in S3 Glacier: restore requested "
                f"({RESTORE_TIER} retrieval, typically {RESTORE_TIMES[RESTORE_TIER]}); "
                "run this command again when it is restored"
            )
            return EX_TEMPFAIL
    sent = services.sqs.send_message(
        QueueUrl=operator.settings.ingest_queue_url,
        MessageBody=retranscode_message(bucket, video),
    )
    job_id = f"sqs-{sent['MessageId']}"
    if not wait:
        operator.say(f"re-transcode of {video_id} queued ({job_id})")
        return 0
    done = wait_until_done(operator, video_id, timeout=wait_timeout, job_id=job_id)
    operator.say(f"re-transcoded video {video_id}: {done.width}x{done.height}, {done.hls_key}")
    return 0


def videos_list(operator: Operator, limit: int, cursor: str | None) -> int:
    videos, next_cursor = operator.services.catalog.list_all(limit, cursor)
    if not videos:
        operator.say("no videos")
    for video in videos:
        state = "published" if video.published else "unpublished"
        stage = video.state if video.state != "processing" else f"processing {video.progress}%"
        why = f"  ({video.failure_reason})" if video.state == "failed" else ""
        operator.say(
            f"{video.video_id:<28} {video.tier:<8} {state:<11} "
            f"{video.duration_seconds:>7.1f} s  {video.title}  [{stage}]{why}"
        )
    if next_cursor:
        operator.say(f"more: --cursor {next_cursor}")
    return 0


def videos_remove(operator: Operator, video_id: str, *, keep_media: bool) -> int:
    from app.errors import VideoNotFoundError
    from app.ops.uploads import remove_video

    try:
        video = remove_video(
            video_id,
            s3=operator.services.s3,
            bucket=operator.settings.bucket,
            catalog=operator.services.catalog,
            keep_media=keep_media,
        )
    except VideoNotFoundError:
        raise OperatorError(f"no video with id {video_id!r}") from None
    media = "kept its media" if keep_media else "deleted its media"
    operator.say(f"removed video {video.video_id} ({video.title!r}); {media}")
    return 0


# --- signing keys ----------------------------------------------------------------------


def keys_create(operator: Operator, *, algorithm: str, secret_prefix: str | None, slot: str) -> int:
    from app.ops.keys_admin import DEFAULT_SECRET_PREFIX, create_signing_key

    created = create_signing_key(
        operator.services.secretsmanager,
        secret_prefix=secret_prefix or DEFAULT_SECRET_PREFIX,
        algorithm=algorithm,  # type: ignore[arg-type]  # argparse choices
    )
    operator.say(created.describe(slot))  # type: ignore[arg-type]
    return 0


def keys_rotate(
    operator: Operator,
    *,
    current_slot: str,
    algorithm: str,
    secret_prefix: str | None,
    url_ttl_seconds: int | None,
) -> int:
    from app.ops.keys_admin import DEFAULT_SECRET_PREFIX, rotate_signing_key

    plan = rotate_signing_key(
        operator.services.secretsmanager,
        current_slot=current_slot,  # type: ignore[arg-type]
        secret_prefix=secret_prefix or DEFAULT_SECRET_PREFIX,
        algorithm=algorithm,  # type: ignore[arg-type]
        url_ttl_seconds=url_ttl_seconds or operator.settings.url_ttl_seconds,
    )
    operator.say(plan.render())
    return 0
