"""``vidgate dev`` as a new user meets it: one command, one URL to open, a clean stop.

The URL to open is the local edge (``site_url``): the site's pages and API come
from the web app behind it, the media from the bucket, all on one host.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from app.catalog import VideoCatalog
from app.local.bootstrap import Bootstrap
from app.local.media import DEMO_VIDEOS
from app.local.ports import LOOPBACK, free_port
from app.storage_rules import s3_api_rules
from tests.integration.test_watch_pages import elements, form_csrf, meta_csrf
from tests.stackproc import ROOT, RunningStack, start_stack

CONTRACT_KEYS = {
    "region",
    "aws_endpoint",
    "site_url",
    "web_url",
    "edge_url",
    "cognito",
    "tables",
    "bucket",
    "signing",
    "users",
}


def _client(stack: RunningStack, service: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]  # the service name is a variable
        service,
        endpoint_url=stack.aws_endpoint,
        region_name=stack.document["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 2, "mode": "standard"}),
    )


def test_dev_stack_json_follows_the_contract(dev_stack: RunningStack) -> None:
    doc = dev_stack.document
    assert doc.keys() >= CONTRACT_KEYS
    assert {"user_pool_id", "client_id", "issuer", "jwks_url"} <= doc["cognito"].keys()
    assert {"users", "videos", "audit"} <= doc["tables"].keys()
    assert {"key_pair_id", "algorithm", "public_key_pem"} <= doc["signing"].keys()
    assert doc["signing"]["algorithm"] == "ecdsa-p256"
    # Viewing events: the stream and the HMAC key's secret exist in the emulator.
    analytics = doc["analytics"]
    assert analytics["events_prefix"] == f"s3://{doc['bucket']}/analytics/events/"
    stream = _client(dev_stack, "firehose").describe_delivery_stream(
        DeliveryStreamName=analytics["events_stream"]
    )["DeliveryStreamDescription"]
    (destination,) = stream["Destinations"]
    assert destination["ExtendedS3DestinationDescription"]["Prefix"] == (
        "analytics/events/dt=!{timestamp:yyyy-MM-dd}/"
    )
    _client(dev_stack, "secretsmanager").describe_secret(SecretId=analytics["events_key_secret"])
    assert doc["signing"]["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    for url in (doc["aws_endpoint"], doc["site_url"], doc["web_url"], doc["edge_url"]):
        assert url.startswith(f"http://{LOOPBACK}:")
    assert doc["site_url"] == doc["edge_url"] != doc["web_url"]
    names = {u["username"]: u for u in doc["users"]}
    assert names["alice"]["premium"] is True
    assert names["bob"]["premium"] is False
    assert names["carol"]["groups"] == ["admin"]
    assert "ready" in dev_stack.output
    # The publishing pipeline's queue redrives to its DLQ; the bucket notifies uploads to it.
    sqs = boto3.client(
        "sqs",
        endpoint_url=dev_stack.aws_endpoint,
        region_name=doc["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    attributes = sqs.get_queue_attributes(
        QueueUrl=doc["queues"]["ingest"], AttributeNames=["RedrivePolicy", "QueueArn"]
    )["Attributes"]
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=doc["queues"]["ingest_dlq"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"] == dlq_arn
    s3 = boto3.client(
        "s3",
        endpoint_url=dev_stack.aws_endpoint,
        region_name=doc["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    notification = s3.get_bucket_notification_configuration(Bucket=doc["bucket"])
    assert [q["QueueArn"] for q in notification["QueueConfigurations"]] == [attributes["QueueArn"]]
    rules = s3.get_bucket_lifecycle_configuration(Bucket=doc["bucket"])["Rules"]
    assert [r["ID"] for r in rules] == [r["ID"] for r in s3_api_rules()]


def test_it_prints_one_url_to_open_the_site_and_the_demo_accounts(dev_stack: RunningStack) -> None:
    printed = "\n".join(dev_stack.output)
    assert re.findall(r"https?://[^\s]+", printed) == [dev_stack.site_url]
    assert f"Open {dev_stack.site_url}" in printed
    for user in dev_stack.document["users"]:
        assert f"{user['username']:<6} {user['password']}" in printed


TIMEOUT = 15


def _sign_in_at_the_site(stack: RunningStack, username: str) -> requests.Session:
    browser = requests.Session()
    form = browser.get(f"{stack.site_url}/auth/sign-in", timeout=TIMEOUT)
    assert form.status_code == 200
    done = browser.post(
        f"{stack.site_url}/auth/sign-in",
        data={
            "csrf_token": form_csrf(form.text),
            "identifier": username,
            "password": stack.user(username)["password"],
            "next": "/",
        },
        headers={"Origin": stack.site_url},
        timeout=TIMEOUT,
    )
    assert done.status_code == 200, done.text[:300]
    assert done.url == f"{stack.site_url}/"
    assert f"Account ({username})" in done.text
    return browser


def test_the_site_serves_pages_posters_and_media_on_one_host(dev_stack: RunningStack) -> None:
    site = dev_stack.site_url
    home = requests.get(f"{site}/", timeout=TIMEOUT)
    assert home.status_code == 200
    media_src = next(
        d.split()[1:]
        for d in home.headers["Content-Security-Policy"].split(";")
        if d.split()[:1] == ["media-src"]
    )
    assert "'self'" in media_src
    posters = [a["src"] for t, a in elements(home.text) if t == "img" and "/posters/" in a["src"]]
    assert posters and all(src.startswith(f"{site}/posters/") for src in posters)
    assert requests.get(posters[0], timeout=TIMEOUT).headers["Content-Type"] == "image/jpeg"

    alice = _sign_in_at_the_site(dev_stack, "alice")
    page = alice.get(f"{site}/watch/premium-aurora", timeout=TIMEOUT)
    assert page.status_code == 200
    grant = alice.post(
        f"{site}/watch/premium-aurora/grant",
        json={},
        headers={"X-CSRF-Token": meta_csrf(page.text), "Origin": site},
        timeout=TIMEOUT,
    )
    assert grant.status_code == 200, grant.text[:300]
    url = grant.json()["url"]
    assert url.startswith(f"{site}/videos/premium-aurora/hls/")
    # The grant's cookies came back through the site: the playlist, a rung, its init segment.
    master = alice.get(url, timeout=TIMEOUT)
    assert master.status_code == 200 and master.text.startswith("#EXTM3U")
    variant = next(line for line in master.text.splitlines() if line and line[0] != "#")
    rung_url = url.rsplit("/", 1)[0] + "/" + variant
    rung = alice.get(rung_url, timeout=TIMEOUT)
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', rung.text)
    assert rung.status_code == 200 and init
    first = alice.get(rung_url.rsplit("/", 1)[0] + "/" + init.group(1), timeout=TIMEOUT)
    assert first.status_code == 200
    assert first.content[4:8] == b"ftyp"
    unsigned = requests.get(url.split("?", 1)[0], timeout=TIMEOUT)  # no signature, no cookies
    assert unsigned.status_code == 403
    assert b"<Code>MissingKey</Code>" in unsigned.content


def test_the_site_and_the_web_app_answer_the_same_pages(dev_stack: RunningStack) -> None:
    for path in ("/auth/sign-in", "/api/videos?limit=2", "/no-such-page"):
        through_edge = requests.get(dev_stack.site_url + path, timeout=TIMEOUT)
        direct = requests.get(dev_stack.web_url + path, timeout=TIMEOUT)
        assert through_edge.status_code == direct.status_code, path
        assert through_edge.headers["Content-Type"] == direct.headers["Content-Type"], path
    listing = requests.get(f"{dev_stack.site_url}/api/videos?limit=2", timeout=TIMEOUT).json()
    assert all(
        item["poster_url"].startswith(f"{dev_stack.site_url}/posters/")
        for item in listing["items"]
        if item["poster_url"]
    )


def test_alice_can_sign_in_with_user_password_auth(dev_stack: RunningStack) -> None:
    alice = dev_stack.user("alice")
    result = _client(dev_stack, "cognito-idp").initiate_auth(
        ClientId=dev_stack.document["cognito"]["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "alice", "PASSWORD": alice["password"]},
    )
    assert result["AuthenticationResult"]["AccessToken"].count(".") == 2


def test_tables_exist_and_the_bucket_blocks_public_access(dev_stack: RunningStack) -> None:
    ddb = _client(dev_stack, "dynamodb")
    for table in dev_stack.document["tables"].values():
        assert ddb.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"
    block = _client(dev_stack, "s3").get_public_access_block(Bucket=dev_stack.document["bucket"])
    assert all(block["PublicAccessBlockConfiguration"].values())
    assert len(block["PublicAccessBlockConfiguration"]) == 4


def test_the_catalog_lists_the_demo_videos(dev_stack: RunningStack) -> None:
    catalog = VideoCatalog(_client(dev_stack, "dynamodb"), dev_stack.document["tables"]["videos"])
    listed, _ = catalog.list(limit=100, cursor=None)
    # The shared stack also holds what the e2e tests upload: look at the demos themselves.
    demo_ids = {demo.video_id for demo in DEMO_VIDEOS}
    videos = [v for v in listed if v.video_id in demo_ids]
    tiers = sorted(v.tier for v in videos)
    assert len(videos) == len(demo_ids) >= 3
    assert tiers.count("free") >= 1 and tiers.count("premium") >= 2
    s3 = _client(dev_stack, "s3")
    for video in videos:
        head = s3.head_object(Bucket=dev_stack.document["bucket"], Key=video.object_key)
        assert head["ContentType"] == "video/mp4"
        assert 10 <= video.duration_seconds <= 90


def test_an_unsigned_request_straight_to_the_bucket_gets_nothing(dev_stack: RunningStack) -> None:
    import requests

    catalog = VideoCatalog(_client(dev_stack, "dynamodb"), dev_stack.document["tables"]["videos"])
    video = catalog.list(limit=1, cursor=None)[0][0]
    url = f"{dev_stack.aws_endpoint}/{dev_stack.document['bucket']}/{video.object_key}"
    response = requests.get(url, timeout=10)
    assert response.status_code == 403
    assert len(response.content) < 1000


def _snapshot(stack: RunningStack) -> dict[str, Any]:
    doc = stack.document
    ddb = _client(stack, "dynamodb")
    cognito = _client(stack, "cognito-idp")
    items = {}
    for logical, table in doc["tables"].items():
        scanned = ddb.scan(TableName=table)["Items"]  # test-only inspection of a tiny table
        # Sessions hold binary attributes (their sealed tokens): compared as hex.
        items[logical] = sorted(json.dumps(i, sort_keys=True, default=bytes.hex) for i in scanned)
    pool = doc["cognito"]["user_pool_id"]
    return {
        "pools": sorted(p["Id"] for p in cognito.list_user_pools(MaxResults=60)["UserPools"]),
        "clients": sorted(
            c["ClientId"]
            for c in cognito.list_user_pool_clients(UserPoolId=pool, MaxResults=60)[
                "UserPoolClients"
            ]
        ),
        "users": sorted(u["Username"] for u in cognito.list_users(UserPoolId=pool)["Users"]),
        "groups": sorted(g["GroupName"] for g in cognito.list_groups(UserPoolId=pool)["Groups"]),
        "items": items,
        # Viewing events land under analytics/ whenever the running app's sender flushes:
        # the app's output, not the bootstrap's state.
        "objects": sorted(
            (o["Key"], o["ETag"])
            for o in _client(stack, "s3").list_objects_v2(Bucket=doc["bucket"])["Contents"]
            if not o["Key"].startswith("analytics/")
        ),
        "tables": sorted(ddb.list_tables()["TableNames"]),
        "secrets": sorted(
            s["Name"] for s in _client(stack, "secretsmanager").list_secrets()["SecretList"]
        ),
        "kms_keys": sorted(k["KeyArn"] for k in _client(stack, "kms").list_keys()["Keys"]),
        "streams": sorted(
            _client(stack, "firehose").list_delivery_streams()["DeliveryStreamNames"]
        ),
    }


def test_bootstrap_run_again_leaves_the_same_state(dev_stack: RunningStack) -> None:
    before = _snapshot(dev_stack)
    session = boto3.Session(
        region_name=dev_stack.document["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    state = Bootstrap(
        session, endpoint=dev_stack.aws_endpoint, media_dir=dev_stack.state_dir / "media"
    ).run()
    after = _snapshot(dev_stack)
    assert after == before
    assert state.key_pair_id == dev_stack.document["signing"]["key_pair_id"]
    assert state.user_pool_id == dev_stack.document["cognito"]["user_pool_id"]
    assert state.session_key_id == dev_stack.document["session_key"]["key_id"]
    assert state.session_key_id.startswith("arn:aws:kms:")


def test_a_busy_port_fails_at_once_naming_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "app.ops",
                "dev",
                "--port",
                str(free_port()),
                "--aws-port",
                str(port),
                "--edge-port",
                str(free_port()),
                "--state-dir",
                str(tmp_path),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} (AWS emulator) is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found.add(int(entry.name))
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_everything_the_stack_started(tmp_path: Path, sig: int) -> None:
    stack = start_stack(tmp_path / "stack")
    children = _children(stack.process.pid)
    assert children, "the emulator runs as a child process"
    ports = [int(u.rsplit(":", 1)[1]) for u in (stack.web_url, stack.edge_url, stack.aws_endpoint)]
    assert stack.stop(sig) == 0
    for child in children:
        assert (
            not Path(f"/proc/{child}").exists()
            or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
        )
    for port in ports:
        with socket.socket() as probe:
            # SO_REUSEADDR ignores TIME_WAIT leftovers but still fails on a live listener.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((LOOPBACK, port))  # free again: nothing left listening
    assert os.environ.get("AWS_ENDPOINT_URL") != stack.aws_endpoint
