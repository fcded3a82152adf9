"""The Lambda artifacts work on their own: unpacked, imported and run in a bare interpreter.

``infra/package.py`` builds the x86_64 artifacts (this machine's CPU) for
Lambda's Python; each is unpacked into an empty folder and a fresh
interpreter (``-I -S``: no site-packages, no user paths, no PYTHON*
variables) gets only that folder on its path, plus a folder holding boto3
and its dependencies, as Lambda's runtime provides them. There the handler
modules are imported and run on AWS-shaped events against the AWS emulator:
the PostConfirmation trigger writes the user record, the playback handler
answers 401 without a token and grants a signed URL with a real Cognito
access token (cryptography from the zip at work). Flask is not importable
next to the handler artifact.

The web zip's two entry points run as the two web functions, each in its own
interpreter with the environment the template gives it, and a browser-like
client visits the site through them, each request going to the function the
template's HTTP API routes it to: sign-up and confirmation (the emulator
fires no PostConfirmation trigger, like a trigger that failed), sign-in (which
creates the missing user record, also for a user an admin created), the
watch page and a grant, the admin pages (a premium grant, the audit trail, a
catalog edit), an idle and an expired session, sign-out. Every AWS call the
packaged code made is checked against the IAM role the template gives that
function, conditions included, and every permission of a role must have been
needed.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import re
import selectors
import subprocess
import sys
import uuid
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit

import boto3
import pytest

from app.billing import BillingStore, VideoOffer
from app.catalog import Video, VideoCatalog
from app.dynamo import dynamodb_client
from app.errors import UserNotFoundError
from app.keys import generate_key_pair, store_private_key
from app.local.analytics_setup import ensure_events_key, ensure_events_stream
from app.local.bootstrap import ensure_session_key
from app.local.emulator import Emulator
from app.local.stripe_standin import StripeStandIn, demo_prices
from app.local.webserver import serve_wsgi
from app.publishing import Publishing
from app.tables import create_tables
from app.users import UserDirectory
from app.web.session_store import SessionStore
from infra import package
from tests.infra.cfn import (
    SCENARIOS,
    as_list,
    http_api_routes,
    load,
    of_type,
    resolve,
    route_key_for,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
ARCH = "x86_64"
PASSWORD = "Pack4ged-Handler-Test!"  # throwaway emulator user
CDN = "https://d111111abcdef8.cloudfront.net"
EVENTS_KEY_SUFFIX = "/viewing-events-key"
ATHENA_ON_BEHALF = frozenset(
    {
        "ReadTableDefinition",
        "LocateBucket",
        "ListEventsAndResults",
        "ReadEvents",
        "WriteAndReadResults",
    }
)
"""Statements Athena uses with the caller's credentials (the table, the events, the results):
no call of the function's own needs them (docs/analytics.md#an-7)."""
ATHENA_WORKGROUP = (
    "arn:${AWS::Partition}:athena:${AWS::Region}:${AWS::AccountId}:workgroup/${AnalyticsWorkGroup}"
)
ATHENA_ON_DEADLINE = frozenset({"athena:StopQueryExecution"})
"""Called only for a query that outlives its deadline or whose sibling failed; the emulator's
queries succeed at once, so no offline visit can need it (app/analytics/athena.py)."""
MEDIACONVERT_ROLE = "arn:aws:iam::111122223333:role/vidgate-MediaConvertRole-PACKAGE"
MEDIACONVERT_QUEUE = "arn:aws:mediaconvert:us-east-1:111122223333:queues/vidgate-package"
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
"""What Lambda's Python runtime puts on the path after the function's own code."""

RECORDER = r"""
import json, os, re, sys
task, runtime = sys.argv[1], sys.argv[2]
sys.path[:0] = [task, runtime]

import botocore.client
calls = []
_original = botocore.client.BaseClient._make_api_call
# A name or a document path (a.b[0].#c): IAM's dynamodb:Attributes holds its first part only.
_WORDS = re.compile(r"[#:]?[A-Za-z_][A-Za-z0-9_]*(?:\.#?[A-Za-z0-9_-]+|\[[0-9]+\])*")
_NOT_NAMES = {"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN",
              "if_not_exists", "list_append", "attribute_exists", "attribute_not_exists",
              "attribute_type", "begins_with", "contains", "size"}

def _attributes(params):
    # The top-level attribute names a request touches: what IAM's dynamodb:Attributes holds.
    if "Item" in params:
        return sorted(params["Item"])
    names = set(params.get("Key", {}))
    aliases = params.get("ExpressionAttributeNames", {})
    for key in ("UpdateExpression", "ConditionExpression", "ProjectionExpression"):
        for path in _WORDS.findall(params.get(key, "")):
            word = re.split(r"[.\[]", path)[0]
            if word.startswith("#"):
                names.add(aliases[word])
            elif not word.startswith(":") and word not in _NOT_NAMES:
                names.add(word)
    return sorted(names)

_mediaconvert_jobs = []

def _mediaconvert(self, operation, params):
    # No emulator serves MediaConvert: validate against botocore's model, answer like AWS.
    from botocore.validate import validate_parameters
    validate_parameters(params, self.meta.service_model.operation_model(operation).input_shape)
    if operation == "Probe":
        return {"ProbeResults": [{"Container": {"Format": "mp4", "Duration": 12.0, "Tracks": [
            {"TrackType": "video", "Codec": "AVC", "VideoProperties": {"Width": 1280,
             "Height": 720, "FrameRate": {"Numerator": 25, "Denominator": 1}}},
            {"TrackType": "audio", "Codec": "AAC"}]}}]}
    if operation == "CreateJob":
        _mediaconvert_jobs.append(params)
        return {"Job": {"Id": "1764260000000-pack%02d" % len(_mediaconvert_jobs),
                        "Role": params["Role"], "Settings": params["Settings"]}}
    raise AssertionError("no canned MediaConvert answer for " + operation)

def _recording(self, operation, params):
    item = {"service": self.meta.service_model.endpoint_prefix, "operation": operation}
    for key in ("TableName", "IndexName", "SecretId", "UserPoolId", "Queue", "Role", "Key",
                "WorkGroup"):
        if key in params and (key != "Key" or isinstance(params[key], str)):
            item[key] = params[key]
    if item["service"] == "s3":
        item.update({k: params[k] for k in ("Bucket", "Key", "CopySource") if k in params})
    if item["service"] == "dynamodb" and operation in ("PutItem", "UpdateItem", "DeleteItem"):
        item["attributes"] = _attributes(params)
    if item["service"] == "dynamodb" and operation in ("GetItem", "PutItem", "UpdateItem",
                                                       "DeleteItem"):
        key = params.get("Item") or params.get("Key") or {}
        # The partition key of each table (named <prefix>-<logical>): IAM's dynamodb:LeadingKeys.
        hash_key = {"audit": "user_id", "users": "user_id", "videos": "video_id",
                    "sessions": "session_id", "billing": "pk"}.get(
                        params["TableName"].rsplit("-", 1)[-1])
        item["leading"] = [key[hash_key]["S"]] if hash_key in key else []
    if operation == "TransactWriteItems":
        item["items"] = [[kind, body["TableName"], _attributes(body)]
                         for entry in params["TransactItems"] for kind, body in entry.items()]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        item["tables"] = sorted(params["RequestItems"])
    calls.append(item)
    if item["service"] == "mediaconvert":
        return _mediaconvert(self, operation, params)
    return _original(self, operation, params)

botocore.client.BaseClient._make_api_call = _recording

def drain():
    # Viewing events leave from the sink's thread: send them before the next step's calls count.
    import gc
    sinks = sys.modules.get("app.firehose_sink")
    for sink in gc.get_objects() if sinks is not None else ():
        if isinstance(sink, sinks.FirehoseSink):
            assert sink.flush(10.0), "viewing events still queued after 10 s"
"""
"""Run first in every child: the artifact on the path, and a record of every AWS call."""

CHILD = (
    RECORDER
    + r"""
inputs = json.loads(sys.stdin.read())

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
    event = step["event"]
    if "session_of" in step:
        # The stream an earlier step opened: its id is known once that step has answered.
        opened = json.loads(out[step["session_of"]]["body"])["session_id"]
        event = json.loads(json.dumps(event).replace("SESSION_ID", opened))
    del calls[:]
    result = module.handler(event, None)
    drain()
    out[step["name"]] = result
    out["calls"].setdefault(step["function"], []).extend(calls[:])
out["file_of"] = {name: getattr(sys.modules.get(name), "__file__", None)
                  for name in ("jwt", "cryptography", "boto3", "app", "flask")}
print(json.dumps(out))
"""
)
"""Runs a list of steps, each with its function's environment, and prints what happened."""

