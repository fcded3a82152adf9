"""The admin analytics page in a real browser: the charts show the viewing that happened.

On the shared ``dev_stack``: bob (free) opens a premium video's page in
Chromium (the web app emits ``upsell_view``), and the test plays two streams'
worth of events through the real emitter the app uses (``Services.viewing_events``
built from the stack's ``dev.env``: Firehose in the emulator, the HMAC key from its
Secrets Manager), then a premium grant for bob. carol's dashboard must then show
exactly those plays, minutes, startup times and the conversion. Other tests may
have left events of today in the stack, so the expected figures are computed in
Python from the raw objects in S3 (no SQL), and the test's own part is checked as
the difference from the page before. The second test stops Firehose (deletes
the stream): pages and grants still answer, and the page counts the drop.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from app.config import Need
from app.local.analytics_setup import ensure_events_stream
from app.ops.admin_cli import Operator
from tests.e2e.conftest import VisitorFactory
from tests.e2e.helpers import Visitor, sign_in
from tests.stackproc import RunningStack

pytestmark = pytest.mark.e2e

WAIT_SECONDS = 30


def _operator(stack: RunningStack) -> Operator:
    return Operator.load(
        {Need.TABLES, Need.EVENTS, Need.MEDIA},
        env_file=stack.state_dir / "dev.env",
        environ={},
        say=lambda _line: None,
    )


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _tiles(carol: Visitor) -> dict[str, str]:
    carol.goto(f"/admin/analytics?from={_today()}&to={_today()}")
    tiles = carol.page.locator("#summary [data-metric]")
    return {
        str(tiles.nth(i).get_attribute("data-metric")): tiles.nth(i).inner_text().strip()
        for i in range(tiles.count())
    }


def _raw_events(op: Operator, stack: RunningStack) -> list[dict[str, Any]]:
    """Today's events straight from the objects Firehose wrote (today's and tomorrow's dt)."""
    s3, bucket = op.services.s3, stack.document["bucket"]
    records = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"analytics/events/dt={_today()}/"
    ):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            records += [json.loads(line) for line in body.splitlines() if line]
    return [r for r in records if r["ts"].startswith(_today())]


def _nearest_rank(values: list[int], fraction: float) -> int:
    ordered = sorted(values)
    return ordered[math.ceil(fraction * len(ordered)) - 1]


def _wait_for(check, what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.5)


def test_the_dashboard_shows_the_plays_minutes_startup_times_and_conversion(
    dev_stack: RunningStack, visit: VisitorFactory
) -> None:
    op = _operator(dev_stack)
    bob_sub = op.services.users.find("bob").user_id
    carol = visit(dev_stack)
    sign_in(carol, "carol", "/admin/analytics")
    assert carol.page.locator("nav.admin-nav a[aria-current=page]").inner_text() == "Analytics"
    before = _tiles(carol)
    sent_before = len(_raw_events(op, dev_stack))

    bob = visit(dev_stack)
    sign_in(bob, "bob", "/")
    bob.goto("/watch/premium-aurora")
    assert bob.page.locator("h1").first.is_visible()
    assert bob.page.locator("#player").count() == 0  # the upsell page, not the player

    events = op.services.viewing_events
    for sid, startup, watched in (("e2e-s1", 250, (90, 30)), ("e2e-s2", 750, (60,))):
        events.emit(
            "grant",
            sub="e2e-viewer",
            plan="free",
            video_id="free-sampler",
            video_tier="free",
            session_id=sid,
            format="hls",
        )
        events.emit(
            "start",
            sub="e2e-viewer",
            plan="free",
            video_id="free-sampler",
            session_id=sid,
            startup_ms=startup,
            rendition="360p",
            bitrate=600_000,
        )
        for seconds in watched:
            events.emit(
                "heartbeat",
                sub="e2e-viewer",
                plan="free",
                video_id="free-sampler",
                session_id=sid,
                watched_s=seconds,
                stall_ms=0,
                rendition="360p",
            )
    events.emit(
        "grant",
        sub=bob_sub,
        plan="premium",
        video_id="premium-aurora",
        video_tier="premium",
        session_id="e2e-s3",
        format="hls",
    )
    assert events.sink.flush(timeout=WAIT_SECONDS)  # type: ignore[attr-defined]
    # The upsell view went out from the web app's own sender (it lingers about a second).
    raw = _wait_for(
        lambda: (r := _raw_events(op, dev_stack)) and len(r) >= sent_before + 9 and r,
        "the events in S3",
    )
    assert any(r["type"] == "upsell_view" and r["video_id"] == "premium-aurora" for r in raw)

    starts = [r["startup_ms"] for r in raw if r["type"] == "start"]
    minutes = round(
        sum(r["watched_s"] or 0 for r in raw if r["type"] in ("heartbeat", "stop")) / 60, 2
    )
    after = _tiles(carol)
    assert int(after["plays"]) == len(starts) == int(before["plays"]) + 2
    assert float(after["watch_minutes"]) == minutes
    assert float(after["watch_minutes"]) == pytest.approx(float(before["watch_minutes"]) + 3.0)
    assert after["startup_p50_ms"] == f"{_nearest_rank(starts, 0.5)} ms"
    assert after["startup_p95_ms"] == f"{_nearest_rank(starts, 0.95)} ms"

    page = carol.page
    label = _today()[5:]
    bar = page.locator(f"#chart-plays rect[data-label='{label}']")
    assert bar.get_attribute("data-value") == str(len(starts))
    top = page.locator("#chart-top rect[data-label='free-sampler']")
    assert float(top.get_attribute("data-value") or "0") >= 3.0
    converted = page.locator("#chart-conversion rect[data-label='Then played premium']")
    assert int(float(converted.get_attribute("data-value") or "0")) >= 1
    p50 = page.locator(f"#chart-startup circle[data-series=p50][data-label='{label}']")
    assert p50.get_attribute("data-value") == str(_nearest_rank(starts, 0.5))
    assert page.locator("svg.chart").count() >= 8
    carol.problems.assert_clean()  # the inline SVG breaks no CSP rule
    bob.problems.assert_clean()


