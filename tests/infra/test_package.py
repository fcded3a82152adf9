"""The Lambda artifacts work on their own: unpacked, imported and run in a bare interpreter.

``infra/package.py`` builds the x86_64 artifacts (this machine's CPU) for
Lambda's Python; each is unpacked into an empty folder and a fresh
interpreter (``-I -S``: no site-packages, no user paths, no PYTHON*
variables) gets only that folder on its path, plus a folder holding boto3
and its dependencies, as Lambda's runtime provides them. There the handler
modules are imported and run on AWS-shaped events against the AWS emulator:
the PostConfirmation trigger writes the user record, the playback handler
answers 401 without a token and grants a signed URL with a real Cognito
access token (cryptography from the zip at work), the web app
renders its home page from the templates inside its zip. Flask is not
importable next to the handler artifact. Every AWS call the packaged code
made is checked against the IAM role the template gives that function.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest

from app.catalog import Video, VideoCatalog
from app.dynamo import dynamodb_client
from app.keys import generate_key_pair, store_private_key
from app.local.emulator import Emulator
from app.tables import create_tables
from app.users import UserDirectory
from infra import package
from tests.infra.cfn import SCENARIOS, as_list, load, of_type, resolve

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
ARCH = "x86_64"
PASSWORD = "Pack4ged-Handler-Test!"  # throwaway emulator user
CDN = "https://d111111abcdef8.cloudfront.net"
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
"""What Lambda's Python runtime puts on the path after the function's own code."""

CHILD = r"""
import json, os, sys
task, runtime = sys.argv[1], sys.argv[2]
sys.path[:0] = [task, runtime]
inputs = json.loads(sys.stdin.read())

import botocore.client
calls = []
_original = botocore.client.BaseClient._make_api_call

def _recording(self, operation, params):
    item = {"service": self.meta.service_model.endpoint_prefix, "operation": operation}
    for key in ("TableName", "IndexName", "SecretId", "UserPoolId"):
        if key in params:
            item[key] = params[key]
    if operation == "TransactWriteItems":
        item["items"] = [[kind, body["TableName"]] for entry in params["TransactItems"]
                         for kind, body in entry.items()]
    if operation == "BatchGetItem":
        item["tables"] = sorted(params["RequestItems"])
    calls.append(item)
    return _original(self, operation, params)

botocore.client.BaseClient._make_api_call = _recording

def importable(name):
    try:
        __import__(name)
    except ImportError:
        return False
    return True

out = {"forbidden": {name: importable(name) for name in inputs["forbidden"]}, "calls": {}}
for step in inputs["steps"]:
    os.environ.clear()
    os.environ.update(inputs["env"][step["function"]])
    module = __import__(step["module"], fromlist=["handler"])
    del calls[:]
    result = module.handler(step["event"], None)
    out[step["name"]] = result
    out["calls"].setdefault(step["function"], []).extend(calls[:])
out["file_of"] = {name: getattr(sys.modules.get(name), "__file__", None)
                  for name in ("jwt", "cryptography", "boto3", "app", "flask")}
