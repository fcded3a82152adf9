"""A local stand-in for the slice of Stripe vidgate uses, as the edge stands in for CloudFront.

The API part answers what the ``stripe`` library calls (form-encoded requests,
``Authorization: Bearer sk_…``, JSON objects shaped like Stripe's API
reference): ``POST/GET /v1/customers``, ``POST /v1/checkout/sessions``,
``GET /v1/checkout/sessions/{id}``, ``POST /v1/billing_portal/sessions``,
``GET /v1/subscriptions/{id}``. The hosted part serves a checkout page clearly
marked "Test payment page" (pay, decline, cancel) and a portal page (cancel at
period end). Events go to the webhook URL signed exactly as Stripe signs
(``Stripe-Signature: t=<unix>,v1=<HMAC-SHA256(secret, "<t>.<body>")>``),
from a delivery thread that retries a non-2xx answer with backoff. Test hooks
under ``/_test/`` renew, fail, end or refund, and hold events to deliver them
later, reversed, or duplicated (docs/selling.md#local). State is in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import queue
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

log = logging.getLogger("vidgate.stripe_standin")

MONTH = 30 * 24 * 3600
YEAR = 365 * 24 * 3600
API_VERSION = "2025-03-31.basil"
_PAGE = "font-family:sans-serif;max-width:40em;margin:2em auto"
_BANNER = "background:#ffe08a;padding:.5em;font-weight:bold"
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Seconds between delivery attempts (Stripe spreads its retries over three days)."""


def _id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


