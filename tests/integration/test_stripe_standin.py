"""The local Stripe stand-in driven by the official ``stripe`` library, and its webhook delivery.

A receiver records what the stand-in delivers: every event verifies with
``stripe.Webhook.construct_event``; a non-2xx answer is retried; held events are
released reversed and duplicated on demand.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import stripe
from werkzeug.wrappers import Request, Response

from app.local.stripe_standin import StripeStandIn, demo_prices
from app.local.webserver import ServerHandle, serve_wsgi

API_KEY = "sk_test_standin"
SECRET = "whsec_standin"


@dataclass
class Receiver:
    """A webhook endpoint that verifies each delivery; the first ``fail_first`` answers are 500."""

    fail_first: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        event = stripe.Webhook.construct_event(body, request.headers["Stripe-Signature"], SECRET)
        with self.lock:
            status = 500 if len(self.answered) < self.fail_first else 200
            self.answered.append(status)
            if status == 200:
                self.events.append(event.to_dict())
        return Response("{}", status, content_type="application/json")(environ, start_response)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.events) >= count:
                    return list(self.events)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.events)} events delivered, wanted {count}")


@dataclass
class Running:
    standin: StripeStandIn
    url: str
    receiver: Receiver
    client: Any
    handles: list[ServerHandle]


@pytest.fixture
def running() -> Iterator[Running]:
    receiver = Receiver()
    receiving = serve_wsgi(receiver, 0, name="receiver")
    standin = StripeStandIn(
        api_key=API_KEY,
        webhook_secret=SECRET,
        webhook_url=f"http://127.0.0.1:{receiving.port}/webhooks/stripe",
        public_url="http://127.0.0.1:0",
        prices=demo_prices(),
    )
    handle = serve_wsgi(standin, 0, name="stripe")
    url = f"http://127.0.0.1:{handle.port}"
    standin.public_url = url
    standin.start_delivery()
    client = stripe.StripeClient(API_KEY, base_addresses={"api": url}, max_network_retries=0)
    yield Running(standin, url, receiver, client, [handle, receiving])
    standin.stop_delivery()
    for server in (handle, receiving):
        server.stop()


def _post(url: str, form: dict[str, str] | None = None, body: dict[str, Any] | None = None) -> int:
    if body is not None:
        data, kind = json.dumps(body).encode(), "application/json"
    else:
        data, kind = (
            urllib.parse.urlencode(form or {}).encode(),
            "application/x-www-form-urlencoded",
        )
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": kind})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _payment_session(client: Any, customer: str) -> Any:
    return client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "customer": customer,
            "client_reference_id": "user-1",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 499,
                        "product_data": {"name": "Buy: Aurora"},
                    },
                    "quantity": 1,
                }
            ],
            "metadata": {"user_id": "user-1", "video_id": "premium-aurora", "kind": "own"},
            "success_url": "http://site.test/billing/success?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://site.test/watch/premium-aurora",
        }
    )


def test_the_library_creates_and_reads_objects_shaped_as_stripe_documents(running: Running) -> None:
    customer = running.client.v1.customers.create(
        params={"email": "bob@example.com", "metadata": {"user_id": "user-1"}}
    )
    session = _payment_session(running.client, customer.id)
    again = running.client.v1.checkout.sessions.retrieve(session.id)
    portal = running.client.v1.billing_portal.sessions.create(
        params={"customer": customer.id, "return_url": "http://site.test/account"}
    )

    assert customer.object == "customer" and customer.id.startswith("cus_")
    assert isinstance(session, stripe.checkout.Session)
    assert (session.object, session.mode, session.status, session.payment_status) == (
        "checkout.session",
        "payment",
        "open",
        "unpaid",
    )
    assert session.metadata is not None and session.metadata["video_id"] == "premium-aurora"
    assert session.url == f"{running.url}/pay/{session.id}"
    assert again.id == session.id and again.amount_total == 499
    assert portal.object == "billing_portal.session" and portal.url.startswith(running.url)


def test_a_wrong_api_key_and_an_unknown_object_are_stripe_errors(running: Running) -> None:
    wrong = stripe.StripeClient("sk_test_wrong", base_addresses={"api": running.url})
    with pytest.raises(stripe.AuthenticationError):
        wrong.v1.customers.create(params={"email": "x@example.com"})
    with pytest.raises(stripe.InvalidRequestError):
        running.client.v1.checkout.sessions.retrieve("cs_test_nothing")


def test_paying_delivers_a_signed_event_and_a_failed_delivery_is_retried(running: Running) -> None:
    running.receiver.fail_first = 1
    customer = running.client.v1.customers.create(params={"email": "bob@example.com"})
    session = _payment_session(running.client, customer.id)

    status = _post(f"{running.url}/pay/{session.id}", form={"action": "pay"})

    assert status == 303
    [event] = running.receiver.wait_for(1)
    assert event["type"] == "checkout.session.completed"
    assert event["data"]["object"]["id"] == session.id
    assert event["data"]["object"]["payment_status"] == "paid"
    assert running.receiver.answered[:2] == [500, 200]


def test_a_declined_card_completes_nothing_and_sends_nothing(running: Running) -> None:
    customer = running.client.v1.customers.create(params={"email": "bob@example.com"})
    session = _payment_session(running.client, customer.id)

    assert _post(f"{running.url}/pay/{session.id}", form={"action": "decline"}) == 200

    assert running.client.v1.checkout.sessions.retrieve(session.id).status == "open"
    time.sleep(0.5)
    assert running.receiver.events == []


def test_held_events_are_released_reversed_and_duplicated(running: Running) -> None:
    customer = running.client.v1.customers.create(params={"email": "bob@example.com"})
    session = running.client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": "price_localmonthly", "quantity": 1}],
            "success_url": "http://site.test/ok",
            "cancel_url": "http://site.test/no",
        }
    )
    _post(f"{running.url}/_test/hold", body={"hold": True})
    _post(f"{running.url}/pay/{session.id}", form={"action": "pay"})
    sent = [e["type"] for e in running.standin.held]

    _post(f"{running.url}/_test/release", body={"order": "reverse", "copies": 2})

    delivered = running.receiver.wait_for(2 * len(sent))
    assert sent == ["customer.subscription.created", "invoice.paid", "checkout.session.completed"]
    # Newest first, each event twice in a row under its one id.
    assert [e["type"] for e in delivered] == [t for t in reversed(sent) for _ in range(2)]
    assert len({e["id"] for e in delivered}) == len(sent)
