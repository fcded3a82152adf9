"""Stripe webhooks against real DynamoDB engines: signatures, idempotency, order, parking, refunds.

Events are shaped as Stripe sends them and signed as Stripe signs
(app.local.stripe_standin.sign, itself checked against the official library);
the endpoint verifies with ``stripe.Webhook.construct_event``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.billing import BillingStore
from app.config import Settings
from app.entitlements import EntitlementStore
from app.http.webhooks import StripeWebhookApi
from app.local.stripe_standin import sign
from app.purchases import PREMIUM_GRACE, RentalClock, StripeEventProcessor, subscription_state
from app.services import Services
from app.users import UserDirectory
from tests.integration.conftest import DdbTarget

SECRET = "whsec_test_" + "a" * 32
DAY = 24 * 3600


def _event(
    event_type: str, obj: dict[str, Any], created: int, event_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def _subscription(
    sub_id: str,
    customer: str,
    status: str,
    period_end: int,
    *,
    cancel: bool = False,
    ended: int | None = None,
) -> dict[str, Any]:
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "cancel_at_period_end": cancel,
        "canceled_at": ended,
        "ended_at": ended,
        "metadata": {},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_1",
                    "object": "subscription_item",
                    "current_period_start": period_end - 30 * DAY,
                    "current_period_end": period_end,
                    "price": {
                        "id": "price_localmonthly",
                        "object": "price",
                        "unit_amount": 900,
                        "currency": "usd",
                        "recurring": {"interval": "month"},
                    },
                }
            ],
        },
    }


def _apigw(body: bytes, signature: str | None) -> dict[str, Any]:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["stripe-signature"] = signature
    return {
        "version": "2.0",
        "routeKey": "POST /webhooks/stripe",
        "rawPath": "/webhooks/stripe",
        "headers": headers,
        "requestContext": {
            "http": {"method": "POST", "path": "/webhooks/stripe", "sourceIp": "203.0.113.9"},
            "requestId": "req",
            "stage": "$default",
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


class World:
    """One user with a Stripe customer, the endpoint, and readers of what it wrote."""

    def __init__(self, target: DdbTarget) -> None:
        self.target = target
        self.user_id = f"u-{uuid.uuid4().hex[:12]}"
        self.customer = f"cus_{uuid.uuid4().hex[:14]}"
        UserDirectory(target.client, target.tables["users"]).create_on_signup(
            self.user_id, self.user_id, f"{self.user_id}@example.com"
        )
        self.billing = BillingStore(target.client, target.tables["billing"], target.tables["users"])
        self.billing.link_customer(self.user_id, self.customer)
        self.entitlements = EntitlementStore(
            target.client, target.tables["users"], target.tables["audit"]
        )
        self.processor = StripeEventProcessor(
            target.client, target.tables["users"], target.tables["audit"], target.tables["billing"]
        )
        services = Services(
            Settings(
                region="us-east-1",
                users_table=target.tables["users"],
                audit_table=target.tables["audit"],
                billing_table=target.tables["billing"],
            )
        )
        # The collaborators Services would build from AWS, given directly.
        services.__dict__["dynamodb"] = target.client
        services.__dict__["stripe_webhook_secret"] = SECRET
        services.__dict__["stripe_events"] = self.processor
        self.api = StripeWebhookApi(services)
        # The subscription's checkout completed: the webhook links the customer to the user.
        linked = self.processor.process(
            _event(
                "checkout.session.completed",
                {
                    "id": f"cs_test_{uuid.uuid4().hex}",
                    "object": "checkout.session",
                    "mode": "subscription",
                    "customer": self.customer,
                    "payment_status": "paid",
                    "metadata": {"user_id": self.user_id, "kind": "premium"},
                },
                _now() - 3600,
            )
        )
        assert linked == "applied"

    def deliver(
        self, event: dict[str, Any], *, secret: str = SECRET, at: int | None = None
    ) -> dict[str, Any]:
        body = json.dumps(event).encode()
        return self.api(_apigw(body, sign(body, secret, at or int(time.time()))))

    def audit(self) -> list[Any]:
        records, _ = self.entitlements.list_audit(self.user_id, 100, None)
        return records

    def marker(self, event_id: str) -> dict[str, Any] | None:
        item = self.target.client.get_item(
            TableName=self.target.tables["billing"], Key={"pk": {"S": f"event#{event_id}"}}
        ).get("Item")
        return item or None


@pytest.fixture
def world(ddb_target: DdbTarget) -> World:
    return World(ddb_target)


def _now() -> int:
    return int(time.time())


def test_the_stand_in_signs_exactly_as_the_official_library_verifies() -> None:
    body = b'{"id": "evt_1", "object": "event", "type": "ping"}'
    header = sign(body, SECRET, _now())

    event = stripe.Webhook.construct_event(body, header, SECRET)

    assert event.id == "evt_1"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, header, SECRET + "x")


def test_a_paid_subscription_grants_premium_to_the_period_end_plus_grace(world: World) -> None:
    period_end = _now() + 30 * DAY
    event = _event(
        "customer.subscription.created",
        _subscription("sub_1", world.customer, "active", period_end),
        _now(),
    )

    result = world.deliver(event)

    assert result["statusCode"] == 200
    entitlement = world.entitlements.get(world.user_id)
    assert entitlement.stripe_until == datetime.fromtimestamp(period_end, UTC) + PREMIUM_GRACE
    assert entitlement.premium_active(datetime.now(UTC))
    assert entitlement.premium is False  # the admin grant is untouched
    [record] = world.audit()
    assert (record.source, record.action, record.premium_after) == ("stripe", "grant", True)
    assert record.actor == f"stripe:{event['id']}"


@pytest.mark.parametrize("how", ["wrong_secret", "stale_timestamp", "tampered_body", "no_header"])
def test_a_bad_signature_is_a_400_and_writes_nothing(world: World, how: str) -> None:
    event = _event(
        "customer.subscription.created",
        _subscription("sub_1", world.customer, "active", _now() + 30 * DAY),
        _now(),
    )
    body = json.dumps(event).encode()
    if how == "wrong_secret":
        signature: str | None = sign(body, "whsec_other", _now())
    elif how == "stale_timestamp":
        signature = sign(body, SECRET, _now() - 301)  # the library's default tolerance is 300 s
    elif how == "tampered_body":
        signature = sign(body, SECRET, _now())
        body = body.replace(b'"active"', b'"trialing"')
    else:
        signature = None

    result = world.api(_apigw(body, signature))

    assert result["statusCode"] == 400
    assert json.loads(result["body"])["error"] in ("bad_signature", "bad_request")
    assert world.marker(event["id"]) is None
    assert world.entitlements.get(world.user_id).stripe_until is None
    assert world.audit() == []


def test_a_timestamp_just_inside_the_tolerance_is_accepted(world: World) -> None:
    event = _event(
        "customer.subscription.created",
        _subscription("sub_1", world.customer, "active", _now() + 30 * DAY),
        _now(),
    )

    assert world.deliver(event, at=_now() - 290)["statusCode"] == 200


def test_the_same_event_twice_changes_once(world: World) -> None:
    event = _event(
        "customer.subscription.created",
        _subscription("sub_1", world.customer, "active", _now() + 30 * DAY),
        _now(),
    )

    first = json.loads(world.deliver(event)["body"])
    second = json.loads(world.deliver(event)["body"])

    assert (first["outcome"], second["outcome"]) == ("applied", "duplicate")
    assert len(world.audit()) == 1


def test_an_older_event_arriving_late_never_overwrites_the_newer_state(world: World) -> None:
    now = _now()
    period_end = now + 30 * DAY
    created = _event(
        "customer.subscription.created",
        _subscription("sub_1", world.customer, "active", period_end),
        now - 100,
    )
    deleted = _event(
        "customer.subscription.deleted",
        _subscription("sub_1", world.customer, "canceled", period_end, ended=now - 10),
        now - 10,
    )

    world.deliver(deleted)
    late = json.loads(world.deliver(created)["body"])

    assert late["outcome"] == "stale"
    entitlement = world.entitlements.get(world.user_id)
    assert entitlement.stripe_until == datetime.fromtimestamp(now - 10, UTC)
    assert not entitlement.premium_active(datetime.now(UTC))


def test_canceling_at_period_end_keeps_premium_to_the_end_without_grace(world: World) -> None:
    now = _now()
    period_end = now + 10 * DAY
    world.deliver(
        _event(
            "customer.subscription.created",
            _subscription("sub_1", world.customer, "active", period_end),
            now - 5,
        )
    )

    world.deliver(
        _event(
            "customer.subscription.updated",
            _subscription("sub_1", world.customer, "active", period_end, cancel=True),
            now,
        )
    )

    entitlement = world.entitlements.get(world.user_id)
    assert entitlement.stripe_until == datetime.fromtimestamp(period_end, UTC)
    assert entitlement.premium_active(datetime.now(UTC))


def test_failed_payment_keeps_premium_while_stripe_retries_then_unpaid_ends_it(
    world: World,
) -> None:
    now = _now()
    period_end = now + 30 * DAY
    world.deliver(
        _event(
            "customer.subscription.updated",
            _subscription("sub_1", world.customer, "past_due", period_end),
            now - 5,
        )
    )
    assert world.entitlements.get(world.user_id).premium_active(datetime.now(UTC))

    world.deliver(
        _event(
            "customer.subscription.updated",
            _subscription("sub_1", world.customer, "unpaid", period_end),
            now,
        )
    )

    entitlement = world.entitlements.get(world.user_id)
    assert entitlement.stripe_until is None
    assert not entitlement.premium_active(datetime.now(UTC))


def test_an_event_for_an_unknown_customer_is_parked_and_listed(world: World) -> None:
    event = _event(
        "customer.subscription.created",
        _subscription("sub_9", "cus_nobody", "active", _now() + 30 * DAY),
        _now(),
    )

    outcome = json.loads(world.deliver(event)["body"])["outcome"]

    assert outcome == "parked"
    parked = [p for p in world.billing.parked() if p.event_id == event["id"]]
    assert len(parked) == 1
    assert parked[0].customer == "cus_nobody"
    assert parked[0].payload["id"] == event["id"]


def _checkout(
    world: World, kind: str, video: str, payment: str, *, hours: int = 48
) -> dict[str, Any]:
    metadata = {"user_id": world.user_id, "video_id": video, "kind": kind}
    if kind == "rent":
        metadata["window_hours"] = str(hours)
    return _event(
        "checkout.session.completed",
        {
            "id": f"cs_test_{uuid.uuid4().hex}",
            "object": "checkout.session",
            "mode": "payment",
            "customer": world.customer,
            "client_reference_id": world.user_id,
            "metadata": metadata,
            "payment_status": "paid",
            "status": "complete",
            "payment_intent": payment,
        },
        _now(),
    )


def test_a_purchase_owns_the_video_and_a_refund_ends_it_at_once(world: World) -> None:
    world.deliver(_checkout(world, "own", "premium-aurora", "pi_own1"))
    owned = world.entitlements.get(world.user_id).paid["premium-aurora"]
    assert owned.kind == "own" and owned.allows(datetime.now(UTC))

    world.deliver(
        _event(
            "charge.refunded",
            {"id": "ch_1", "object": "charge", "payment_intent": "pi_own1", "refunded": True},
            _now(),
        )
    )

    refunded = world.entitlements.get(world.user_id).paid["premium-aurora"]
    assert not refunded.allows(datetime.now(UTC) + timedelta(seconds=1))
    assert [r.action for r in world.audit()] == ["revoke", "grant"]
    assert all(r.source == "stripe" for r in world.audit())


def test_a_refund_that_arrives_before_its_purchase_grants_nothing(world: World) -> None:
    world.deliver(
        _event(
            "charge.refunded",
            {"id": "ch_2", "object": "charge", "payment_intent": "pi_early", "refunded": True},
            _now(),
        )
    )

    world.deliver(_checkout(world, "rent", "premium-aurora", "pi_early"))

    paid = world.entitlements.get(world.user_id).paid["premium-aurora"]
    assert not paid.allows(datetime.now(UTC) + timedelta(seconds=1))


def test_a_rental_window_starts_at_the_first_play_only(world: World) -> None:
    world.deliver(_checkout(world, "rent", "premium-aurora", "pi_rent1", hours=48))
    rental = world.entitlements.get(world.user_id).paid["premium-aurora"]
    assert rental.started is None and rental.needs_start(datetime.now(UTC))
    clock = RentalClock(world.target.client, world.target.tables["users"])
    first = datetime(2030, 1, 1, tzinfo=UTC)

    clock.start(world.user_id, "premium-aurora", "pi_rent1", first)
    clock.start(world.user_id, "premium-aurora", "pi_rent1", first + timedelta(hours=5))

    started = world.entitlements.get(world.user_id).paid["premium-aurora"]
    assert started.started == first
    assert started.allows(first + timedelta(hours=47, minutes=59))
    assert not started.allows(first + timedelta(hours=48))


def test_twenty_parallel_deliveries_of_one_event_change_once_with_one_audit_record(
    world: World,
) -> None:
    event = _event(
        "customer.subscription.created",
        _subscription("sub_1", world.customer, "active", _now() + 30 * DAY),
        _now(),
    )
    barrier = threading.Barrier(20, timeout=60)

    def deliver(_: int) -> tuple[int, str]:
        barrier.wait()
        result = world.deliver(event)
        return result["statusCode"], json.loads(result["body"]).get("outcome", "")

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(deliver, range(20)))

    assert all(status == 200 for status, _ in results), results
    assert sorted(outcome for _, outcome in results) == ["applied"] + ["duplicate"] * 19
    assert len(world.audit()) == 1


_STATUSES = st.sampled_from(["active", "past_due", "unpaid", "canceled", "trialing", "incomplete"])


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(_STATUSES, st.integers(0, 50), st.integers(-5, 40), st.booleans()),
        min_size=1,
        max_size=5,
        unique_by=lambda step: step[1],  # distinct event times: "the last state" is well defined
    ),
    order=st.randoms(use_true_random=False),
    duplicates=st.lists(st.integers(0, 4), max_size=3),
)
def test_no_delivery_order_grants_what_the_last_state_does_not(
    ddb_target: DdbTarget,
    steps: list[tuple[str, int, int, bool]],
    order: Any,
    duplicates: list[int],
) -> None:
    world = World(ddb_target)
    now = _now()
    events = [
        _event(
            "customer.subscription.updated",
            _subscription(
                "sub_h",
                world.customer,
                status,
                now + days * DAY,
                cancel=cancel,
                ended=(now - 60 + offset) if status == "canceled" else None,
            ),
            now - 60 + offset,
        )
        for status, offset, days, cancel in steps
    ]
    deliveries = events + [events[i % len(events)] for i in duplicates]
    order.shuffle(deliveries)

    for event in deliveries:
        world.processor.process(event)

    states = [s for s in (subscription_state(e) for e in events) if s is not None]
    last = max(states, key=lambda state: state.order)
    assert world.entitlements.get(world.user_id).stripe_until == last.premium_until()


def test_the_status_the_success_page_polls_turns_complete_only_with_the_webhook(
    world: World,
) -> None:
    event = _checkout(world, "own", "premium-aurora", "pi_status")
    session_id = event["data"]["object"]["id"]
    assert world.billing.checkout_state(session_id, world.user_id) == "processing"

    world.deliver(event)

    assert world.billing.checkout_state(session_id, world.user_id) == "complete"
    # Another viewer cannot learn about it from the session id.
    assert world.billing.checkout_state(session_id, "someone-else") == "processing"


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(["own", "rent"]),
    refunded=st.booleans(),
    order=st.randoms(use_true_random=False),
    copies=st.integers(1, 3),
)
def test_no_order_of_a_purchase_and_its_refund_leaves_access_after_the_refund(
    ddb_target: DdbTarget, kind: str, refunded: bool, order: Any, copies: int
) -> None:
    world = World(ddb_target)
    payment = f"pi_{uuid.uuid4().hex}"
    events = [_checkout(world, kind, "premium-aurora", payment)]
    if refunded:
        events.append(
            _event(
                "charge.refunded",
                {"id": "ch_h", "object": "charge", "payment_intent": payment, "refunded": True},
                _now(),
            )
        )
    deliveries = events * copies
    order.shuffle(deliveries)

    for event in deliveries:
        world.processor.process(event)

    paid = world.entitlements.get(world.user_id).paid["premium-aurora"]
    assert paid.allows(datetime.now(UTC) + timedelta(seconds=1)) is not refunded