print(json.dumps(out))
"""


# --------------------------------------------------------------------------- artifacts


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str


def _lambda_like_interpreter() -> Interpreter:
    """An interpreter of Lambda's Python version if this machine has one, else this one."""
    wanted = package.LAMBDA_PYTHON
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    candidates = [f"python{wanted}"] + [
        str(path)
        for root in roots
        if root
        for path in sorted(Path(root, "versions").glob(f"{wanted}.*/bin/python{wanted}"))
    ]
    for candidate in candidates:
        try:
            result = subprocess.run(
                [candidate, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError:
            continue
        if result.returncode == 0 and result.stdout.strip() == wanted:
            return Interpreter(candidate, wanted)
    return Interpreter(sys.executable, f"{sys.version_info[0]}.{sys.version_info[1]}")


@pytest.fixture(scope="module")
def interpreter() -> Interpreter:
    found = _lambda_like_interpreter()
    if found.version != package.LAMBDA_PYTHON:
        warnings.warn(
            f"no Python {package.LAMBDA_PYTHON} here: the artifacts are built and run for "
            f"Python {found.version} instead",
            stacklevel=1,
        )
    return found


def _unpack(artifact: package.Artifact, into: Path) -> Path:
    into.mkdir()
    with zipfile.ZipFile(artifact.path) as archive:
        archive.extractall(into)
    return into


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, interpreter: Interpreter) -> dict[str, Path]:
    """Both x86_64 artifacts, unpacked each into its own empty folder; and the runtime folder."""
    out = tmp_path_factory.mktemp("artifacts")
    folders: dict[str, Path] = {}
    for kind in package.KINDS:
        artifact = package.build(kind, ARCH, out_dir=out, python_version=interpreter.version)
        folders[kind] = _unpack(artifact, out / f"{kind}-unpacked")
    runtime = out / "lambda-runtime"
    runtime.mkdir()
    for name in RUNTIME_MODULES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, name
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (runtime / source.name).symlink_to(source)
    folders["runtime"] = runtime
    return folders


# --------------------------------------------------------------------------- emulator


@dataclass
class Stack:
    env: dict[str, str]
    tables: dict[str, str]
    user_sub: str
    username: str
    access_token: str
    secret_id: str
    session: boto3.Session


@pytest.fixture(scope="module")
def stack(emulator: Emulator, boto_session: boto3.Session) -> Iterator[Stack]:
    prefix = f"pk{uuid.uuid4().hex[:10]}"
    cognito: Any = boto_session.client("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName=f"{prefix}-pool")["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=f"{prefix}-web",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    username = "packaged-viewer"
    user = cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[{"Name": "email", "Value": "viewer@example.com"}],
        MessageAction="SUPPRESS",
    )["User"]
    cognito.admin_set_user_password(
        UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True
    )
    cognito.create_group(UserPoolId=pool_id, GroupName="admin")
    cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName="admin")
    token = cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["AccessToken"]
    sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")

    tables = {
        logical: f"{prefix}-{logical}" for logical in ("users", "videos", "audit", "sessions")
    }
    dynamodb = dynamodb_client(boto_session)
    create_tables(dynamodb, tables)
    VideoCatalog(dynamodb, tables["videos"]).put(
        Video(
            video_id="free-clip",
            title="Free Clip",
            description="a free clip",
            tier="free",
            object_key="videos/free-clip/clip.mp4",
            content_type="video/mp4",
            duration_seconds=10.0,
            poster_key="posters/free-clip.jpg",
            size_bytes=1000,
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
    secret_id = f"{prefix}/cloudfront-key"
    pair = generate_key_pair("ecdsa-p256")
    store_private_key(boto_session.client("secretsmanager"), secret_id, pair.private_pem)
    env = {
        "AWS_ENDPOINT_URL": emulator.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "VIDGATE_USER_POOL_ID": pool_id,
        "VIDGATE_CLIENT_ID": client_id,
        "VIDGATE_JWKS_URL": f"{emulator.endpoint}/{pool_id}/.well-known/jwks.json",
        "VIDGATE_USERS_TABLE": tables["users"],
        "VIDGATE_VIDEOS_TABLE": tables["videos"],
        "VIDGATE_AUDIT_TABLE": tables["audit"],
        "VIDGATE_SESSIONS_TABLE": tables["sessions"],
        "VIDGATE_BUCKET": f"{prefix}-media",
        "VIDGATE_CDN_URL": CDN,
        # One host: the site's URL is the distribution's, for pages and media alike.
        "VIDGATE_BASE_URL": CDN,
        "VIDGATE_SIGNING_KEY_SECRET": secret_id,
        "VIDGATE_KEY_PAIR_ID": "KPACKAGETEST01",
        "VIDGATE_URL_TTL_SECONDS": "300",
        "VIDGATE_SECRET_KEY": "packaged-web-app-test-secret-key-0123456789",
    }
    yield Stack(env, tables, sub, username, token, secret_id, boto_session)


# --------------------------------------------------------------------------- events


def _event(name: str, **replace: str) -> dict[str, Any]:
    text = (EVENTS / name).read_text(encoding="utf-8")
    for old, new in replace.items():
        text = text.replace(old, new)
    event: dict[str, Any] = json.loads(text)
    return event


def _without_token(event: dict[str, Any]) -> dict[str, Any]:
    event["headers"].pop("authorization", None)
    return event


def _post_confirmation(stack: Stack) -> dict[str, Any]:
    return {
        "version": "1",
        "region": "us-east-1",
        "userPoolId": stack.env["VIDGATE_USER_POOL_ID"],
        "userName": stack.username,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "CLIENT_ID"},
        "triggerSource": "PostConfirmation_ConfirmSignUp",
        "request": {
            "userAttributes": {
                "sub": stack.user_sub,
                "email": "viewer@example.com",
                "email_verified": "true",
                "cognito:user_status": "CONFIRMED",
            }
        },
        "response": {},
    }


def _api_event(
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A payload 2.0 event shaped like the samples in tests/events."""
    event = _event("apigw-v2-list-videos.json")
    event.update(rawPath=path, rawQueryString=urlencode(query or {}), routeKey="$default")
    event.pop("queryStringParameters", None)
    if query:
        event["queryStringParameters"] = dict(query)
    if token:
        event["headers"]["authorization"] = f"Bearer {token}"
    event["headers"].update(headers or {})
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["content-type"] = "application/json"
    event["requestContext"]["http"].update(method=method, path=path)
    return event


def _web_home_event() -> dict[str, Any]:
    return _api_event("GET", "/", headers={"accept": "text/html"})


def _environment(stack: Stack, function: str) -> dict[str, str]:
    """The variables the template gives ``function``, with the emulator's values."""
    template = resolve(load(), SCENARIOS["oai"])
    names = template["Resources"][function]["Properties"]["Environment"]["Variables"]
    aws = {k: v for k, v in stack.env.items() if k.startswith("AWS_")}
    env = {**aws, **{name: stack.env[name] for name in names}, "PATH": os.environ["PATH"]}
    if "VIDGATE_USER_POOL_ID" in env:
        # AWS serves the JWKS at the address derived from the pool id; the emulator elsewhere.
        env["VIDGATE_JWKS_URL"] = stack.env["VIDGATE_JWKS_URL"]
    return env


def _run(interpreter: Interpreter, task: Path, runtime: Path, inputs: dict[str, Any]) -> Any:
    result = subprocess.run(
        [interpreter.path, "-I", "-S", "-c", CHILD, str(task), str(runtime)],
        input=json.dumps(inputs),
        capture_output=True,
        text=True,
        timeout=180,
        env={"PATH": os.environ["PATH"]},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def handler_run(built: dict[str, Path], stack: Stack, interpreter: Interpreter) -> Any:
    steps: list[dict[str, Any]] = [
        {"name": "trigger", "function": "TriggerFunction",
         "module": "lambda_handlers.cognito_triggers", "event": _post_confirmation(stack)},
        {"name": "trigger_retry", "function": "TriggerFunction",
         "module": "lambda_handlers.cognito_triggers", "event": _post_confirmation(stack)},
        {"name": "anonymous_playback", "function": "PlaybackFunction",
         "module": "lambda_handlers.playback",
         "event": _without_token(_event("apigw-v2-playback.json", VIDEO_ID="free-clip"))},
        {"name": "playback", "function": "PlaybackFunction", "module": "lambda_handlers.playback",
         "event": _event("apigw-v2-playback.json", VIDEO_ID="free-clip",
                         TOKEN=stack.access_token)},
        {"name": "list_videos", "function": "PlaybackFunction",
         "module": "lambda_handlers.playback", "event": _event("apigw-v2-list-videos.json")},
        # Another video than the granted one, which the catalog now remembers for a second.
        {"name": "get_video", "function": "PlaybackFunction",
         "module": "lambda_handlers.playback", "event": _api_event("GET", "/api/videos/other")},
        {"name": "me", "function": "PlaybackFunction", "module": "lambda_handlers.playback",
         "event": _api_event("GET", "/api/me", token=stack.access_token)},
        {"name": "admin_users", "function": "AdminFunction", "module": "lambda_handlers.admin",
         "event": _api_event("GET", "/api/admin/users", token=stack.access_token)},
        {"name": "admin_grant", "function": "AdminFunction", "module": "lambda_handlers.admin",
         "event": _api_event("PUT", f"/api/admin/users/{stack.user_sub}/premium",
                             token=stack.access_token, headers={"if-match": '"0"'},
                             body={"premium": True, "until": None})},
        {"name": "admin_audit", "function": "AdminFunction", "module": "lambda_handlers.admin",
         "event": _api_event("GET", "/api/admin/audit", query={"user_id": stack.user_sub},
                             token=stack.access_token)},
        {"name": "admin_audit_all", "function": "AdminFunction",
         "module": "lambda_handlers.admin",
         "event": _api_event("GET", "/api/admin/audit", token=stack.access_token)},
    ]  # fmt: skip
    inputs = {
        "forbidden": sorted(package.FORBIDDEN_IN_HANDLERS),
        "env": {step["function"]: _environment(stack, step["function"]) for step in steps},
        "steps": steps,
    }
    return _run(interpreter, built["handlers"], built["runtime"], inputs)


@pytest.fixture(scope="module")
def web_run(built: dict[str, Path], stack: Stack, interpreter: Interpreter) -> Any:
    step = {"name": "home", "function": "WebFunction", "module": "app.web.lambda_entry",
            "event": _web_home_event()}  # fmt: skip
    inputs = {"forbidden": [], "env": {"WebFunction": _environment(stack, "WebFunction")},
              "steps": [step]}  # fmt: skip
    return _run(interpreter, built["web"], built["runtime"], inputs)


# --------------------------------------------------------------------------- tests


def test_the_handler_artifact_has_no_flask_no_emulator_and_no_boto3(
    built: dict[str, Path], handler_run: Any
) -> None:
    assert handler_run["forbidden"] == {name: False for name in package.FORBIDDEN_IN_HANDLERS}
    top_level = {path.name for path in built["handlers"].iterdir()}
    assert not top_level & {"boto3", "botocore", "flask", "moto", "tests"}
    for folder in ("web", "local", "ops"):
        assert not (built["handlers"] / "app" / folder).exists()
    task = str(built["handlers"])
    assert handler_run["file_of"]["cryptography"].startswith(task)
    assert handler_run["file_of"]["app"].startswith(task)
    assert handler_run["file_of"]["boto3"].startswith(str(built["runtime"]))


def test_the_web_artifact_has_the_web_app_but_no_local_stack_or_operator_tools(
    built: dict[str, Path],
) -> None:
    assert (built["web"] / "app" / "web" / "__init__.py").is_file()
    assert (built["web"] / "templates").is_dir()
    for folder in ("local", "ops"):
        assert not (built["web"] / "app" / folder).exists()


def test_sources_are_chosen_by_folder_and_every_other_app_file_ships() -> None:
    in_app = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "app").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    shipped = {name for _, name in package.source_files("handlers")}
    outer = {name for name in in_app if name.split("/")[1] in ("web", "local", "ops")}
    assert shipped & in_app == in_app - outer
    assert any(name.startswith("lambda_handlers/") for name in shipped)


def test_a_handler_the_template_names_but_the_tree_lacks_fails_the_build(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        (ROOT / "infra" / "template.yaml")
        .read_text()
        .replace("lambda_handlers.playback.handler", "lambda_handlers.playbak.handler")
    )
    with pytest.raises(package.PackagingError, match=r"lambda_handlers\.playbak"):
        package.handler_modules(template)


def test_the_packaged_trigger_creates_the_user_record(handler_run: Any, stack: Stack) -> None:
    assert handler_run["trigger"] == _post_confirmation(stack)  # Cognito needs the event back
    assert handler_run["trigger_retry"] == _post_confirmation(stack)  # a retry is harmless
    record = UserDirectory(dynamodb_client(stack.session), stack.tables["users"]).get(
        stack.user_sub
    )
    assert record.username == stack.username
    assert record.email == "viewer@example.com"


def test_the_packaged_playback_handler_refuses_an_anonymous_viewer(handler_run: Any) -> None:
    result = handler_run["anonymous_playback"]
    assert result["statusCode"] == 401
    assert json.loads(result["body"])["error"] == "unauthorized"


def test_the_packaged_playback_handler_grants_a_signed_url_with_a_cognito_token(
    handler_run: Any,
) -> None:
    result = handler_run["playback"]
    assert result["statusCode"] == 200, result
    url = json.loads(result["body"])["url"]
    assert url.startswith(f"{CDN}/videos/free-clip/clip.mp4?")
    assert "Signature=" in url
    assert "Key-Pair-Id=KPACKAGETEST01" in url
    listing = json.loads(handler_run["list_videos"]["body"])
    assert [item["id"] for item in listing["items"]] == ["free-clip"]
    assert listing["items"][0]["poster_url"] == f"{CDN}/posters/free-clip.jpg"


def test_the_packaged_admin_handler_grants_premium_with_its_audit_record(
    handler_run: Any, stack: Stack
) -> None:
    users = json.loads(handler_run["admin_users"]["body"])
    assert handler_run["admin_users"]["statusCode"] == 200, users
    assert stack.user_sub in [item["user_id"] for item in users["items"]]
    assert handler_run["admin_grant"]["statusCode"] == 200, handler_run["admin_grant"]
    assert json.loads(handler_run["admin_grant"]["body"])["premium"] is True
    audit = json.loads(handler_run["admin_audit"]["body"])
    assert handler_run["admin_audit"]["statusCode"] == 200, audit
    assert len(audit["items"]) == 1
    everyone = json.loads(handler_run["admin_audit_all"]["body"])
    assert [item["user_id"] for item in everyone["items"]] == [stack.user_sub]
    me = json.loads(handler_run["me"]["body"])
    assert me["user_id"] == stack.user_sub


def test_the_packaged_web_app_renders_pages_from_the_templates_in_its_zip(
    built: dict[str, Path], web_run: Any
) -> None:
    result = web_run["home"]
    assert result["statusCode"] == 200, result
    assert "<html" in result["body"].lower()
    assert web_run["file_of"]["flask"].startswith(str(built["web"]))
    assert (built["web"] / "templates" / "base.html").exists()


# --------------------------------------------------------------------------- IAM


def _grants(function: str) -> list[tuple[str, tuple[str, ...]]]:
    """(action, resource) pairs the function's role allows, resources as symbolic keys."""
    template = resolve(load(), SCENARIOS["oai"])
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    pairs: list[tuple[str, tuple[str, ...]]] = []
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            for resource in as_list(statement["Resource"]):
                key: tuple[str, ...]
                if "Fn::GetAtt" in resource:
                    key = ("arn", resource["Fn::GetAtt"][0])
                elif "Fn::Sub" in resource and "/index/" in resource["Fn::Sub"]:
                    table, index = resource["Fn::Sub"].split(".Arn}/index/")
                    key = ("index", table.removeprefix("${"), index)
                elif "Ref" in resource:
                    key = ("param", resource["Ref"])
                else:
                    continue
                pairs += [(action, key) for action in as_list(statement["Action"])]
    return pairs


def _needed(call: dict[str, Any], stack: Stack) -> list[tuple[str, tuple[str, ...]]]:
    """What IAM must allow for one recorded call, in :func:`_grants`' terms."""
    table_ids = {name: f"{logical.capitalize()}Table" for logical, name in stack.tables.items()}
    service, operation = call["service"], call["operation"]
    if operation == "TransactWriteItems":
        verbs = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                 "ConditionCheck": "ConditionCheckItem"}  # fmt: skip
        return [(f"dynamodb:{verbs[kind]}", ("arn", table_ids[t])) for kind, t in call["items"]]
    if operation == "BatchGetItem":
        return [("dynamodb:BatchGetItem", ("arn", table_ids[t])) for t in call["tables"]]
    if service == "dynamodb":
        table = table_ids[call["TableName"]]
        if "IndexName" in call:
            return [(f"dynamodb:{operation}", ("index", table, call["IndexName"]))]
        return [(f"dynamodb:{operation}", ("arn", table))]
    if service == "secretsmanager":
        assert call["SecretId"] == stack.secret_id
        return [(f"secretsmanager:{operation}", ("param", "SigningKeySecretArnA"))]
    if service == "cognito-idp" and "UserPoolId" in call:
        return [(f"cognito-idp:{operation}", ("arn", "UserPool"))]
    return []  # unauthenticated Cognito calls (InitiateAuth...) need no IAM permission


def test_every_aws_call_the_packaged_handlers_made_is_allowed_by_their_template_role(
    handler_run: Any, stack: Stack
) -> None:
    assert handler_run["calls"]["PlaybackFunction"], "the playback handler made no AWS call?"
    for function, calls in handler_run["calls"].items():
        grants = set(_grants(function))
        for call in calls:
            for needed in _needed(call, stack):
                assert needed in grants, f"{function} needs {needed} for {call}"


@pytest.mark.parametrize("function", ["PlaybackFunction", "AdminFunction", "TriggerFunction"])
def test_every_data_permission_of_the_api_roles_is_used_by_the_handlers(
    handler_run: Any, stack: Stack, function: str
) -> None:
    used = {needed for call in handler_run["calls"][function] for needed in _needed(call, stack)}
    granted = {(action, key) for action, key in _grants(function) if not action.startswith("logs:")}
    assert granted - used == set(), f"{function}: granted but never needed"


def test_every_role_in_the_template_belongs_to_a_packaged_function() -> None:
    template = resolve(load(), SCENARIOS["oai"])
    used = {
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in of_type(template, "AWS::Serverless::Function").values()
    }
    assert used == set(of_type(template, "AWS::IAM::Role"))


# --------------------------------------------------------------------------- cold imports


def test_cold_import_times_are_measured_for_each_landed_handler() -> None:
    times = package.cold_import_times(runs=1)
    assert {package.IMPORT_FLOOR, "playback", "cognito_triggers"} <= set(times)
    assert all(seconds > 0 for seconds in times.values())
