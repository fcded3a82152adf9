"""Viewing events end to end on the emulator: emitter → Firehose → S3 dt= partitions → DuckDB.

The emulator's Firehose writes each PutRecordBatch straight to S3 (no
buffering) under the stream's prefix, evaluated like AWS (app.local.emulator).
A deleted stream stands in for Firehose being down: events are dropped and
counted, and emitting still never raises.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from app.analytics import AnalyticsQueries, DateRange
from app.analytics.duck import DuckDbEngine, S3EventFiles
from app.firehose_sink import FirehoseSink
from app.local.analytics_setup import ensure_events_key, ensure_events_stream
from app.viewing_events import ViewingEvents

pytestmark = pytest.mark.integration


@pytest.fixture
def pipeline(boto_session) -> dict[str, Any]:
    suffix = uuid.uuid4().hex[:8]
    bucket = f"events-{suffix}"
    s3 = boto_session.client("s3")
    s3.create_bucket(Bucket=bucket)
    secrets = boto_session.client("secretsmanager")
    firehose = boto_session.client("firehose")
    secret_id = ensure_events_key(secrets, f"test/{suffix}/events-key")
    assert ensure_events_key(secrets, secret_id) == secret_id  # idempotent
    stream = ensure_events_stream(firehose, f"events-{suffix}", bucket)
    assert ensure_events_stream(firehose, stream, bucket) == stream
    reports: list[dict] = []
    sink = FirehoseSink(firehose, stream, linger_seconds=0.05, report=reports.append)

    def load_key() -> bytes:
        return secrets.get_secret_value(SecretId=secret_id)["SecretString"].encode()

    return {
        "s3": s3,
        "bucket": bucket,
        "firehose": firehose,
        "stream": stream,
        "sink": sink,
        "events": ViewingEvents(sink, load_key),
        "reports": reports,
        "key": load_key(),
    }


def _script(events: ViewingEvents) -> None:
    """Two viewers: alice watches "a" to the end, bob sees the upsell page then plays "a"."""
    emit = events.emit
    emit(
        "grant",
        sub="sub-alice",
        plan="premium",
        video_id="a",
        video_tier="free",
        session_id="s1",
        format="hls",
    )
    emit(
        "start",
        sub="sub-alice",
        plan="premium",
        video_id="a",
        session_id="s1",
        startup_ms=300,
        rendition="720p",
        bitrate=2_500_000,
    )
    emit(
        "heartbeat",
        sub="sub-alice",
        plan="premium",
        video_id="a",
        session_id="s1",
        watched_s=45,
        stall_ms=500,
        rendition="720p",
        position_s=45,
    )
    emit(
        "stop",
        sub="sub-alice",
        plan="premium",
        video_id="a",
        session_id="s1",
        watched_s=15,
        rendition="720p",
        position_s=60,
        reason="ended",
    )
    emit("upsell_view", sub="sub-bob", plan="free", video_id="p", video_tier="premium")
    emit(
        "refusal",
        sub="sub-bob",
        plan="free",
        video_id="p",
        video_tier="premium",
        reason="premium_required",
    )
    emit(
        "grant",
        sub="sub-bob",
        plan="free",
        video_id="a",
        video_tier="free",
        session_id="s2",
        format="mp4",
    )
    emit(
        "start",
        sub="sub-bob",
        plan="free",
        video_id="a",
        session_id="s2",
        startup_ms=900,
        rendition="360p",
        bitrate=800_000,
    )
    emit(
        "stop",
        sub="sub-bob",
        plan="free",
        video_id="a",
        session_id="s2",
        watched_s=30,
        stall_ms=1500,
        rendition="360p",
        reason="user",
    )


def test_events_land_in_todays_partition_and_the_queries_count_them(pipeline) -> None:
    today = datetime.now(UTC).date().isoformat()
    _script(pipeline["events"])
    assert pipeline["sink"].flush(timeout=20)
    stats = pipeline["events"].stats()
    assert stats["emitted"] == 9 and stats["sent"] == 9 and stats["dropped"] == 0

    listing = pipeline["s3"].list_objects_v2(Bucket=pipeline["bucket"], Prefix="analytics/")
    keys = [item["Key"] for item in listing["Contents"]]
    pattern = re.compile(
        rf"^analytics/events/dt={today}/{pipeline['stream']}-\d+-"
        r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]{36}$"
    )
    assert keys and all(pattern.match(key) for key in keys), keys
    body = b"".join(
        pipeline["s3"].get_object(Bucket=pipeline["bucket"], Key=key)["Body"].read() for key in keys
    )
    lines = body.decode().splitlines()
    assert len(lines) == 9
    records = [json.loads(line) for line in lines]
    assert {r["type"] for r in records} == {
        "grant",
        "start",
        "heartbeat",
        "stop",
        "upsell_view",
        "refusal",
    }
    assert "sub-alice" not in body.decode() and "sub-bob" not in body.decode()

    engine = DuckDbEngine(S3EventFiles(pipeline["s3"], pipeline["bucket"]))
    queries = AnalyticsQueries(engine)
    days = DateRange.parse(today, today)
    data = queries.dashboard(days)
    (summary,) = data["summary"].rows
    assert summary["plays"] == 2 and summary["viewers"] == 2
    assert summary["watch_minutes"] == round((45 + 15 + 30) / 60, 2)
    assert summary["startup_p50_ms"] == 300 and summary["startup_p95_ms"] == 900
    assert summary["rebuffering_ratio"] == round(2.0 / (90 + 2.0), 4)
    assert summary["refusals"] == 1
    assert data["daily"].rows == [{"day": today, "plays": 2, "watch_minutes": 1.5, "viewers": 2}]
    assert data["completion"].rows == [
        {"video_id": "a", "started": 2, "completed": 1, "completion_rate": 0.5}
    ]
    (conversion,) = data["conversion"].rows
    assert conversion["upsell_viewers"] == 1 and conversion["converted"] == 0
    assert engine.last_scan.files == len(keys)


def test_a_stopped_firehose_drops_and_counts_and_emitting_goes_on(pipeline) -> None:
    pipeline["firehose"].delete_delivery_stream(DeliveryStreamName=pipeline["stream"])
    events = pipeline["events"]
    for n in range(3):
        assert events.emit(
            "grant", sub="sub-carol", plan="free", video_id="a", session_id=f"s{n}", format="hls"
        )
    assert pipeline["sink"].flush(timeout=20)
    stats = events.stats()
    assert stats["dropped"] == 3 and stats["sent"] == 0 and stats["failed_batches"] >= 1
    assert pipeline["reports"][0]["reason"] == "ResourceNotFoundException"
    assert pipeline["reports"][0]["ViewingEventsDropped"] == 3
    listing = pipeline["s3"].list_objects_v2(Bucket=pipeline["bucket"], Prefix="analytics/")
    assert listing.get("KeyCount", 0) == 0


def test_an_unreachable_endpoint_is_dropped_too(pipeline, boto_session) -> None:
    from botocore.config import Config

    dead = boto_session.client(
        "firehose",
        endpoint_url="http://127.0.0.1:9",
        config=Config(connect_timeout=0.5, read_timeout=0.5, retries={"max_attempts": 1}),
    )
    reports: list[dict] = []
    sink = FirehoseSink(dead, pipeline["stream"], linger_seconds=0.01, report=reports.append)
    events = ViewingEvents(sink, pipeline["key"])
    assert events.emit("upsell_view", sub="x", plan="free")
    assert sink.flush(timeout=20)
    assert events.stats()["dropped"] == 1
    assert reports[0]["reason"] == "EndpointConnectionError"


def test_the_report_command_writes_one_csv_per_query_to_s3(pipeline, aws_env, tmp_path, capsys):
    import csv
    import io

    from app.ops.cli import main

    today = datetime.now(UTC).date().isoformat()
    _script(pipeline["events"])
    assert pipeline["sink"].flush(timeout=20)
    env_file = tmp_path / "report.env"
    env_file.write_text(
        "".join(f"{k}={v}\n" for k, v in aws_env.items()) + f"VIDGATE_BUCKET={pipeline['bucket']}\n"
    )
    assert (
        main(["analytics", "report", "--from", today, "--to", today, "--env-file", str(env_file)])
        == 0
    )
    printed = capsys.readouterr().out.split()
    prefix = f"reports/viewing/{today}_{today}/"
    assert f"s3://{pipeline['bucket']}/{prefix}daily.csv" in printed
    s3 = pipeline["s3"]
    daily = s3.get_object(Bucket=pipeline["bucket"], Key=f"{prefix}daily.csv")
    assert daily["ContentType"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(daily["Body"].read().decode())))
    assert rows == [{"day": today, "plays": "2", "watch_minutes": "1.5", "viewers": "2"}]
    summary = s3.get_object(Bucket=pipeline["bucket"], Key=f"{prefix}summary.csv")
    (row,) = csv.DictReader(io.StringIO(summary["Body"].read().decode()))
    assert row["startup_p95_ms"] == "900" and row["refusals"] == "1"
    manifest = json.loads(
        s3.get_object(Bucket=pipeline["bucket"], Key=f"{prefix}manifest.json")["Body"].read()
    )
    assert manifest["engine"] == "duckdb" and manifest["rows"]["daily"] == 1


def test_the_report_command_refuses_a_bad_range(capsys) -> None:
    from app.ops.cli import main

    assert main(["analytics", "report", "--from", "2026-02-30", "--to", "2026-03-01"]) == 1
    assert "from is not a calendar date" in capsys.readouterr().err


class _Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def test_a_scripted_session_gives_the_dashboard_its_watch_minutes_and_completion(
    pipeline, boto_session
) -> None:
    """Open, two heartbeats, the end beacon at the video's end: the sessions code's own events."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from app.auth import Principal
    from app.catalog import Video, VideoCatalog
    from app.entitlements import EntitlementStore
    from app.http.viewer import end_stream_of
    from app.playback import Playback, StreamRequest
    from app.signing import UrlSigner
    from app.streams import Heartbeat, StreamStore
    from app.tables import TABLES, create_tables
    from app.users import UserDirectory

    clock = _Clock()
    client = boto_session.client("dynamodb")
    tables = {logical: f"t{uuid.uuid4().hex[:10]}-{logical}" for logical in TABLES}
    create_tables(client, tables)
    UserDirectory(client, tables["users"], clock=clock).create_on_signup("sub-dan", "dan", None)
    catalog = VideoCatalog(client, tables["videos"], cache_seconds=0)
    catalog.put(
        Video(
            video_id="clip",
            title="Clip",
            description="",
            tier="free",
            object_key="videos/clip/main.mp4",
            content_type="video/mp4",
            duration_seconds=60.0,
            poster_key=None,
            size_bytes=1000,
            created_at=clock.now,
            published=True,
        )
    )
    streams = StreamStore(
        client, tables["users"], tables["audit"], heartbeat_seconds=30, clock=clock
    )
    playback = Playback(
        EntitlementStore(client, tables["users"], tables["audit"], clock=clock),
        catalog,
        UrlSigner("KTEST", ec.generate_private_key(ec.SECP256R1()), base_url="https://cdn.test"),
        ttl_seconds=300,
        clock=clock,
        streams=streams,
        events=pipeline["events"],
    )
    dan = Principal(
        user_id="sub-dan",
        username="dan",
        email=None,
        groups=(),
        token_use="access",
        expires_at=0,
    )
    opened = playback.authorize(dan, "clip", stream=StreamRequest(device="test"))
    assert opened.session_id is not None
    # 28 s played in the first 30 s (startup), 30 s in the next 30, the last 2 s before the end.
    for position, startup in ((28.0, 400.0), (58.0, None)):
        clock.now += timedelta(seconds=30)
        playback.authorize(
            dan,
            "clip",
            stream=StreamRequest(
                session_id=opened.session_id, beat=Heartbeat(position=position, startup_ms=startup)
            ),
        )
    clock.now += timedelta(seconds=2)
    services = SimpleNamespace(streams=streams, viewing_events=pipeline["events"])
    end_stream_of(services, "sub-dan", opened.session_id, position=60.0, reason="ended")  # type: ignore[arg-type]
    assert pipeline["sink"].flush(timeout=20)

    today = datetime.now(UTC).date().isoformat()
    data = AnalyticsQueries(
        DuckDbEngine(S3EventFiles(pipeline["s3"], pipeline["bucket"]))
    ).dashboard(DateRange.parse(today, today))
    assert data["daily"].rows == [
        {"day": today, "plays": 1, "watch_minutes": round(60 / 60, 2), "viewers": 1}
    ]
    assert data["completion"].rows == [
        {"video_id": "clip", "started": 1, "completed": 1, "completion_rate": 1.0}
    ]