def parse_form(body: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``) as nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in body:
        parts = [p for p in re.findall(r"([^\[\]]+)|\[([^\[\]]*)\]", key)]
        tokens = [a or b for a, b in parts]
        node = root
        for token in tokens[:-1]:
            node = node.setdefault(token, {})
        if tokens:
            node[tokens[-1]] = value
    result: dict[str, Any] = _lists(root)
    return result


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {k: _lists(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return node


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value Stripe sends with ``payload`` at ``timestamp``."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class Delivery:
    event: dict[str, Any]
    attempts: int = 0
    statuses: list[int] = field(default_factory=list)
    delivered: bool = False


class StripeStandIn:
    """The WSGI app; ``start_delivery()`` runs the webhook sender."""

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secret: str,
        webhook_url: str,
        public_url: str,
        prices: dict[str, dict[str, Any]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.public_url = public_url.rstrip("/")
        self.prices = prices
        self.clock = clock
        self.customers: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.portal_sessions: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}  # payment_intent id -> charge
        self.deliveries: list[Delivery] = []
        self.held: list[dict[str, Any]] = []
        self.hold = False
        self._idempotency: dict[str, tuple[int, bytes]] = {}
        self._lock = threading.RLock()
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.urls = Map(
            [
                Rule("/v1/customers", endpoint="customers", methods=["POST", "GET"]),
                Rule("/v1/customers/<cid>", endpoint="customer", methods=["GET"]),
                Rule("/v1/checkout/sessions", endpoint="create_session", methods=["POST"]),
                Rule("/v1/checkout/sessions/<sid>", endpoint="get_session", methods=["GET"]),
                Rule("/v1/billing_portal/sessions", endpoint="create_portal", methods=["POST"]),
                Rule("/v1/subscriptions/<sub>", endpoint="get_subscription", methods=["GET"]),
                Rule("/pay/<sid>", endpoint="pay_page", methods=["GET", "POST"]),
                Rule("/portal/<pid>", endpoint="portal_page", methods=["GET", "POST"]),
                Rule("/_test/subscriptions/<sub>/<action>", endpoint="t_sub", methods=["POST"]),
                Rule("/_test/refund", endpoint="t_refund", methods=["POST"]),
                Rule("/_test/hold", endpoint="t_hold", methods=["POST"]),
                Rule("/_test/release", endpoint="t_release", methods=["POST"]),
                Rule("/_test/redeliver", endpoint="t_redeliver", methods=["POST"]),
                Rule("/_test/events", endpoint="t_events", methods=["GET"]),
                Rule("/_test/state", endpoint="t_state", methods=["GET"]),
            ]
        )

    # --- WSGI --------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            endpoint, args = self.urls.bind_to_environ(environ).match()
            if endpoint.startswith(("customer", "create_", "get_")):
                response = self._api(request, endpoint, dict(args))
            else:
                response = getattr(self, f"_{endpoint}")(request, **args)
        except NotFound:
            response = _error(404, "invalid_request_error", "Unrecognized request URL")
        except HTTPException as exc:
            response = _error(exc.code or 400, "invalid_request_error", str(exc.description))
        return response(environ, start_response)

    def _api(self, request: Request, endpoint: str, args: dict[str, str]) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        key = request.headers.get("Idempotency-Key")
        if request.method == "POST" and key:
            with self._lock:
                if key in self._idempotency:
                    status, body = self._idempotency[key]
                    return Response(body, status, content_type="application/json")
        params = parse_form(parse_qsl(request.get_data(as_text=True), keep_blank_values=True))
        params.update(parse_form(request.args.items(multi=True)))
        with self._lock:
            try:
                result = getattr(self, f"_{endpoint}")(params, **args)
            except LookupError as exc:
                return _error(404, "invalid_request_error", f"No such object: {exc.args[0]}")
            except ValueError as exc:
                return _error(400, "invalid_request_error", str(exc))
            body = json.dumps(result).encode()
            if request.method == "POST" and key:
                self._idempotency[key] = (200, body)
        return Response(body, 200, content_type="application/json")

    # --- API objects ---------------------------------------------------------------------

    def _customers(self, params: dict[str, Any]) -> dict[str, Any]:
        if "email" not in params and "metadata" not in params and not params.get("name"):
            return {"object": "list", "data": list(self.customers.values()), "has_more": False}
        customer: dict[str, Any] = {
            "id": _id("cus"),
            "object": "customer",
            "created": int(self.clock()),
            "email": params.get("email"),
            "metadata": params.get("metadata") or {},
            "livemode": False,
        }
        self.customers[customer["id"]] = customer
        return customer

    def _customer(self, params: dict[str, Any], cid: str) -> dict[str, Any]:
        if cid not in self.customers:
            raise LookupError(cid)
        return self.customers[cid]

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        mode = params.get("mode")
        if mode not in ("payment", "subscription"):
            raise ValueError("mode must be payment or subscription")
        customer = params.get("customer")
        if customer and customer not in self.customers:
            raise ValueError(f"No such customer: '{customer}'")
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            raise ValueError("line_items is required")
        item = items[0]
        if mode == "subscription":
            price = self.prices.get(str(item.get("price")))
            if price is None:
                raise ValueError(f"No such price: '{item.get('price')}'")
            amount, currency = price["unit_amount"], price["currency"]
            name = price["nickname"]
        else:
            data = item.get("price_data") or {}
            try:
                amount = int(data["unit_amount"])
            except (KeyError, ValueError):
                raise ValueError("line_items[0][price_data][unit_amount] is required") from None
            currency = str(data.get("currency") or "usd")
            name = str((data.get("product_data") or {}).get("name") or "")
        for url_name in ("success_url", "cancel_url"):
            if not str(params.get(url_name) or "").startswith(("http://", "https://")):
                raise ValueError(f"{url_name} must be a URL")
        sid = _id("cs")
        session = {
            "id": sid,
            "object": "checkout.session",
            "mode": mode,
            "customer": customer,
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {},
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": amount,
            "currency": currency,
            "created": int(self.clock()),
            "expires_at": int(self.clock()) + 24 * 3600,
            "success_url": params["success_url"],
            "cancel_url": params["cancel_url"],
            "url": f"{self.public_url}/pay/{sid}",
            "payment_intent": None,
            "subscription": None,
            "livemode": False,
            # Kept for the hosted page and the events; Stripe keeps them server-side too.
            "_line": {"name": name, "price": item.get("price")},
            "_subscription_metadata": (params.get("subscription_data") or {}).get("metadata") or {},
            "_payment_metadata": (params.get("payment_intent_data") or {}).get("metadata") or {},
        }
        self.sessions[sid] = session
        return _public(session)

    def _get_session(self, params: dict[str, Any], sid: str) -> dict[str, Any]:
        if sid not in self.sessions:
            raise LookupError(sid)
        return _public(self.sessions[sid])

    def _create_portal(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = params.get("customer")
        if customer not in self.customers:
            raise ValueError(f"No such customer: '{customer}'")
        pid = _id("bps")
        portal = {
            "id": pid,
            "object": "billing_portal.session",
            "customer": customer,
            "return_url": params.get("return_url"),
            "created": int(self.clock()),
            "livemode": False,
            "url": f"{self.public_url}/portal/{pid}",
        }
        self.portal_sessions[pid] = portal
        return portal

    def _get_subscription(self, params: dict[str, Any], sub: str) -> dict[str, Any]:
        if sub not in self.subscriptions:
            raise LookupError(sub)
        return self.subscriptions[sub]

    # --- hosted pages ------------------------------------------------------------------

    def _pay_page(self, request: Request, sid: str) -> Response:
        with self._lock:
            session = self.sessions.get(sid)
            if session is None:
                raise NotFound()
            message = ""
            if request.method == "POST":
                action = request.form.get("action")
                if session["status"] != "open":
                    message = "This checkout is no longer open."
                elif action == "pay":
                    self._complete(session)
                    target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", sid)
                    return _redirect(target)
                elif action == "cancel":
                    return _redirect(session["cancel_url"])
                else:
                    message = "Your card was declined. (test card 4000 0000 0000 0002)"
            amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
            what = session["_line"]["name"]
            if session["mode"] == "subscription":
                what += " (subscription)"
        body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<link rel="icon" href="data:,"><title>Test payment page</title></head><body style="{_PAGE}">
<p style="{_BANNER}" id="test-banner">Test payment page:
local stand-in for Stripe Checkout, no real money moves.</p>
<h1>Pay {html.escape(amount)}</h1><p id="what">{html.escape(what)}</p>
{f'<p role="alert" id="decline">{html.escape(message)}</p>' if message else ""}
<form method="post"><button name="action" value="pay" id="pay">Pay (test card succeeds)</button>
<button name="action" value="decline" id="decline-card">Decline card</button>
<button name="action" value="cancel" id="cancel">Cancel and go back</button></form></body></html>"""
        # Like Stripe's page, a decline is shown on the page itself (HTTP 200).
        return Response(body, 200, content_type="text/html; charset=utf-8")

    def _portal_page(self, request: Request, pid: str) -> Response:
        with self._lock:
            portal = self.portal_sessions.get(pid)
            if portal is None:
                raise NotFound()
            subs = [s for s in self.subscriptions.values() if s["customer"] == portal["customer"]]
            if request.method == "POST" and request.form.get("action") == "cancel":
                for sub in subs:
                    if sub["status"] in ("active", "trialing", "past_due"):
                        sub["cancel_at_period_end"] = True
                        sub["canceled_at"] = int(self.clock())
                        self._emit("customer.subscription.updated", sub)
                return _redirect(str(portal["return_url"]))
            rows = "".join(
                f"<li>{html.escape(s['items']['data'][0]['price']['nickname'])}: {s['status']}"
                f"{' (cancels at period end)' if s['cancel_at_period_end'] else ''}</li>"
                for s in subs
            )
            back = html.escape(str(portal["return_url"]))
        body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<link rel="icon" href="data:,"><title>Test billing portal</title></head><body style="{_PAGE}">
<p style="{_BANNER}">Test billing portal (local stand-in for Stripe)</p>
<ul id="subscriptions">{rows or "<li>No subscriptions</li>"}</ul>
<form method="post"><button name="action" value="cancel" id="cancel-plan">Cancel plan</button>
</form><p><a id="return" href="{back}">Return to vidgate</a></p></body></html>"""
        return Response(body, 200, content_type="text/html; charset=utf-8")

    def _complete(self, session: dict[str, Any]) -> None:
        now = int(self.clock())
        session["status"] = "complete"
        session["payment_status"] = "paid"
        if session["mode"] == "subscription":
            price = self.prices[str(session["_line"]["price"])]
            period = MONTH if price["recurring"]["interval"] == "month" else YEAR
            sub = {
                "id": _id("sub"),
                "object": "subscription",
                "customer": session["customer"],
                "status": "active",
                "cancel_at_period_end": False,
                "canceled_at": None,
                "ended_at": None,
                "created": now,
                "start_date": now,
                "metadata": session["_subscription_metadata"],
                "livemode": False,
                "items": {
                    "object": "list",
                    "data": [
                        {
                            "id": _id("si"),
                            "object": "subscription_item",
                            "price": price,
                            "quantity": 1,
                            "current_period_start": now,
                            "current_period_end": now + period,
                        }
                    ],
                },
            }
            self.subscriptions[sub["id"]] = sub
            session["subscription"] = sub["id"]
            self._emit("customer.subscription.created", sub)
            self._emit("invoice.paid", self._invoice(sub))
        else:
            intent = _id("pi")
            session["payment_intent"] = intent
            self.payments[intent] = {
                "id": _id("ch"),
                "object": "charge",
                "payment_intent": intent,
                "amount": session["amount_total"],
                "currency": session["currency"],
                "customer": session["customer"],
                "metadata": session["_payment_metadata"],
                "refunded": False,
                "amount_refunded": 0,
                "created": now,
            }
        self._emit("checkout.session.completed", _public(session))

    def _invoice(self, sub: dict[str, Any]) -> dict[str, Any]:
        item = sub["items"]["data"][0]
        return {
            "id": _id("in"),
            "object": "invoice",
            "customer": sub["customer"],
            "subscription": sub["id"],
            "status": "paid",
            "amount_paid": item["price"]["unit_amount"],
            "lines": {
                "object": "list",
                "data": [
                    {
                        "object": "line_item",
                        "period": {
                            "start": item["current_period_start"],
                            "end": item["current_period_end"],
                        },
                    }
                ],
            },
        }

    # --- test hooks ----------------------------------------------------------------------

    def _json(self, request: Request) -> dict[str, Any]:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}

    def _t_sub(self, request: Request, sub: str, action: str) -> Response:
        with self._lock:
            subscription = self.subscriptions.get(sub)
            if subscription is None:
                raise NotFound()
            item = subscription["items"]["data"][0]
            now = int(self.clock())
            if action == "renew":
                length = item["current_period_end"] - item["current_period_start"]
                item["current_period_start"] = item["current_period_end"]
                item["current_period_end"] += length
                subscription["status"] = "active"
                self._emit("invoice.paid", self._invoice(subscription))
                self._emit("customer.subscription.updated", subscription)
            elif action == "fail_payment":
                subscription["status"] = "past_due"
                self._emit("customer.subscription.updated", subscription)
            elif action == "unpaid":
                subscription["status"] = "unpaid"
                self._emit("customer.subscription.updated", subscription)
            elif action == "end":
                subscription["status"] = "canceled"
                subscription["ended_at"] = now
                subscription["canceled_at"] = subscription["canceled_at"] or now
                self._emit("customer.subscription.deleted", subscription)
            else:
                raise NotFound()
            return _json_response(subscription)

    def _t_refund(self, request: Request) -> Response:
        intent = str(self._json(request).get("payment_intent") or "")
        with self._lock:
            charge = self.payments.get(intent)
            if charge is None:
                raise NotFound()
            charge["refunded"] = True
            charge["amount_refunded"] = charge["amount"]
            self._emit("charge.refunded", charge)
            return _json_response(charge)

    def _t_hold(self, request: Request) -> Response:
        with self._lock:
            self.hold = bool(self._json(request).get("hold", True))
            return _json_response({"hold": self.hold, "held": len(self.held)})

    def _t_release(self, request: Request) -> Response:
        """Deliver held events: ``order`` "reverse" or as sent, each ``copies`` times."""
        options = self._json(request)
        with self._lock:
            events = list(self.held)
            self.held.clear()
            self.hold = False
            if options.get("order") == "reverse":
                events.reverse()
            copies = max(1, min(int(options.get("copies") or 1), 50))
            for event in events:
                for _ in range(copies):
                    self._send(event)
            return _json_response({"released": len(events), "copies": copies})

    def _t_redeliver(self, request: Request) -> Response:
        options = self._json(request)
        with self._lock:
            sent = [d.event for d in self.deliveries if d.event["id"] == options.get("event_id")]
            if not sent:
                raise NotFound()
            for _ in range(max(1, min(int(options.get("times") or 1), 50))):
                self._send(sent[0])
            return _json_response({"redelivered": options.get("event_id")})

    def _t_events(self, request: Request) -> Response:
        with self._lock:
            return _json_response(
                [
                    {
                        "id": d.event["id"],
                        "type": d.event["type"],
                        "attempts": d.attempts,
                        "statuses": d.statuses,
                        "delivered": d.delivered,
                    }
                    for d in self.deliveries
                ]
            )

    def _t_state(self, request: Request) -> Response:
        with self._lock:
            return _json_response(
                {
                    "customers": list(self.customers),
                    "subscriptions": list(self.subscriptions.values()),
                    "payments": list(self.payments.values()),
                    "sessions": [_public(s) for s in self.sessions.values()],
                }
            )

    # --- events and delivery -------------------------------------------------------------

    def _emit(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = {
            "id": _id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(self.clock()),
            "data": {"object": json.loads(json.dumps(obj))},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        if self.hold:
            self.held.append(event)
        else:
            self._send(event)
        return event

    def _send(self, event: dict[str, Any]) -> None:
        delivery = Delivery(event)
        self.deliveries.append(delivery)
        self._queue.put(delivery)

    def deliver_once(self, delivery: Delivery) -> int:
        """POST one event to the webhook URL, signed now; the HTTP status (0: no answer)."""
        payload = json.dumps(delivery.event, indent=2).encode()
        request = urllib.request.Request(  # noqa: S310 (see below)
            self.webhook_url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": sign(payload, self.webhook_secret, int(time.time())),
            },
        )
        try:
            # The URL is the stack's own http:// front door, never user input.
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            if delivery is None:
                return
            # First attempts go out one by one, in queue order (so a reversed release
            # arrives reversed); retries run beside them.
            if not self._attempt(delivery):
                threading.Thread(target=self._retry, args=(delivery,), daemon=True).start()

    def _attempt(self, delivery: Delivery) -> bool:
        status = self.deliver_once(delivery)
        with self._lock:
            delivery.attempts += 1
            delivery.statuses.append(status)
            delivery.delivered = 200 <= status < 300
            return delivery.delivered

    def _retry(self, delivery: Delivery) -> None:
        for delay in RETRY_DELAYS:
            time.sleep(delay)
            if self._attempt(delivery):
                return
        log.warning(
            "webhook %s not delivered after %d attempts", delivery.event["id"], delivery.attempts
        )

    def start_delivery(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="vidgate-stripe-webhooks", daemon=True
        )
        self._thread.start()

    def stop_delivery(self) -> None:
        self._queue.put(None)


def _public(session: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in session.items() if not k.startswith("_")}


def _json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status, content_type="application/json")


def _error(status: int, kind: str, message: str) -> Response:
    return _json_response({"error": {"type": kind, "message": message}}, status)


def _redirect(url: str) -> Response:
    return Response("", 303, headers={"Location": url})


def demo_prices() -> dict[str, dict[str, Any]]:
    """The recurring prices of the local premium plan (ids the bootstrap stores as the plan)."""

    def price(price_id: str, amount: int, interval: str, nickname: str) -> dict[str, Any]:
        return {
            "id": price_id,
            "object": "price",
            "active": True,
            "currency": "usd",
            "unit_amount": amount,
            "nickname": nickname,
            "recurring": {"interval": interval, "interval_count": 1},
            "type": "recurring",
            "livemode": False,
        }

    return {
        "price_localmonthly": price("price_localmonthly", 900, "month", "Premium monthly"),
        "price_localyearly": price("price_localyearly", 9000, "year", "Premium yearly"),
    }