SERVER = (
    RECORDER
    + r"""
protocol, sys.stdout = sys.stdout, sys.stderr  # the app's own prints never reach the protocol
os.environ.clear()
os.environ.update(json.loads(sys.stdin.readline()))
module = __import__(sys.argv[3], fromlist=["handler"])  # Lambda's init phase
file_of = {name: getattr(sys.modules.get(name), "__file__", None) for name in ("app", "flask")}
def taken():
    # pop, not a copy then a clear: a background thread may append meanwhile.
    made = []
    while calls:
        made.append(calls.pop(0))
    return made

protocol.write(json.dumps({"calls": taken(), "file_of": file_of}) + "\n")
protocol.flush()
for line in sys.stdin:
    result = module.handler(json.loads(line), None)
    drain()
    protocol.write(json.dumps({"result": result, "calls": taken()}) + "\n")
    protocol.flush()
"""
)
"""One function's execution environment: imports its entry module, then answers events
(one JSON line in, one out), reporting the AWS calls each made."""


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


def _video(video_id: str, title: str, tier: Literal["free", "premium"]) -> Video:
    return Video(
        video_id=video_id,
        title=title,
        description=f"a {tier} clip",
        tier=tier,
        object_key=f"videos/{video_id}/clip.mp4",
        content_type="video/mp4",
        duration_seconds=10.0,
        poster_key=f"posters/{video_id}.jpg",
        size_bytes=1000,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


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
        logical: f"{prefix}-{logical}"
        for logical in ("users", "videos", "audit", "sessions", "billing")
    }
    dynamodb = dynamodb_client(boto_session)
    create_tables(dynamodb, tables)
    VideoCatalog(dynamodb, tables["videos"]).put(_video("free-clip", "Free Clip", "free"))
    VideoCatalog(dynamodb, tables["videos"]).put(_video("rent-clip", "Rent Clip", "premium"))
    secret_id = f"{prefix}/cloudfront-key"
    pair = generate_key_pair("ecdsa-p256")
    store_private_key(boto_session.client("secretsmanager"), secret_id, pair.private_pem)
    # Viewing events: the bucket they land in, the HMAC key, the Firehose stream.
    boto_session.client("s3").create_bucket(Bucket=f"{prefix}-media")
    events_key = ensure_events_key(
        boto_session.client("secretsmanager"), f"{prefix}{EVENTS_KEY_SUFFIX}"
    )
    events_stream = ensure_events_stream(
        boto_session.client("firehose"), f"{prefix}-events", f"{prefix}-media"
    )
    # The admin dashboard's queries run in this workgroup (the emulator answers with no rows).
    boto_session.client("athena").create_work_group(
        Name=f"{prefix}-analytics",
        Configuration={
            "ResultConfiguration": {"OutputLocation": f"s3://{prefix}-media/athena-results/"}
        },
    )
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
        "VIDGATE_SESSION_KEY_ID": ensure_session_key(
            boto_session.client("kms"), f"alias/{prefix}-session-tokens"
        ),
        "VIDGATE_BUCKET": f"{prefix}-media",
        "VIDGATE_CDN_URL": CDN,
        # One host: the site's URL is the distribution's, for pages and media alike.
        "VIDGATE_BASE_URL": CDN,
        "VIDGATE_SIGNING_KEY_SECRET": secret_id,
        "VIDGATE_KEY_PAIR_ID": "KPACKAGETEST01",
        "VIDGATE_URL_TTL_SECONDS": "300",
        "VIDGATE_SECRET_KEY": "packaged-web-app-test-secret-key-0123456789",
        "VIDGATE_EVENTS_STREAM": events_stream,
        "VIDGATE_EVENTS_KEY_SECRET": events_key,
        "VIDGATE_ANALYTICS_DATABASE": "vidgate_analytics",
        "VIDGATE_ANALYTICS_WORKGROUP": f"{prefix}-analytics",
        "VIDGATE_MEDIACONVERT_ROLE_ARN": MEDIACONVERT_ROLE,
        "VIDGATE_MEDIACONVERT_QUEUE_ARN": MEDIACONVERT_QUEUE,
        # Selling: the key's value matters only to a checkout, the webhook secret signs below.
        "VIDGATE_BILLING_TABLE": tables["billing"],
        "VIDGATE_STRIPE_KEY_SECRET": _secret(boto_session, f"{prefix}/stripe-key", "sk_test_pk"),
        "VIDGATE_STRIPE_WEBHOOK_SECRET": _secret(
            boto_session, f"{prefix}/stripe-webhook", WEBHOOK_SECRET
        ),
    }
    yield Stack(env, tables, sub, username, token, secret_id, boto_session)


WEBHOOK_SECRET = "whsec_packagetest"  # a test value
SECRET_PARAMETERS = {
    "/stripe-key": "StripeSecretKey",
    "/stripe-webhook": "StripeWebhookSecret",
}
"""Secrets the stack stores beside the signing key, by name suffix -> the template's resource."""


def _secret(boto_session: boto3.Session, name: str, value: str) -> str:
    boto_session.client("secretsmanager").create_secret(Name=name, SecretString=value)
    return name


def _stripe_event(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A Stripe event as API Gateway hands it to the webhook function, signed now."""
    from app.local.stripe_standin import sign

    body = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex}",
            "object": "event",
            "created": int(datetime.now(UTC).timestamp()),
            "type": event_type,
            "data": {"object": obj},
        }
    )
    event = _api_event("POST", "/webhooks/stripe")
    event["body"] = body
    event["headers"]["content-type"] = "application/json"
    now = int(datetime.now(UTC).timestamp())
    event["headers"]["stripe-signature"] = sign(body.encode(), WEBHOOK_SECRET, now)
    return event


def _rental_paid(stack: Stack) -> dict[str, Any]:
    return _stripe_event(
        "checkout.session.completed",
        {
            "id": f"cs_test_{uuid.uuid4().hex}",
            "object": "checkout.session",
            "mode": "payment",
            "payment_status": "paid",
            "payment_intent": "pi_packagetest",
            "metadata": {
                "user_id": stack.user_sub,
                "video_id": "rent-clip",
                "kind": "rent",
                "window_hours": "48",
            },
        },
    )


def _subscription_paid(stack: Stack) -> dict[str, Any]:
    end = int(datetime.now(UTC).timestamp()) + 30 * 86400
    return _stripe_event(
        "customer.subscription.created",
        {
            "id": "sub_packagetest",
            "object": "subscription",
            "customer": "cus_packagetest",
            "status": "active",
            "cancel_at_period_end": False,
            "current_period_end": end,
            "metadata": {"user_id": stack.user_sub},
            "items": {"object": "list", "data": []},
        },
    )


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


def _environment(values: dict[str, str], function: str) -> dict[str, str]:
    """The variables the template gives ``function``, with the emulator's ``values``."""
    template = resolve(load(), SCENARIOS["oai"])
    names = template["Resources"][function]["Properties"]["Environment"]["Variables"]
    aws = {k: v for k, v in values.items() if k.startswith("AWS_")}
    env = {**aws, **{name: values[name] for name in names}, "PATH": os.environ["PATH"]}
    if "VIDGATE_USER_POOL_ID" in env:
        # AWS serves the JWKS at the address derived from the pool id; the emulator elsewhere.
        env["VIDGATE_JWKS_URL"] = values["VIDGATE_JWKS_URL"]
    if "VIDGATE_STRIPE_KEY_SECRET" in env and "VIDGATE_STRIPE_API_BASE" in values:
        env["VIDGATE_STRIPE_API_BASE"] = values["VIDGATE_STRIPE_API_BASE"]  # the stand-in
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
        # A search: one Query on browse-index, the page's videos in one BatchGetItem.
        {"name": "search_videos", "function": "PlaybackFunction",
         "module": "lambda_handlers.playback",
         "event": _api_event("GET", "/api/videos", query={"q": "free", "sort": "title"})},
        # Another video than the granted one, which the catalog now remembers for a second.
        {"name": "get_video", "function": "PlaybackFunction",
         "module": "lambda_handlers.playback", "event": _api_event("GET", "/api/videos/other")},
        {"name": "me", "function": "PlaybackFunction", "module": "lambda_handlers.playback",
         "event": _api_event("GET", "/api/me", token=stack.access_token)},
        # The viewer stops the free clip, as a player does: the free plan has one stream.
        {"name": "end_stream", "function": "PlaybackFunction",
         "module": "lambda_handlers.playback", "session_of": "playback",
         "event": _api_event("DELETE", "/api/playback-sessions/SESSION_ID",
                             token=stack.access_token)},
        # Selling: a rental paid through a webhook, its first play, then a subscription.
        {"name": "webhook_rental", "function": "StripeWebhookFunction",
         "module": "lambda_handlers.stripe_webhook", "event": _rental_paid(stack)},
        {"name": "rental_play", "function": "PlaybackFunction",
         "module": "lambda_handlers.playback",
         "event": _event("apigw-v2-playback.json", VIDEO_ID="rent-clip",
                         TOKEN=stack.access_token)},
        {"name": "webhook_subscription", "function": "StripeWebhookFunction",
         "module": "lambda_handlers.stripe_webhook", "event": _subscription_paid(stack)},
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
        "env": {step["function"]: _environment(stack.env, step["function"]) for step in steps},
        "steps": steps,
    }
    return _run(interpreter, built["handlers"], built["runtime"], inputs)


