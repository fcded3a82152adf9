"""The operator CLI (``vidgate admin|videos|keys``) against the local stack and the emulator.

Grant and revoke go through the CLI and are read back through the web pages
and the admin API of the running ``vidgate dev``; a clip generated with ffmpeg
is added with ``videos add`` and played through the local CloudFront edge;
uploads that fail half-way (a part refused, or Ctrl-C) leave no multipart
upload behind. Most commands run in-process through :func:`app.cli.main`
with ``--env-file`` (the stack's ``dev.env``); exit codes and the one-line
messages are also checked on a real ``python -m app.ops`` process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from app.catalog import VideoCatalog
from app.config import Need
from app.dynamo import MAX_PAGE_SIZE
from app.errors import VideoNotFoundError
from app.ops.admin_cli import Operator, OperatorSession, operator_environment, read_env_file
from app.ops.cli import build_parser, main
from app.ops.media import encode_clip
from app.ops.uploads import (
    MIB,
    UploadFailedError,
    VideoDetails,
    submit_video,
    upload_file,
)
from app.publishing import Publishing
from app.tables import create_tables
from tests.integration.test_admin_web import (  # the shared dev-stack helpers
    Local,
    browser_for,
    open_local,
    row_of,
)
from tests.stackproc import ROOT, RunningStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local(dev_stack: RunningStack) -> Iterator[Local]:
    handle = open_local(dev_stack)
    yield handle
    handle.revoke_quietly("bob")


@pytest.fixture(scope="module")
def env_file(dev_stack: RunningStack) -> Path:
    return dev_stack.state_dir / "dev.env"


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """``vidgate ARGS`` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse: usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def cli_process(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m app.ops ARGS`` as its own process, without AWS_*/VIDGATE_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIDGATE_"))}
    return subprocess.run(
        [sys.executable, "-m", "app.ops", *map(str, args)],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def api(local: Local, path: str, token_user: str = "carol") -> Any:
    answer = requests.get(
        local.web + path,
        headers={"Authorization": f"Bearer {local.access_token(token_user)}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


# --------------------------------------------------------------------------- admin


def test_grant_and_revoke_from_the_cli_show_in_the_web_and_the_api(
    local: Local, env_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    until = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    carol = browser_for(local, "carol")
    try:
        code, out, _ = cli(
            capsys,
            "admin",
            "grant",
            "bob@example.com",
            "--until",
            until,
            "--as",
            "ops-olga",
            "--env-file",
            env_file,
        )
        assert code == 0
        assert out.startswith(f"bob is now premium through {until} UTC (version ")

        row = row_of(
            carol.get(f"{local.web}/admin/users?email_prefix=bob", timeout=10).text,
            "data-user",
            "bob",
        )
        assert 'data-premium="active"' in row
        assert "· ops-olga" in row  # the redesigned "Last change" cell: when · who
        (item,) = api(local, "/api/admin/users?email_prefix=bob")["items"]
        assert (item["premium"], item["updated_by"]) == (True, "ops-olga")
        assert item["premium_until"] == f"{date.fromisoformat(until) + timedelta(days=1)}T00:00:00Z"

        code, out, _ = cli(
            capsys, "admin", "revoke", "bob", "--as", "ops-olga", "--env-file", env_file
        )
        assert code == 0
        assert "bob is no longer premium" in out

        row = row_of(
            carol.get(f"{local.web}/admin/users?email_prefix=bob", timeout=10).text,
            "data-user",
            "bob",
        )
        assert 'data-premium="free"' in row
        (item,) = api(local, "/api/admin/users?email_prefix=bob")["items"]
        assert item["premium"] is False
        records = api(local, f"/api/admin/audit?user_id={item['user_id']}&limit=2")["items"]
        assert [(r["action"], r["actor"]) for r in records] == [
            ("revoke", "ops-olga"),
            ("grant", "ops-olga"),
        ]

        code, out, _ = cli(capsys, "admin", "show", "bob", "--env-file", env_file)
        assert code == 0
        assert "not premium" in out
        assert "by ops-olga" in out
        code, out, _ = cli(capsys, "admin", "audit", "bob", "--limit", "2", "--env-file", env_file)
        assert code == 0
        assert [line.split()[2] for line in out.splitlines()[:2]] == ["revoke", "grant"]
    finally:
        local.revoke_quietly("bob")


def test_without_as_the_audit_names_the_aws_caller_identity(
    local: Local, env_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code, out, _ = cli(capsys, "admin", "grant", "bob", "--env-file", env_file)

        assert code == 0
        state = local.services.entitlements.get(local.user_id("bob"))
        assert state.updated_by is not None
        assert state.updated_by.startswith("arn:aws:")  # STS GetCallerIdentity
        assert state.updated_by in out
    finally:
        local.revoke_quietly("bob")


def test_a_forced_change_is_marked_forced_on_the_audit_page_and_in_the_cli(
    local: Local, env_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bob_id = local.user_id("bob")
    entitlements = local.services.entitlements
    try:
        entitlements.set_premium(bob_id, True, None, actor="test-checked")
        entitlements.set_premium(bob_id, False, None, actor="test-forced", forced=True)

        page = browser_for(local, "carol").get(
            f"{local.web}/admin/users/{bob_id}/audit?limit=2", timeout=10
        )
        forced = row_of(page.text, "data-actor", "test-forced")
        checked = row_of(page.text, "data-actor", "test-checked")
        assert "data-forced" in forced and ">forced</strong>" in forced
        assert "data-forced" not in checked and "forced</strong>" not in checked

        code, out, _ = cli(capsys, "admin", "audit", "bob", "--limit", "2", "--env-file", env_file)
        assert code == 0
        latest, earlier = out.splitlines()[:2]
        assert "by test-forced" in latest and ", forced)" in latest
        assert "by test-checked" in earlier and "forced" not in earlier
    finally:
        local.revoke_quietly("bob")


def test_revoking_someone_who_is_not_premium_changes_nothing(
    local: Local, env_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = local.services.entitlements.get(local.user_id("bob"))

    code, out, _ = cli(capsys, "admin", "revoke", "bob", "--env-file", env_file)

    assert (code, out.strip()) == (0, "bob is not premium; nothing changed")
    assert local.services.entitlements.get(local.user_id("bob")) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["admin", "grant", "nobody-here"], "no user matches"),
        (["admin", "grant", "bob", "--until", "2001-01-01"], "in the future"),
        (["admin", "grant", "bob", "--until", "next week"], "ISO-8601"),
        (["admin", "show", "nobody@example.com"], "no user matches"),
        (["videos", "remove", "no-such-video"], "no video"),
    ],
)
def test_an_operator_mistake_is_one_line_on_stderr_and_exit_code_1(
    env_file: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = cli(capsys, *args, "--env-file", env_file)

    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("vidgate: ")
    assert message in err


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["admin"],
        ["admin", "grant"],
        ["admin", "frobnicate", "bob"],
        ["admin", "audit", "--limit", "0"],
        ["admin", "audit", "--limit", "101"],
        ["videos", "list", "--limit", "101"],
        ["videos", "list", "--limit", ""],
        ["videos", "add", "clip.mp4", "--title", "T"],  # no --tier
        ["videos", "add", "clip.mp4", "--tier", "gold", "--title", "T"],
        ["videos", "add", "clip.mp4", "--tier", "free", "--title", "T", "--part-size", "1"],
        ["keys", "rotate"],  # no --current-slot
        ["dev", "--port", "70000"],
    ],
)
def test_a_usage_error_is_exit_code_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = cli(capsys, *args)

    assert code == 2
    assert "usage: vidgate" in err


def test_the_page_size_is_the_one_every_listing_takes(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for command in (["admin", "audit"], ["videos", "list"]):
        assert parser.parse_args([*command, "--limit", str(MAX_PAGE_SIZE)]).limit == MAX_PAGE_SIZE
        code, _, err = cli(capsys, *command, "--limit", str(MAX_PAGE_SIZE + 1))
        assert code == 2
        assert f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}" in err


def test_a_real_process_exits_2_on_usage_and_1_without_configuration(tmp_path: Path) -> None:
    usage = cli_process("admin", "grant")
    unconfigured = cli_process("admin", "show", "bob", cwd=tmp_path)  # no .vidgate/dev.env here

    assert usage.returncode == 2
    assert "usage: vidgate admin grant" in usage.stderr
    assert unconfigured.returncode == 1
    assert len(unconfigured.stderr.splitlines()) == 1
    assert "VIDGATE_USERS_TABLE is missing" in unconfigured.stderr


# --------------------------------------------------------------------------- videos


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "tiny clip + été.mp4"
    encode_clip(path, seconds=2, size="160x90")
    return path


def test_videos_add_makes_a_generated_clip_playable_through_the_edge(
    local: Local, env_file: Path, clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video_id = f"cli-{uuid.uuid4().hex[:8]}"
    s3 = local.services.s3
    bucket = local.services.settings.bucket
    try:
        code, out, err = cli(
            capsys,
            "videos",
            "add",
            clip,
            "--title",
            "A tiny clip",
            "--tier",
            "premium",
            "--description",
            "two seconds",
            "--id",
            video_id,
            "--env-file",
            env_file,
        )
        assert code == 0, err
        assert out.startswith(f"added video {video_id}: 'A tiny clip' (premium, 2.0 s")

        # It went through the pipeline: original kept under uploads/, renditions published.
        video = local.services.catalog.get_any(video_id)
        assert (video.title, video.tier, video.published) == ("A tiny clip", "premium", True)
        assert (video.state, video.progress, video.attempts) == ("ready", 100, 1)
        assert video.source_key == f"uploads/{video_id}/{clip.name}"
        assert video.hls_key == f"videos/{video_id}/hls/master.m3u8"
        assert video.object_key == f"videos/{video_id}/240p.mp4"
        assert 1.5 <= video.duration_seconds <= 2.5
        assert s3.head_object(Bucket=bucket, Key=video.poster_key)["ContentType"] == "image/jpeg"
        assert s3.head_object(Bucket=bucket, Key=video.source_key)["ContentLength"] == (
            clip.stat().st_size
        )
        assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")

        # alice (premium) gets the HLS grant and the edge serves the master with its cookies.
        grant = local.grant("alice", video_id)
        assert grant["status"] == 200, grant
        assert grant["format"] == "hls"
        master = requests.get(grant["url"], cookies=grant["cookies"], timeout=10)
        assert master.status_code == 200
        assert master.content == s3.get_object(Bucket=bucket, Key=video.hls_key)["Body"].read()
        assert local.grant("bob", video_id)["status"] == 403

        # Viewers see it in the catalog; the operator in the CLI list and the admin page.
        catalog = requests.get(f"{local.web}/api/videos?limit=100", timeout=10).json()
        assert video_id in {item["id"] for item in catalog["items"]}
        code, out, _ = cli(capsys, "videos", "list", "--env-file", env_file)
        assert re.search(
            rf"^{video_id}\s+premium\s+published\s+2\.\d s\s+A tiny clip  \[ready\]$", out, re.M
        )
        page = browser_for(local, "carol").get(f"{local.web}/admin/videos", timeout=10).text
        assert 'data-published="yes"' in row_of(page, "data-video", video_id)
    finally:
        code, out, _ = cli(capsys, "videos", "remove", video_id, "--env-file", env_file)
    assert code == 0
    with pytest.raises(VideoNotFoundError):
        local.services.catalog.get_any(video_id)
    assert not s3.list_objects_v2(Bucket=bucket, Prefix=f"videos/{video_id}/").get("Contents")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key=f"posters/{video_id}.jpg")
    # The original is kept, tagged as removed.
    tags = s3.get_object_tagging(Bucket=bucket, Key=f"uploads/{video_id}/{clip.name}")["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags}["vidgate-video-id"] == video_id
    assert "vidgate-removed" in {t["Key"] for t in tags}


def test_a_file_that_is_not_a_video_is_refused_with_one_line_and_exit_1(
    local: Local, env_file: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_text("these are meeting notes, not a video\n")
    before, _ = local.services.catalog.list_all(100, None)

    result = cli_process(
        "videos", "add", notes, "--title", "Notes", "--tier", "free", "--env-file", env_file
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "vidgate: notes.mp4 is not a video file (ffmpeg found no video in it)\n"
    after, _ = local.services.catalog.list_all(100, None)
    assert after == before


# --------------------------------------------------------------------------- interrupted uploads


@pytest.fixture(scope="module")
def bucket(boto_session: boto3.Session) -> Iterator[tuple[Any, str]]:
    s3: Any = boto_session.client("s3")
    name = f"uploads-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    yield s3, name


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.mp4"
    path.write_bytes(os.urandom(11 * MIB))  # three 5 MiB parts
    return path


def open_uploads(s3: Any, bucket: str) -> list[dict[str, Any]]:
    return list(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


class PartHook:
    """A botocore hook on UploadPart: lets ``allowed`` parts through, then does ``then``."""

    def __init__(self, s3: Any, allowed: int, then: str) -> None:
        self.s3, self.allowed, self.then, self.seen = s3, allowed, then, 0
        self.unique_id = f"test-part-hook-{uuid.uuid4().hex}"

    def __call__(self, **_: Any) -> None:
        self.seen += 1
        if self.seen <= self.allowed:
            return
        if self.then == "interrupt" and self.seen == self.allowed + 1:
            os.kill(os.getpid(), signal.SIGINT)  # the operator presses Ctrl-C
        raise ConnectionResetError("the network went away mid-part")

    def __enter__(self) -> PartHook:
        self.s3.meta.events.register("before-call.s3.UploadPart", self, unique_id=self.unique_id)
        return self

    def __exit__(self, *exc: object) -> None:
        self.s3.meta.events.unregister("before-call.s3.UploadPart", unique_id=self.unique_id)


def test_a_multipart_upload_completes_with_the_exact_bytes(
    bucket: tuple[Any, str], big_file: Path
) -> None:
    s3, name = bucket
    sent: list[int] = []

    size = upload_file(
        s3,
        name,
        "ok/big.mp4",
        big_file,
        content_type="video/mp4",
        part_size=5 * MIB,
        progress=sent.append,
    )

    assert size == sum(sent) == big_file.stat().st_size
    body = s3.get_object(Bucket=name, Key="ok/big.mp4")["Body"].read()
    assert body == big_file.read_bytes()
    assert open_uploads(s3, name) == []


def test_an_upload_whose_part_fails_is_aborted_and_leaves_no_multipart_upload(
    bucket: tuple[Any, str], big_file: Path
) -> None:
    s3, name = bucket
    with PartHook(s3, allowed=1, then="fail"), pytest.raises(UploadFailedError):
        upload_file(
            s3,
            name,
            "failed/big.mp4",
            big_file,
            content_type="video/mp4",
            part_size=5 * MIB,
            concurrency=1,
        )

    assert open_uploads(s3, name) == []
    with pytest.raises(ClientError):
        s3.head_object(Bucket=name, Key="failed/big.mp4")


def test_an_interrupted_upload_is_aborted_and_leaves_nothing_behind(
    bucket: tuple[Any, str], big_file: Path, boto_session: boto3.Session
) -> None:
    s3, name = bucket
    dynamodb = boto_session.client("dynamodb")
    tables = {t: f"up{uuid.uuid4().hex[:8]}-{t}" for t in ("users", "videos", "audit")}
    create_tables(dynamodb, tables)
    catalog = VideoCatalog(dynamodb, tables["videos"])

    with PartHook(s3, allowed=1, then="interrupt"), pytest.raises(KeyboardInterrupt):
        submit_video(
            big_file,
            VideoDetails(title="Big one", tier="free", video_id="big-one"),
            s3=s3,
            bucket=name,
            catalog=catalog,
            pipeline=Publishing(dynamodb, tables["videos"], catalog=catalog),
            probe=lambda path: 42.0,
            part_size=5 * MIB,
        )

    assert open_uploads(s3, name) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=name, Prefix="uploads/big-one/")
    with pytest.raises(VideoNotFoundError):
        catalog.get_any("big-one")  # the draft went with the upload


# --------------------------------------------------------------------------- keys and configuration


def test_keys_create_and_rotate_store_new_secrets_and_print_the_deploy_steps(
    aws_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "aws.env"
    env.write_text("".join(f"{k}={v}\n" for k, v in aws_env.items()))
    prefix = f"test-keys-{uuid.uuid4().hex[:8]}"

    code, created, err = cli(capsys, "keys", "create", "--secret-prefix", prefix, "--env-file", env)
    assert code == 0, err
    assert "SigningKeySecretArnA=arn:aws:secretsmanager:" in created
    assert "-----BEGIN PUBLIC KEY-----" in created

    # Keys are named by the second they are made in: the next one gets its own prefix.
    code, plan, err = cli(
        capsys,
        "keys",
        "rotate",
        "--current-slot",
        "A",
        "--algorithm",
        "rsa-2048",
        "--secret-prefix",
        f"{prefix}-next",
        "--env-file",
        env,
    )
    assert code == 0, err
    assert "from slot A to slot B" in plan
    assert "SigningPublicKeyB" in plan
    names = [
        s["Name"]
        for s in boto3.client("secretsmanager").list_secrets(
            Filters=[{"Key": "name", "Values": [prefix]}]
        )["SecretList"]
    ]
    assert len(names) == 2
    assert sum(name.startswith(f"{prefix}-next/") for name in names) == 1


def test_an_env_file_wins_over_the_environment_and_the_default_needs_no_vidgate_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / "custom.env"
    env.write_text("# comment\nexport VIDGATE_USERS_TABLE='from-file'\nAWS_REGION=eu-west-1\n\n")
    assert read_env_file(env) == {"VIDGATE_USERS_TABLE": "from-file", "AWS_REGION": "eu-west-1"}
    merged = operator_environment(env, {"AWS_REGION": "us-east-1", "HOME": "/home/op"})
    assert merged == {
        "VIDGATE_USERS_TABLE": "from-file",
        "AWS_REGION": "eu-west-1",
        "HOME": "/home/op",
    }

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".vidgate").mkdir()
    (tmp_path / ".vidgate" / "dev.env").write_text("VIDGATE_AUDIT_TABLE=local\n")
    assert operator_environment(None, {})["VIDGATE_AUDIT_TABLE"] == "local"
    shell = {"VIDGATE_AUDIT_TABLE": "real-aws"}
    assert operator_environment(None, shell) == shell  # a configured shell is never overridden


def test_the_operator_session_sends_every_client_to_the_env_files_endpoint(
    dev_stack: RunningStack,
) -> None:
    env = read_env_file(dev_stack.state_dir / "dev.env")
    operator = Operator.load({Need.TABLES}, env_file=dev_stack.state_dir / "dev.env", environ={})

    assert isinstance(operator.services.session, OperatorSession)
    for service in ("dynamodb", "s3", "cognito-idp", "secretsmanager", "sts"):
        client = operator.services.session.client(service)
        assert client.meta.endpoint_url == env["AWS_ENDPOINT_URL"]
    assert operator.actor(None).startswith("arn:aws:")
    assert operator.actor("  ops-olga ") == "ops-olga"