def test_with_firehose_stopped_pages_and_grants_answer_and_the_drop_is_counted(
    dev_stack: RunningStack, visit: VisitorFactory
) -> None:
    op = _operator(dev_stack)
    firehose = op.services.session.client("firehose")
    stream = dev_stack.document["analytics"]["events_stream"]
    firehose.delete_delivery_stream(DeliveryStreamName=stream)
    try:
        carol = visit(dev_stack)
        sign_in(carol, "carol", "/admin/analytics")
        dropped_before = int(
            carol.page.locator("#pipeline [data-counter=dropped]").inner_text().split()[-1]
        )
        bob = visit(dev_stack)
        sign_in(bob, "bob", "/")
        response = bob.page.goto(bob.url("/watch/premium-aurora"))
        assert response is not None and response.status == 200  # the upsell page
        grant = bob.page.evaluate(
            """async () => {
                 const token = document.querySelector('meta[name=csrf-token]');
                 const r = await fetch('/watch/free-sampler/grant', {method: 'POST',
                   headers: {'Content-Type': 'application/json',
                             'X-CSRF-Token': token ? token.content : ''},
                   body: '{}'});
                 return r.status;
               }"""
        )
        assert grant == 200

        def dropped() -> int:
            carol.page.reload()
            text = carol.page.locator("#pipeline [data-counter=dropped]").inner_text()
            return int(text.split()[-1]) > dropped_before

        _wait_for(dropped, "the dropped counter to grow")
    finally:
        ensure_events_stream(firehose, stream, dev_stack.document["bucket"])


def test_only_admins_see_the_page_and_a_bad_range_is_a_friendly_400(
    dev_stack: RunningStack, visit: VisitorFactory
) -> None:
    bob = visit(dev_stack)
    sign_in(bob, "bob", "/")
    response = bob.page.goto(bob.url("/admin/analytics"))
    assert response is not None and response.status == 403
    carol = visit(dev_stack)
    sign_in(carol, "carol", "/admin/analytics")
    for query in (
        "from=2026-02-30&to=2026-03-01",
        "from=2026-03-02&to=2026-03-01",
        "from=2024-01-01&to=2026-01-01",
        "from=x&to=y",
    ):
        response = carol.page.goto(carol.url(f"/admin/analytics?{query}"))
        assert response is not None and response.status == 400, query
        assert carol.page.locator("svg.chart").count() == 0
    # The form's own dates round-trip: a one-day range of today.
    carol.goto("/admin/analytics")
    carol.page.fill("#from", _today())
    carol.page.fill("#to", _today())
    with carol.page.expect_navigation(wait_until="load"):
        carol.page.click("form.analytics-range button[type=submit]")
    assert f"from={_today()}" in carol.path and f"to={_today()}" in carol.path
    assert carol.page.locator("#chart-plays rect[data-label]").count() == 1