# --------------------------------------------------------------------------- the pipeline

PIPELINE_VIDEO = "packaged-upload"
PIPELINE_SOURCE = f"uploads/{PIPELINE_VIDEO}/Holiday clip +1.mov"


def _job_event(status_file: str, stack: Stack, attempt: int) -> dict[str, Any]:
    bucket = stack.env["VIDGATE_BUCKET"]
    replace = {
        "BUCKET": bucket,
        "VIDEO_ID": PIPELINE_VIDEO,
        "QUEUE_ARN": MEDIACONVERT_QUEUE,
        "JOB_ID": f"1764260000000-pack{attempt:02d}",
        '"ATTEMPT"': f'"{attempt}"',
    }
    return _event(status_file, **replace)


@pytest.fixture(scope="module")
def pipeline_run(built: dict[str, Path], stack: Stack, interpreter: Interpreter) -> Any:
    """The packaged ingest and publish functions: an upload notification, a progress report,
    a job error (retried), and the retry's completion."""
    bucket = stack.env["VIDGATE_BUCKET"]
    s3: Any = stack.session.client("s3")
    s3.create_bucket(Bucket=bucket)
    Publishing(dynamodb_client(stack.session), stack.tables["videos"]).create_draft(
        # Unpublished: the viewer listing the other steps check stays as it was.
        PIPELINE_VIDEO,
        title="Holiday",
        tier="free",
        source_key=PIPELINE_SOURCE,
        published=False,
    )
    s3.put_object(Bucket=bucket, Key=PIPELINE_SOURCE, Body=b"original")
    capture = f"videos/{PIPELINE_VIDEO}/poster.0000001.jpg"
    s3.put_object(Bucket=bucket, Key=capture, Body=b"\xff\xd8capture")
    notification = _event("s3-object-created.json", BUCKET=bucket)
    notification["Records"][0]["s3"]["object"]["key"] = quote_plus(PIPELINE_SOURCE, safe="/")
    sqs = _event("sqs-s3-upload.json", MESSAGE_ID="packaged-message")
    sqs["Records"][0]["body"] = json.dumps(notification)
    steps: list[dict[str, Any]] = [
        {"name": "ingest", "function": "IngestFunction", "module": "lambda_handlers.ingest",
         "event": sqs},
        {"name": "progress", "function": "PublishFunction", "module": "lambda_handlers.publish",
         "event": _job_event("mediaconvert-status-update.json", stack, 1)},
        {"name": "error", "function": "PublishFunction", "module": "lambda_handlers.publish",
         "event": _job_event("mediaconvert-error.json", stack, 1)},
        {"name": "complete", "function": "PublishFunction", "module": "lambda_handlers.publish",
         "event": _job_event("mediaconvert-complete.json", stack, 2)},
    ]  # fmt: skip
    inputs = {
        "forbidden": sorted(package.FORBIDDEN_IN_HANDLERS),
        "env": {step["function"]: _environment(stack.env, step["function"]) for step in steps},
        "steps": steps,
    }
    return _run(interpreter, built["handlers"], built["runtime"], inputs)


def test_the_packaged_pipeline_takes_an_upload_to_ready_through_a_retried_job(
    pipeline_run: Any, stack: Stack
) -> None:
    assert pipeline_run["ingest"] == {"batchItemFailures": []}
    assert [pipeline_run[n]["outcome"] for n in ("progress", "error", "complete")] == [
        "progress",
        "retried",
        "ready",
    ]
    catalog = VideoCatalog(dynamodb_client(stack.session), stack.tables["videos"])
    video = catalog.get_any(PIPELINE_VIDEO)
    assert (video.state, video.attempts, video.job_id) == ("ready", 2, "1764260000000-pack02")
    assert video.hls_key == f"videos/{PIPELINE_VIDEO}/hls/master.m3u8"
    assert video.poster_key == f"posters/{PIPELINE_VIDEO}.jpg"
    s3: Any = stack.session.client("s3")
    poster = s3.get_object(Bucket=stack.env["VIDGATE_BUCKET"], Key=video.poster_key)
    assert poster["Body"].read() == b"\xff\xd8capture"
    creates = [c for c in pipeline_run["calls"]["IngestFunction"] if c["operation"] == "CreateJob"]
    assert [(c["Role"], c["Queue"]) for c in creates] == [(MEDIACONVERT_ROLE, MEDIACONVERT_QUEUE)]


# --------------------------------------------------------------------------- the web functions


WEB_FUNCTIONS = ("WebFunction", "AdminWebFunction")
"""The two functions of the web zip: the viewer pages, and the admin pages with their own role."""
REPLY_SECONDS = 60
"""How long a web function may take to answer one event (its init, for the first)."""
_CSRF = re.compile(r'(?:name="csrf_token" value|name="csrf-token" content)="([^"]+)"')


@dataclass
class WebStack:
    """The web visit's own tables (the handler run's catalog stays as it is), its Cognito pool."""

    env: dict[str, str]
    tables: dict[str, str]
    dynamodb: Any
    cognito: Any
    pool_id: str

    def directory(self) -> UserDirectory:
        return UserDirectory(self.dynamodb, self.tables["users"])

    def age_session(self, sid: str, seconds: int) -> None:
        """Move a session's last use ``seconds`` into the past, as if the user had been away."""
        self.dynamodb.update_item(
            TableName=self.tables["sessions"],
            Key={"session_id": {"S": SessionStore.key_for(sid)}},
            UpdateExpression="SET last_seen_at = last_seen_at - :d",
            ConditionExpression="attribute_exists(session_id)",
            ExpressionAttributeValues={":d": {"N": str(seconds)}},
        )

    def pay_rental(self, user_id: str, video_id: str) -> None:
        """What the Stripe webhook writes for a paid rental (its own function, not visited here)."""
        from app.purchases import StripeEventProcessor

        processor = StripeEventProcessor(
            self.dynamodb, self.tables["users"], self.tables["audit"], self.tables["billing"]
        )
        outcome = processor.process(
            {
                "id": f"evt_{uuid.uuid4().hex}",
                "type": "checkout.session.completed",
                "created": int(datetime.now(UTC).timestamp()),
                "data": {
                    "object": {
                        "id": f"cs_test_{uuid.uuid4().hex}",
                        "mode": "payment",
                        "payment_status": "paid",
                        "payment_intent": f"pi_{uuid.uuid4().hex}",
                        "metadata": {
                            "user_id": user_id,
                            "video_id": video_id,
                            "kind": "rent",
                            "window_hours": "48",
                        },
                    }
                },
            }
        )
        assert outcome == "applied"

    def session_exists(self, sid: str) -> bool:
        found = self.dynamodb.get_item(
            TableName=self.tables["sessions"], Key={"session_id": {"S": SessionStore.key_for(sid)}}
        )
        return "Item" in found


@pytest.fixture(scope="module")
def web_stack(stack: Stack) -> Iterator[WebStack]:
    prefix = f"pw{uuid.uuid4().hex[:10]}"
    tables = {
        logical: f"{prefix}-{logical}"
        for logical in ("users", "videos", "audit", "sessions", "billing")
    }
    dynamodb = dynamodb_client(stack.session)
    create_tables(dynamodb, tables)
    catalog = VideoCatalog(dynamodb, tables["videos"])
    catalog.put(_video("free-clip", "Free Clip", "free"))
    catalog.put(_video("premium-clip", "Premium Clip", "premium"))
    billing = BillingStore(dynamodb, tables["billing"], tables["users"])
    billing.put_video_offer(VideoOffer("premium-clip", "usd", 499, 199, 48))
    # Stripe's API for the checkout: the local stand-in (no webhook is delivered from it).
    standin = StripeStandIn(
        api_key="sk_test_pk",
        webhook_secret=WEBHOOK_SECRET,
        webhook_url="http://127.0.0.1:9/unused",
        public_url="http://127.0.0.1:0",
        prices=demo_prices(),
    )
    handle = serve_wsgi(standin, 0, name="stripe")
    standin.public_url = f"http://127.0.0.1:{handle.port}"
    env = {
        **stack.env,
        **{f"VIDGATE_{logical.upper()}_TABLE": name for logical, name in tables.items()},
        "VIDGATE_STRIPE_API_BASE": standin.public_url,
    }
    yield WebStack(
        env,
        tables,
        dynamodb,
        stack.session.client("cognito-idp"),
        stack.env["VIDGATE_USER_POOL_ID"],
    )
    handle.stop()


class FunctionProcess:
    """One function's execution environment: a bare interpreter running :data:`SERVER`."""

    def __init__(
        self,
        interpreter: Interpreter,
        task: Path,
        runtime: Path,
        module: str,
        env: dict[str, str],
        log: Path,
    ) -> None:
        self._log = log.open("w", encoding="utf-8")
        self._process = subprocess.Popen(
            [interpreter.path, "-I", "-S", "-c", SERVER, str(task), str(runtime), module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={"PATH": os.environ["PATH"]},
        )
        self._path = log
        self._send(env)
        ready = self._receive()
        self.init_calls: list[dict[str, Any]] = ready["calls"]
        self.file_of: dict[str, str | None] = ready["file_of"]

    def invoke(self, event: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        self._send(event)
        answer = self._receive()
        return answer["result"], answer["calls"]

    def _send(self, message: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(message) + "\n")
        self._process.stdin.flush()

    def _receive(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=REPLY_SECONDS)
        line = self._process.stdout.readline() if ready else ""
        if not line:
            self.close()
            pytest.fail(f"the function gave no answer:\n{self._path.read_text()[-4000:]}")
        message: dict[str, Any] = json.loads(line)
        return message

    def close(self) -> None:
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()

    def __enter__(self) -> FunctionProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class Answer:
    """What the site answered, and which function answered it."""

    function: str
    status: int
    headers: dict[str, str]
    body: str
    cookies: list[str]

    @property
    def location(self) -> str:
        """The redirect's target as a local path (with its query)."""
        parts = urlsplit(self.headers["location"])
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def csrf(self) -> str:
        found = _CSRF.search(self.body)
        assert found, f"no CSRF token on this page:\n{self.body[:2000]}"
        return found.group(1)


@dataclass
class Site:
    """The HTTP API in front of the web functions: each request goes where its route says."""

    routes: dict[str, str]
    processes: dict[str, FunctionProcess]
    calls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.calls = {name: list(p.init_calls) for name, p in self.processes.items()}

    def send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: str | None,
        cookies: list[str],
    ) -> Answer:
        parts = urlsplit(path)
        route = route_key_for(self.routes, method, parts.path)
        assert route is not None, f"no route for {method} {parts.path}"
        function = self.routes[route]
        assert function in self.processes, f"{method} {path} goes to {function}"
        event = _event("apigw-v2-list-videos.json")
        event.pop("queryStringParameters", None)
        event.update(rawPath=parts.path, rawQueryString=parts.query, routeKey=route)
        event["requestContext"].update(routeKey=route)
        event["requestContext"]["http"].update(method=method, path=parts.path)
        event["headers"] = {**event["headers"], "accept": "text/html", **headers}
        if parts.query:
            event["queryStringParameters"] = dict(parse_qsl(parts.query, keep_blank_values=True))
        if cookies:
            event["cookies"] = cookies
        if body is not None:
            event["body"] = body
        result, calls = self.processes[function].invoke(event)
        self.calls[function] += calls
        assert isinstance(result, dict) and "statusCode" in result, result
        return Answer(
            function=function,
            status=result["statusCode"],
            headers={k.lower(): v for k, v in (result.get("headers") or {}).items()},
            body=result.get("body") or "",
            cookies=list(result.get("cookies") or []),
        )


class Browser:
    """Keeps cookies (by name and path) and sends forms from the site's own pages."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.jar: dict[str, tuple[str, str]] = {}

    @property
    def sid(self) -> str:
        return self.jar["vidgate_session"][0]

    def get(self, path: str) -> Answer:
        return self._send("GET", path, {}, None)

    def post(self, path: str, form: dict[str, str]) -> Answer:
        headers = {"content-type": "application/x-www-form-urlencoded", "origin": CDN}
        return self._send("POST", path, headers, urlencode(form))

    def post_json(self, path: str, body: Any, csrf: str) -> Answer:
        """What the player's ``fetch()`` sends: JSON with the page's CSRF token in a header."""
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "origin": CDN,
            "x-csrf-token": csrf,
        }
        return self._send("POST", path, headers, json.dumps(body))

    def _send(self, method: str, path: str, headers: dict[str, str], body: str | None) -> Answer:
        request_path = urlsplit(path).path
        cookies = [
            f"{name}={value}"
            for name, (value, cookie_path) in self.jar.items()
            # RFC 6265 path-match: the cookie's path, or below it.
            if request_path == cookie_path or request_path.startswith(cookie_path.rstrip("/") + "/")
        ]
        answer = self.site.send(method, path, headers, body, cookies)
        for line in answer.cookies:
            parsed: SimpleCookie = SimpleCookie()
            parsed.load(line)
            for name, morsel in parsed.items():
                if morsel["max-age"] == "0":
                    self.jar.pop(name, None)
                else:
                    self.jar[name] = (morsel.value, morsel["path"] or "/")
        return answer


@dataclass
class Visit:
    """What a visit through both web functions did: its answers by step, and its people."""

    answers: dict[str, Answer]
    calls: dict[str, list[dict[str, Any]]]
    file_of: dict[str, dict[str, str | None]]
    viewer: str
    viewer_email: str
    admin: str
    sessions_left: dict[str, bool]
    """Whether the session item was still in the table after the step of that name."""
    record_before_sign_in: bool
    """Whether the viewer had a directory record between confirmation and sign-in."""


def _sign_up(browser: Browser, username: str, email: str, password: str) -> dict[str, Answer]:
    """Sign up and confirm (any code: the emulator's): a new viewer's first visit."""
    seen: dict[str, Answer] = {"home": browser.get("/")}
    form = browser.get("/auth/sign-up")
    seen["sign_up"] = browser.post(
        "/auth/sign-up",
        {
            "username": username,
            "email": email,
            "password": password,
            "password_repeat": password,
            "csrf_token": form.csrf(),
        },
    )
    form = browser.get(seen["sign_up"].location)
    seen["confirm"] = browser.post(
        "/auth/confirm", {"username": username, "code": "123456", "csrf_token": form.csrf()}
    )
    return seen


def _sign_in(browser: Browser, username: str, password: str) -> Answer:
    form = browser.get(f"/auth/sign-in?username={username}")
    return browser.post(
        "/auth/sign-in", {"identifier": username, "password": password, "csrf_token": form.csrf()}
    )


def _admin_first_sign_in(
    browser: Browser, username: str, temporary: str, password: str
) -> dict[str, Answer]:
    """An admin-created user: a temporary password, then the new-password challenge."""
    form = browser.get("/auth/sign-in?next=/admin/users")
    seen = {
        "admin_sign_in": browser.post(
            "/auth/sign-in",
            {
                "identifier": username,
                "password": temporary,
                "next": "/admin/users",
                "csrf_token": form.csrf(),
            },
        )
    }
    form = browser.get(seen["admin_sign_in"].location)
    seen["admin_new_password"] = browser.post(
        seen["admin_sign_in"].location,
        {"password": password, "password_repeat": password, "csrf_token": form.csrf()},
    )
    return seen


@pytest.fixture(scope="module")
def visit(
    built: dict[str, Path],
    web_stack: WebStack,
    interpreter: Interpreter,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Visit]:
    template = resolve(load(), SCENARIOS["oai"])
    logs = tmp_path_factory.mktemp("web-functions")
    processes: dict[str, FunctionProcess] = {}
    try:
        for function in WEB_FUNCTIONS:
            handler = template["Resources"][function]["Properties"]["Handler"]
            processes[function] = FunctionProcess(
                interpreter,
                built["web"],
                built["runtime"],
                handler.rsplit(".", 1)[0],
                _environment(web_stack.env, function),
                logs / f"{function}.log",
            )
        site = Site(http_api_routes(template), processes)
        yield _walk_the_site(site, web_stack)
    finally:
        for process in processes.values():
            process.close()


def _walk_the_site(site: Site, web_stack: WebStack) -> Visit:
    suffix = uuid.uuid4().hex[:8]
    viewer, admin = f"webviewer{suffix}", f"webadmin{suffix}"
    viewer_email = f"{viewer}@example.com"
    answers: dict[str, Answer] = {}

    # A viewer signs up; no trigger creates their record (as when the trigger fails).
    alice = Browser(site)
    answers.update(_sign_up(alice, viewer, viewer_email, PASSWORD))
    try:
        web_stack.directory().find(viewer)
        record_before_sign_in = True
    except UserNotFoundError:
        record_before_sign_in = False
    answers["sign_in"] = _sign_in(alice, viewer, PASSWORD)
    answers["upsell"] = alice.get("/watch/premium-clip")
    watch = alice.get("/watch/free-clip")
    answers["watch"] = watch
    answers["grant"] = alice.post_json("/watch/free-clip/grant", {}, watch.csrf())
    # The player stops: its beacon ends the stream (the free plan has room for one).
    answers["stream_end"] = alice.post(
        "/watch/free-clip/end",
        {
            "csrf_token": watch.csrf(),
            "session_id": json.loads(answers["grant"].body)["session_id"],
            "position": "3.5",
            "reason": "stopped",
        },
    )
    web_stack.age_session(alice.sid, 120)  # back after two minutes: the session is touched
    answers["account"] = alice.get("/account")
    answers["viewer_on_admin_pages"] = alice.get("/admin/users")

    # Selling: a rental's checkout starts on Stripe; once paid (the webhook's write), it plays.
    upsell = alice.get("/watch/premium-clip")
    answers["buy"] = alice.post(
        "/billing/buy/premium-clip", {"kind": "rent", "csrf_token": upsell.csrf()}
    )
    web_stack.pay_rental(web_stack.directory().find(viewer).user_id, "premium-clip")
    rental = alice.get("/watch/premium-clip")
    answers["rental_grant"] = alice.post_json("/watch/premium-clip/grant", {}, rental.csrf())

    # Forgotten passwords name the account by e-mail, known or not.
    stranger = Browser(site)
    for name, identifier in (
        ("forgot", viewer_email),
        ("forgot_unknown", f"nobody{suffix}@example.com"),
    ):
        form = stranger.get("/auth/forgot")
        answers[name] = stranger.post(
            "/auth/forgot", {"identifier": identifier, "csrf_token": form.csrf()}
        )

    # An admin an operator created (AdminCreateUser): their first sign-in creates their record.
    temporary = "Temp-Pass-2026!x"
    web_stack.cognito.admin_create_user(
        UserPoolId=web_stack.pool_id,
        Username=admin,
        TemporaryPassword=temporary,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": f"{admin}@example.com"}],
    )
    web_stack.cognito.admin_add_user_to_group(
        UserPoolId=web_stack.pool_id, Username=admin, GroupName="admin"
    )
    carol = Browser(site)
    answers.update(_admin_first_sign_in(carol, admin, temporary, PASSWORD))
    answers["admin_root"] = carol.get("/admin")
    answers["admin_index"] = carol.get(answers["admin_root"].location)
    answers["admin_users"] = carol.get(answers["admin_index"].location)
    sub = web_stack.directory().find(viewer).user_id
    page = carol.get(f"/admin/users/{sub}")
    answers["admin_grant"] = carol.post(
        f"/admin/users/{sub}/grant", {"version": "0", "until": "", "csrf_token": page.csrf()}
    )
    answers["admin_granted"] = carol.get(answers["admin_grant"].location)
    answers["player"] = alice.get("/watch/premium-clip")
    # The catalog (issue 12): a search, a signed-out title page, an admin's audited preview.
    answers["catalog_search"] = alice.get("/?q=free&sort=title")
    answers["title_page"] = Browser(site).get("/watch/free-clip")
    preview = carol.get("/watch/premium-clip/preview")
    answers["preview_page"] = preview
    answers["preview_grant"] = carol.post_json(
        "/watch/premium-clip/preview/grant", {}, preview.csrf()
    )
    answers["admin_audit"] = carol.get("/admin/audit")
    answers["admin_user_audit"] = carol.get(f"/admin/users/{sub}/audit")
    answers["admin_videos"] = carol.get("/admin/videos")
    answers["admin_analytics"] = carol.get("/admin/analytics")
    page = carol.get("/admin/videos/free-clip")
    token = page.csrf()
    answers["admin_edit_video"] = carol.post(
        "/admin/videos/free-clip",
        {
            "title": "Free Clip, edited",
            "description": "a free clip",
            "tier": "free",
            "csrf_token": token,
        },
    )
    answers["admin_unpublish"] = carol.post(
        "/admin/videos/free-clip/unpublish", {"csrf_token": token, "confirm": "yes"}
    )
    answers["admin_publish"] = carol.post("/admin/videos/free-clip/publish", {"csrf_token": token})
    answers["admin_published"] = carol.get(answers["admin_publish"].location)  # shows the flash
    # Selling (#16): the plan's prices, the parked webhooks, a video's prices set then removed.
    page = carol.get("/admin/billing")
    answers["admin_billing"] = page
    answers["admin_billing_plan"] = carol.post(
        "/admin/billing/plan",
        {
            "currency": "usd",
            "monthly_cents": "900",
            "monthly_price_id": "price_packagemonthly",
            "yearly_cents": "9000",
            "yearly_price_id": "price_packageyearly",
            "csrf_token": page.csrf(),
        },
    )
    answers["admin_offer"] = carol.post(
        "/admin/videos/free-clip/offer",
        {"currency": "usd", "buy_cents": "300", "rent_cents": "", "rent_hours": "48",
         "csrf_token": token},
    )  # fmt: skip
    answers["admin_offer_remove"] = carol.post(
        "/admin/videos/free-clip/offer/remove", {"csrf_token": token, "confirm": "yes"}
    )
    # An upload started from "Add a video", its parts listed, then cancelled.
    token = carol.get("/admin/videos/new").csrf()
    answers["admin_upload_start"] = carol.post_json(
        "/admin/uploads",
        {"title": "Upload", "tier": "free", "description": "", "file_name": "a.mp4", "size": 10},
        token,
    )
    started = json.loads(answers["admin_upload_start"].body)
    answers["admin_upload_parts"] = carol.get(
        f"/admin/uploads/{started['video_id']}/parts?upload_id={started['upload_id']}"
    )
    answers["admin_upload_abort"] = carol.post_json(
        f"/admin/uploads/{started['video_id']}/abort", {"upload_id": started["upload_id"]}, token
    )
    web_stack.age_session(carol.sid, 120)
    answers["admin_touched"] = carol.get("/admin/users")
    carol_sid = carol.sid
    web_stack.age_session(carol_sid, 13 * 3600)  # away longer than the idle timeout
    answers["admin_expired"] = carol.get("/admin/users")
    sessions_left = {"admin_expired": web_stack.session_exists(carol_sid)}

    # The viewer signs out.
    alice_sid = alice.sid
    form = alice.get("/auth/sign-out")
    answers["sign_out"] = alice.post("/auth/sign-out", {"csrf_token": form.csrf()})
    answers["signed_out"] = alice.get("/account")
    sessions_left["signed_out"] = web_stack.session_exists(alice_sid)

    # A forgotten password reset with the e-mailed code (the emulator takes any code):
    # the viewer is signed out everywhere and the time is recorded on their record.
    form = stranger.get("/auth/reset")
    answers["reset"] = stranger.post(
        "/auth/reset",
        {
            "identifier": viewer_email,
            "code": "123456",
            "password": PASSWORD,
            "password_repeat": PASSWORD,
            "csrf_token": form.csrf(),
        },
    )

    return Visit(
        answers=answers,
        calls=site.calls,
        file_of={name: process.file_of for name, process in site.processes.items()},
        viewer=viewer,
        viewer_email=viewer_email,
        admin=admin,
        sessions_left=sessions_left,
        record_before_sign_in=record_before_sign_in,
    )


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


def test_the_packaged_web_app_starts_a_checkout_and_plays_a_paid_rental(visit: Visit) -> None:
    buy = visit.answers["buy"]
    assert buy.status == 303, buy
    assert "/pay/cs_test_" in buy.headers["location"]
    assert visit.answers["stream_end"].status == 204, visit.answers["stream_end"]
    assert visit.answers["rental_grant"].status == 200, visit.answers["rental_grant"]


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
    items = {item["id"]: item for item in listing["items"]}
    assert set(items) == {"free-clip", "rent-clip"}
    assert items["free-clip"]["poster_url"] == f"{CDN}/posters/free-clip.jpg"


def test_the_packaged_webhook_applies_signed_events_and_a_rental_plays(
    handler_run: Any, stack: Stack
) -> None:
    for step in ("webhook_rental", "webhook_subscription"):
        result = handler_run[step]
        assert result["statusCode"] == 200, result
        assert json.loads(result["body"])["outcome"] == "applied"
    assert handler_run["end_stream"]["statusCode"] == 204, handler_run["end_stream"]
    assert handler_run["rental_play"]["statusCode"] == 200, handler_run["rental_play"]
    item = dynamodb_client(stack.session).get_item(
        TableName=stack.tables["users"], Key={"user_id": {"S": stack.user_sub}}
    )["Item"]
    assert "started" in item["paid"]["M"]["rent-clip"]["M"]
    assert "stripe_until" in item


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
    # The Stripe webhook steps audit their changes too, as source "stripe".
    assert [item["source"] for item in audit["items"]].count("admin") == 1
    everyone = json.loads(handler_run["admin_audit_all"]["body"])
    assert {item["user_id"] for item in everyone["items"]} == {stack.user_sub}
    me = json.loads(handler_run["me"]["body"])
    assert me["user_id"] == stack.user_sub


def test_the_packaged_web_app_renders_pages_from_the_templates_in_its_zip(
    built: dict[str, Path], visit: Visit
) -> None:
    home = visit.answers["home"]
    assert (home.function, home.status) == ("WebFunction", 200), home
    assert "<html" in home.body.lower() and "Free Clip" in home.body
    for function in WEB_FUNCTIONS:
        assert str(visit.file_of[function]["flask"]).startswith(str(built["web"]))
        assert str(visit.file_of[function]["app"]).startswith(str(built["web"]))
    assert (built["web"] / "templates" / "base.html").exists()


def _source_tree(root: Path, *, vendor: bool) -> None:
    """A minimal tree: app/web with the player's npm project, lambda_handlers, templates."""
    for name in (
        "app/__init__.py",
        "app/web/__init__.py",
        "app/web/static/player.js",
        "app/web/player/package.json",
        "app/web/player/node_modules/hls.js/dist/hls.min.js",
        "lambda_handlers/playback.py",
        "templates/base.html",
        *(package.WEB_VENDOR if vendor else ()),
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x\n")


def test_the_web_zip_carries_the_vendored_hls_js_and_not_the_npm_project(tmp_path: Path) -> None:
    _source_tree(tmp_path, vendor=True)
    names = {name for _, name in package.source_files("web", root=tmp_path)}
    assert set(package.WEB_VENDOR) <= names
    assert "app/web/static/player.js" in names
    assert not [name for name in names if name.startswith("app/web/player/")], names
    handler_names = {name for _, name in package.source_files("handlers", root=tmp_path)}
    assert not [name for name in handler_names if name.startswith("app/web/")]


def test_the_web_zip_is_refused_without_the_vendored_hls_js(tmp_path: Path) -> None:
    _source_tree(tmp_path, vendor=False)
    with pytest.raises(package.PackagingError, match=r"hls\.min\.js.*make player"):
        package.source_files("web", root=tmp_path)
    package.source_files("handlers", root=tmp_path)  # the handler zip has no web app: no check


def test_sign_in_creates_the_missing_user_record_of_a_viewer_and_of_an_admin_created_user(
    visit: Visit, web_stack: WebStack
) -> None:
    assert visit.answers["confirm"].status == 302, visit.answers["confirm"]
    assert not visit.record_before_sign_in, "a trigger ran? the record must be missing"
    assert visit.answers["sign_in"].status == 302, visit.answers["sign_in"].body[:2000]
    assert visit.answers["sign_in"].location == "/"
    assert visit.answers["admin_sign_in"].location == "/auth/new-password"
    assert visit.answers["admin_new_password"].location == "/admin/users"
    directory = web_stack.directory()
    viewer = directory.find(visit.viewer)
    # Created at sign-in, then made premium on the admin pages.
    assert (viewer.email, viewer.premium, viewer.version) == (visit.viewer_email, True, 1)
    assert viewer.created_at is not None and viewer.updated_by == visit.admin
    assert directory.find(visit.admin).email == f"{visit.admin}@example.com"
    # Each record is created with its e-mail claim: one transaction of two create-only updates.
    created = [
        call
        for call in visit.calls["WebFunction"]
        if call["operation"] == "TransactWriteItems"
        and all(table == web_stack.tables["users"] for _, table, _ in call["items"])
    ]
    assert len(created) == 2, created
    # Nothing that grants: no premium, no end date, no version (the role's condition).
    for call in created:
        assert [kind for kind, _, _ in call["items"]] == ["Update", "Update"], call
        for _, _, attributes in call["items"]:
            assert not {"premium", "premium_until", "version"} & set(attributes), call


def test_the_watch_page_grants_through_the_viewer_function(visit: Visit) -> None:
    assert visit.answers["upsell"].status == 200
    assert 'id="upsell-back"' in visit.answers["upsell"].body
    grant = visit.answers["grant"]
    assert (grant.function, grant.status) == ("WebFunction", 200), grant
    assert json.loads(grant.body)["url"].startswith(f"{CDN}/videos/free-clip/clip.mp4?")
    assert visit.answers["account"].status == 200
    # After the admin's grant, the premium video plays.
    assert "data-grant-url" in visit.answers["player"].body


def test_a_password_reset_signs_the_viewer_out_everywhere(
    visit: Visit, web_stack: WebStack
) -> None:
    assert visit.answers["reset"].status == 302, visit.answers["reset"].body[:2000]
    assert web_stack.directory().sessions_ended_at(web_stack.directory().find(visit.viewer).user_id)


def test_a_forgotten_password_is_asked_for_by_email_known_or_not(visit: Visit) -> None:
    known, unknown = visit.answers["forgot"], visit.answers["forgot_unknown"]
    assert known.status < 500 and (known.status, known.function) == (
        unknown.status,
        unknown.function,
    )


def test_the_viewer_function_searches_shows_title_pages_and_previews_for_admins(
    visit: Visit,
) -> None:
    assert visit.answers["catalog_search"].status == 200
    assert 'id="catalog-search"' in visit.answers["catalog_search"].body
    assert visit.answers["title_page"].status == 200
    assert 'id="title-page"' in visit.answers["title_page"].body
    assert visit.answers["preview_page"].status == 200, visit.answers["preview_page"].body[:500]
    assert visit.answers["preview_page"].function == "WebFunction"  # it holds the signing key
    assert visit.answers["preview_grant"].status == 200


def test_the_admin_pages_are_served_by_their_own_function(visit: Visit) -> None:
    for name, answer in visit.answers.items():
        expected = (
            "AdminWebFunction"
            if name.startswith(("admin_", "viewer_on_admin"))
            else ("WebFunction")
        )
        if name in ("admin_sign_in", "admin_new_password"):
            expected = "WebFunction"  # signing in is the viewer function's, wherever it leads
        assert answer.function == expected, (name, answer.function)
    assert visit.answers["viewer_on_admin_pages"].status == 403
    assert visit.answers["admin_root"].location == "/admin/"
    assert visit.answers["admin_users"].status == 200
    assert visit.answers["admin_analytics"].status == 200, visit.answers["admin_analytics"]
    assert visit.viewer_email in visit.answers["admin_users"].body
    assert visit.answers["admin_grant"].status == 302, visit.answers["admin_grant"].body[:2000]
    assert "is now premium" in visit.answers["admin_granted"].body
    assert "grant" in visit.answers["admin_user_audit"].body
    for step in ("admin_edit_video", "admin_unpublish", "admin_publish"):
        assert visit.answers[step].status == 302, (step, visit.answers[step].body[:2000])
        assert visit.answers[step].location == "/admin/videos"
    assert visit.answers["admin_billing"].status == 200
    assert 'id="plan-form"' in visit.answers["admin_billing"].body
    assert visit.answers["admin_billing_plan"].location == "/admin/billing"
    for step in ("admin_offer", "admin_offer_remove"):
        assert visit.answers[step].status == 302, (step, visit.answers[step].body[:2000])
        assert visit.answers[step].location == "/admin/videos/free-clip"
    assert visit.answers["admin_upload_start"].status == 201, visit.answers["admin_upload_start"]
    assert visit.answers["admin_upload_parts"].status == 200
    assert json.loads(visit.answers["admin_upload_parts"].body) == {"parts": []}
    assert json.loads(visit.answers["admin_upload_abort"].body)["aborted"] is True


def test_sessions_are_touched_expire_and_end_on_both_functions(visit: Visit) -> None:
    assert visit.answers["admin_touched"].status == 200
    expired = visit.answers["admin_expired"]
    assert (expired.status, expired.location) == (302, "/auth/sign-in?next=/admin/users")
    assert visit.sessions_left == {"admin_expired": False, "signed_out": False}
    assert visit.answers["sign_out"].status == 302
    assert visit.answers["signed_out"].location.startswith("/auth/sign-in")
    for function in WEB_FUNCTIONS:
        touches = [
            call
            for call in visit.calls[function]
            if call["operation"] == "UpdateItem" and call["TableName"].endswith("-sessions")
        ]
        assert touches, f"{function} never touched a session"


# --------------------------------------------------------------------------- IAM


Key = tuple[str, ...]
"""A resource as the template names it: ("arn", "UsersTable"), ("index", "UsersTable",
"email-index") or ("param", "SigningKeySecretArnA")."""

UNAUTHENTICATED_COGNITO = frozenset(
    {
        "SignUp",
        "ConfirmSignUp",
        "ResendConfirmationCode",
        "InitiateAuth",
        "RespondToAuthChallenge",
        "GetUser",
        "GlobalSignOut",
        "RevokeToken",
        "ForgotPassword",
        "ConfirmForgotPassword",
    }
)
"""Cognito operations authorized by the app client or the user's own token, not by IAM."""


@dataclass(frozen=True)
class Grant:
    """One action on one resource a role's statement allows, with the statement's condition."""

    action: str
    key: Key
    condition: str = "{}"
    """The statement's Condition, as JSON (a grant is hashable)."""

    def admits(
        self,
        attributes: tuple[str, ...] | None,
        leading: tuple[str, ...] | None = None,
        passed_to: str | None = None,
    ) -> bool:
        """Whether the condition holds for a request touching ``attributes`` with partition
        key values ``leading`` (None: unknown), passing a role to the service ``passed_to``
        (iam:PassRole)."""
        condition: dict[str, dict[str, Any]] = json.loads(self.condition)
        for operator, tests in condition.items():
            for name, expected in tests.items():
                if (operator, name) == ("ForAllValues:StringLike", "dynamodb:LeadingKeys"):
                    holds = leading is not None and all(
                        any(fnmatch.fnmatchcase(key, pattern) for pattern in as_list(expected))
                        for key in leading
                    )
                elif (operator, name) == ("ForAllValues:StringEquals", "dynamodb:Attributes"):
                    # ForAllValues holds for a request without the key: the Null test guards it.
                    holds = attributes is None or set(attributes) <= set(as_list(expected))
                elif (operator, name) == ("Null", "dynamodb:Attributes"):
                    holds = (attributes is None) == (expected == "true")
                elif (operator, name) == ("StringEquals", "iam:PassedToService"):
                    holds = passed_to in as_list(expected)
                else:
                    raise AssertionError(f"this test cannot evaluate {operator} on {name}")
                if not holds:
                    return False
        return True


@dataclass(frozen=True)
class Needed:
    """What IAM must allow for one recorded call: an action on a resource, for these attributes."""

    action: str
    key: Key
    attributes: tuple[str, ...] | None = None
    passed_to: str | None = None
    leading: tuple[str, ...] | None = None


def _grants(function: str) -> list[Grant]:
    """What the function's role allows, resources as symbolic keys."""
    template = resolve(load(), SCENARIOS["oai"])
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    grants: list[Grant] = []
    documents = [p["PolicyDocument"] for p in template["Resources"][role]["Properties"]["Policies"]]
    documents += [
        policy["Properties"]["PolicyDocument"]
        for policy in of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in as_list(policy["Properties"]["Roles"])
    ]
    for document in documents:
        for statement in as_list(document["Statement"]):
            if statement.get("Sid") in ATHENA_ON_BEHALF:
                continue
            for resource in as_list(statement["Resource"]):
                key: Key
                if resource == "*":
                    key = ("any",)
                elif "Fn::GetAtt" in resource:
                    key = ("arn", resource["Fn::GetAtt"][0])
                elif "Fn::Sub" in resource and "/index/" in resource["Fn::Sub"]:
                    table, index = resource["Fn::Sub"].split(".Arn}/index/")
                    key = ("index", table.removeprefix("${"), index)
                elif "Fn::Sub" in resource:
                    key = ("sub", resource["Fn::Sub"])
                elif "Ref" in resource:
                    key = ("param", resource["Ref"])
                else:
                    continue
                condition = json.dumps(statement.get("Condition", {}), sort_keys=True)
                grants += [Grant(action, key, condition) for action in as_list(statement["Action"])]
    return grants


def _needed(call: dict[str, Any], tables: dict[str, str], secret_id: str) -> list[Needed]:
    """What IAM must allow for one recorded call (``tables``: logical name -> table name)."""
    table_ids = {name: f"{logical.capitalize()}Table" for logical, name in tables.items()}
    service, operation = call["service"], call["operation"]
    if operation == "TransactWriteItems":
        verbs = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                 "ConditionCheck": "ConditionCheckItem"}  # fmt: skip
        return [
            Needed(f"dynamodb:{verbs[kind]}", ("arn", table_ids[table]), tuple(attributes))
            for kind, table, attributes in call["items"]
        ]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Needed(f"dynamodb:{operation}", ("arn", table_ids[t])) for t in call["tables"]]
    if service == "dynamodb":
        table = table_ids[call["TableName"]]
        if "IndexName" in call:
            return [Needed(f"dynamodb:{operation}", ("index", table, call["IndexName"]))]
        attributes = tuple(call["attributes"]) if "attributes" in call else None
        leading = tuple(call["leading"]) if "leading" in call else None
        return [Needed(f"dynamodb:{operation}", ("arn", table), attributes, leading=leading)]
    if service == "secretsmanager" and call["SecretId"].endswith(EVENTS_KEY_SUFFIX):
        return [Needed(f"secretsmanager:{operation}", ("param", "ViewingEventsKey"))]
    if service == "firehose":
        return [Needed(f"firehose:{operation}", ("arn", "ViewingEventsStream"))]
    if service == "athena":
        # A query's actions are authorized on its workgroup (a Get names only the query id).
        assert operation != "StartQueryExecution" or call["WorkGroup"].endswith("-analytics"), call
        return [Needed(f"athena:{operation}", ("sub", ATHENA_WORKGROUP))]
    if service == "secretsmanager":
        for suffix, resource in SECRET_PARAMETERS.items():
            if call["SecretId"].endswith(suffix):
                return [Needed(f"secretsmanager:{operation}", ("param", resource))]
        assert call["SecretId"] == secret_id
        return [Needed(f"secretsmanager:{operation}", ("param", "SigningKeySecretArnA"))]
    if service == "cognito-idp" and operation in UNAUTHENTICATED_COGNITO:
        return []
    if service == "kms":
        # The session key's own policy grants these, not the role (no IAM policy may
        # widen it): test_template_security checks that policy against the code's context.
        assert operation in ("GenerateDataKey", "Decrypt"), call
        return []
    if service == "cognito-idp" and "UserPoolId" in call:
        return [Needed(f"cognito-idp:{operation}", ("arn", "UserPool"))]
    if service == "s3" and operation == "CopyObject":
        source = call["CopySource"]
        return [Needed("s3:GetObject", ("object", source["Key"])),
                Needed("s3:PutObject", ("object", call["Key"]))]  # fmt: skip
    if service == "s3" and operation in S3_ACTIONS:
        return [Needed(S3_ACTIONS[operation], ("object", call["Key"]))]
    if service == "mediaconvert" and operation == "Probe":
        # Probe reads the original with the caller's credentials.
        return [Needed("mediaconvert:Probe", ("any",)),
                Needed("s3:GetObject", ("sub", "${VideoBucket.Arn}/uploads/*"))]  # fmt: skip
    if service == "mediaconvert" and operation == "CreateJob":
        assert (call["Role"], call["Queue"]) == (MEDIACONVERT_ROLE, MEDIACONVERT_QUEUE), call
        jobs = "arn:${AWS::Partition}:mediaconvert:${AWS::Region}:${AWS::AccountId}:jobs/*"
        return [
            Needed("mediaconvert:CreateJob", ("arn", "TranscodeQueue")),
            Needed("mediaconvert:CreateJob", ("sub", jobs)),
            Needed(
                "iam:PassRole", ("arn", "MediaConvertRole"), passed_to="mediaconvert.amazonaws.com"
            ),
        ]
    raise AssertionError(f"no IAM mapping for {service}:{operation} here; add one: {call}")


USED_BY_LAMBDA: frozenset[str] = frozenset(
    {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:SendMessage"}
    | {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
)
"""Permissions Lambda itself uses with the function's role: the SQS poller, sending a
failed asynchronous event to the function's dead-letter queue, and the X-Ray daemon
uploading Active tracing's segments. No code call needs them."""
S3_ACTIONS = {
    "CreateMultipartUpload": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "PutObject": "s3:PutObject",
    "ListParts": "s3:ListMultipartUploadParts",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "DeleteObject": "s3:DeleteObject",
}
"""The IAM action each S3 object call needs (presigned part URLs are signed, not called)."""


def _object_grants(function: str) -> list[tuple[str, str]]:
    """(action, key pattern) of the role's statements on objects of the media bucket."""
    template = resolve(load(), SCENARIOS["oai"])
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    grants = []
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            for resource in as_list(statement["Resource"]):
                text = resource.get("Fn::Sub", "") if isinstance(resource, dict) else ""
                if text.startswith("${VideoBucket.Arn}/"):
                    pattern = text.split("/", 1)[1]
                    grants += [(action, pattern) for action in as_list(statement["Action"])]
    return grants


def _check_role(
    function: str, calls: list[dict[str, Any]], tables: dict[str, str], secret_id: str
) -> tuple[list[str], set[Grant]]:
    """(calls the role refuses, data permissions of the role that no call needed).

    Object permissions on the bucket are checked for being enough; whether each is
    needed shows in the browser tests (the visit cannot send a file).
    """
    grants = _grants(function)
    objects = _object_grants(function)
    refused: list[str] = []
    used: set[Grant] = set()
    for call in calls:
        for needed in _needed(call, tables, secret_id):
            if needed.key[0] == "object":
                matching = [
                    pattern
                    for action, pattern in objects
                    if action == needed.action and fnmatch.fnmatchcase(needed.key[1], pattern)
                ]
                if not matching:
                    refused.append(f"{function} needs {needed} for {call}")
                used.update(
                    grant
                    for grant in grants
                    if grant.action == needed.action
                    and grant.key in {("sub", "${VideoBucket.Arn}/" + p) for p in matching}
                )
                continue
            admitting = [
                grant
                for grant in grants
                if (grant.action, grant.key) == (needed.action, needed.key)
                and grant.admits(needed.attributes, needed.leading, needed.passed_to)
            ]
            if not admitting:
                refused.append(f"{function} needs {needed} for {call}")
            used.update(admitting)
    unused = {
        grant
        for grant in grants
        if not grant.action.startswith("logs:")
        and grant.action not in USED_BY_LAMBDA
        and grant.action not in ATHENA_ON_DEADLINE
        # Object grants: checked for being enough above, their need in the browser tests.
        and not (grant.key[0] == "sub" and grant.key[1].startswith("${VideoBucket.Arn}/"))
    } - used
    return refused, unused


def test_every_aws_call_the_packaged_handlers_made_is_allowed_by_their_template_role(
    handler_run: Any, stack: Stack
) -> None:
    assert handler_run["calls"]["PlaybackFunction"], "the playback handler made no AWS call?"
    for function, calls in handler_run["calls"].items():
        refused, _ = _check_role(function, calls, stack.tables, stack.secret_id)
        assert refused == []


@pytest.mark.parametrize(
    "function", ["PlaybackFunction", "AdminFunction", "TriggerFunction", "StripeWebhookFunction"]
)
def test_every_data_permission_of_the_api_roles_is_used_by_the_handlers(
    handler_run: Any, stack: Stack, function: str
) -> None:
    _, unused = _check_role(function, handler_run["calls"][function], stack.tables, stack.secret_id)
    assert unused == set(), f"{function}: granted but never needed"


@pytest.mark.parametrize("function", WEB_FUNCTIONS)
def test_every_aws_call_the_packaged_web_functions_made_is_allowed_by_their_template_role(
    visit: Visit, web_stack: WebStack, stack: Stack, function: str
) -> None:
    calls = visit.calls[function]
    assert calls, f"{function} made no AWS call?"
    refused, _ = _check_role(function, calls, web_stack.tables, stack.secret_id)
    assert refused == []


@pytest.mark.parametrize("function", WEB_FUNCTIONS)
def test_every_data_permission_of_the_web_roles_is_used_by_the_visit(
    visit: Visit, web_stack: WebStack, stack: Stack, function: str
) -> None:
    _, unused = _check_role(function, visit.calls[function], web_stack.tables, stack.secret_id)
    assert unused == set(), f"{function}: granted but never needed"


def test_the_attribute_condition_refuses_a_record_write_that_names_an_entitlement() -> None:
    conditioned = [g for g in _grants("WebFunction") if g.condition != "{}"]
    assert conditioned
    record = ("user_id", "entity", "username", "email", "email_lower", "created_at")
    (create,) = [g for g in conditioned if g.admits(record)]
    assert (create.action, create.key) == ("dynamodb:UpdateItem", ("arn", "UsersTable"))
    preview = [g for g in conditioned if g.key == ("arn", "AuditTable")]
    for grant in preview:  # the admin preview log: video#<id> partitions only, never a user's
        assert grant.action == "dynamodb:PutItem"
        assert grant.admits(None, ("video#intro",))
        assert not grant.admits(None, ("4f1c2b7e-user-sub",))
        assert not grant.admits(None, None), "a request naming no partition must not pass"
    for grant in conditioned:  # every conditioned write the viewer role has leaves premium out
        if grant in preview:
            continue
        assert grant.key == ("arn", "UsersTable")
        assert not grant.admits((*record, "premium"))
        assert not grant.admits(("user_id", "version"))
        assert not grant.admits(("user_id", "premium_until"))
        assert not grant.admits(None), "a request naming no attribute must not pass"


SERVICE_ROLES = {"MediaConvertRole", "ViewingEventsDeliveryRole"}
"""Roles an AWS service assumes for this stack (MediaConvert runs its jobs as one, Firehose
delivers viewing events as the other); tests/infra/test_template_pipeline.py checks the first."""


def test_every_role_in_the_template_belongs_to_a_packaged_function() -> None:
    template = resolve(load(), SCENARIOS["oai"])
    used = {
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in of_type(template, "AWS::Serverless::Function").values()
    }
    # Plus the custom resource's function, whose few lines are inline in the template.
    inline = {
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in of_type(template, "AWS::Lambda::Function").values()
        if "ZipFile" in f["Properties"]["Code"]
    }
    assert used | SERVICE_ROLES | inline == set(of_type(template, "AWS::IAM::Role"))
    assert not used & SERVICE_ROLES


PIPELINE_FUNCTIONS = ("IngestFunction", "PublishFunction")


def test_every_aws_call_the_packaged_pipeline_made_is_allowed_by_its_template_role(
    pipeline_run: Any, stack: Stack
) -> None:
    for function in PIPELINE_FUNCTIONS:
        calls = pipeline_run["calls"][function]
        assert calls, f"{function} made no AWS call?"
        refused, _ = _check_role(function, calls, stack.tables, stack.secret_id)
        assert refused == []


@pytest.mark.parametrize("function", PIPELINE_FUNCTIONS)
def test_every_data_permission_of_the_pipeline_roles_is_used_by_the_handlers(
    pipeline_run: Any, stack: Stack, function: str
) -> None:
    calls = pipeline_run["calls"][function]
    _, unused = _check_role(function, calls, stack.tables, stack.secret_id)
    assert unused == set(), f"{function}: granted but never needed"


# --------------------------------------------------------------------------- cold imports


def test_cold_import_times_are_measured_for_each_landed_handler() -> None:
    times = package.cold_import_times(runs=1)
    assert {package.IMPORT_FLOOR, "playback", "cognito_triggers"} <= set(times)
    assert all(seconds > 0 for seconds in times.values())
