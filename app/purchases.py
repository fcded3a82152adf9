"""What Stripe webhooks change: subscriptions, purchases, rentals and refunds, in DynamoDB.

:class:`StripeEventProcessor` turns one verified Stripe event (a parsed dict;
the signature is checked before, in :mod:`app.http.webhooks`) into at most one
change of the user item, written in one TransactWriteItems with the event's
processed marker (a create-only put: an event id is applied once however often
it arrives) and its audit record (``source`` "stripe"). Subscription events are
ordered by the subscription's own clock (the event's ``created``, then the
period end, then how final the status is), stored on the user item as
``sub_order``: an older event never overwrites a newer state, whatever the
arrival order. An event for a customer or user vidgate does not know is
parked (stored, listed by ``vidgate billing parked``), never lost. The rules
are in docs/selling.md#webhooks. :class:`RentalClock` starts a rental's
window at its first play with one conditional write.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from app.dynamo import (
    Item,
    b,
    error_code,
    format_time,
    get_s,
    n,
    s,
    unavailable_on_errors,
    utc_now,
)
from app.entitlements import Entitlement, entitlement_from_item, validate_user_id
from app.errors import DependencyUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger("vidgate.purchases")

Outcome = Literal["applied", "duplicate", "stale", "ignored", "parked"]

PREMIUM_GRACE = timedelta(hours=24)
"""Access past a paid period's end while the renewal invoice settles."""
RENTAL_START_WITHIN = timedelta(days=30)
"""A rental not played within this time after payment lapses unstarted."""
EVENT_MARKER_DAYS = 90
"""Processed event ids are kept this long (TTL); Stripe retries for up to 3 days."""
_ATTEMPTS = 8
_PAYLOAD_MAX = 300_000  # under DynamoDB's 400 KB item limit

# How final a status is: at the same second and period end, the more final one wins.
_STATUS_RANK = {
    "incomplete": 0,
    "trialing": 1,
    "active": 1,
    "past_due": 2,
    "paused": 3,
    "unpaid": 3,
    "incomplete_expired": 4,
    "canceled": 4,
}
_PAYING = frozenset({"active", "trialing", "past_due"})
SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
    }
)
CHECKOUT_EVENTS = frozenset(
    {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
)
HANDLED_EVENTS = SUBSCRIPTION_EVENTS | CHECKOUT_EVENTS | {"invoice.paid", "charge.refunded"}


def _ts(value: object) -> datetime | None:
    """A Stripe timestamp (unix seconds) as an aware datetime; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return datetime.fromtimestamp(value, tz=UTC)


@dataclass(frozen=True)
class SubscriptionState:
    """A subscription as one event showed it, with the position of that view in its history."""

    subscription_id: str
    customer: str
    status: str
    period_end: datetime | None
    cancel_at_period_end: bool
    ended_at: datetime | None
    created: int
    price_id: str = ""
    interval: str = ""
    amount: int = 0
    currency: str = ""

    @property
    def order(self) -> str:
        """Sortable text: event time, then period end, then how final the status is."""
        period = int(self.period_end.timestamp()) if self.period_end else 0
        rank = _STATUS_RANK.get(self.status, 4)
        return f"{self.created:012d}.{period:012d}.{rank}"

    def premium_until(self) -> datetime | None:
        """Until when this state allows premium (None: not at all)."""
        if self.status in _PAYING and self.period_end is not None:
            # Canceled at period end: access to the end, no grace after it.
            return self.period_end if self.cancel_at_period_end else self.period_end + PREMIUM_GRACE
        if self.status == "canceled" and self.ended_at is not None:
            return self.ended_at
        return None

    def to_item(self) -> Item:
        item: Item = {
            "id": s(self.subscription_id),
            "status": s(self.status),
            "cancel_at_period_end": b(self.cancel_at_period_end),
            "created": n(self.created),
        }
        if self.period_end:
            item["period_end"] = s(format_time(self.period_end))
        if self.ended_at:
            item["ended_at"] = s(format_time(self.ended_at))
        for name, value in (
            ("price_id", self.price_id),
            ("interval", self.interval),
            ("currency", self.currency),
        ):
            if value:
                item[name] = s(value)
        if self.amount:
            item["amount"] = n(self.amount)
        return {"M": item}


def subscription_state(event: Mapping[str, Any]) -> SubscriptionState | None:
    """The subscription state a ``customer.subscription.*`` or ``invoice.paid`` event shows."""
    obj = event.get("data", {}).get("object", {})
    created = event.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        return None
    if event.get("type") == "invoice.paid":
        sub_id = obj.get("subscription") or (
            (obj.get("parent") or {}).get("subscription_details") or {}
        ).get("subscription")
        lines = (obj.get("lines") or {}).get("data") or []
        period_end = _ts(((lines[0] if lines else {}).get("period") or {}).get("end"))
        if not isinstance(sub_id, str) or period_end is None:
            return None
        return SubscriptionState(
            subscription_id=sub_id,
            customer=str(obj.get("customer") or ""),
            status="active",
            period_end=period_end,
            cancel_at_period_end=False,
            ended_at=None,
            created=created,
        )
    if obj.get("object") != "subscription" or not isinstance(obj.get("id"), str):
        return None
    items = (obj.get("items") or {}).get("data") or []
    first = items[0] if items else {}
    price = first.get("price") or {}
    # API versions from 2025-03 carry the period on the item, older ones on the subscription.
    period_end = _ts(obj.get("current_period_end")) or _ts(first.get("current_period_end"))
    return SubscriptionState(
        subscription_id=obj["id"],
        customer=str(obj.get("customer") or ""),
        status=str(obj.get("status") or ""),
        period_end=period_end,
        cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
        ended_at=_ts(obj.get("ended_at")) or _ts(obj.get("canceled_at")),
        created=created,
        price_id=str(price.get("id") or ""),
        interval=str((price.get("recurring") or {}).get("interval") or ""),
        amount=int(price.get("unit_amount") or 0),
        currency=str(price.get("currency") or ""),
    )


def latest(states: list[SubscriptionState]) -> SubscriptionState | None:
    """The state that wins among ``states``: the one with the greatest order (the rule itself)."""
    return max(states, key=lambda state: state.order, default=None)


@dataclass(frozen=True)
class _Change:
    """One write to the user item, what the audit record says about it, and extra puts."""

    update: str
    condition: str
    names: dict[str, str]
    values: Item
    audit: Item
    extra: tuple[dict[str, Any], ...] = ()


class _Retry(Exception):
    """The user item changed between our read and our write: read again."""


class StripeEventProcessor:
    """Applies verified Stripe events to entitlements; one per process."""

    def __init__(
        self,
        client: DynamoDBClient,
        users_table: str,
        audit_table: str,
        billing_table: str,
        *,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._users = users_table
        self._audit = audit_table
        self._billing = billing_table
        self._clock = clock
        self._sleep = sleep

    def process(self, event: Mapping[str, Any]) -> Outcome:
        """Apply ``event`` once. Safe to call again with the same event, in any order.

        :raises DependencyUnavailableError: DynamoDB could not be written (Stripe retries).
        """
        event_id = event.get("id")
        event_type = event.get("type")
        if not isinstance(event_id, str) or not isinstance(event_type, str):
            return "ignored"
        if event_type not in HANDLED_EVENTS:
            return "ignored"
        for attempt in range(_ATTEMPTS):
            try:
                outcome = self._attempt(event, event_id, event_type)
            except _Retry:
                self._sleep(0.01 * (attempt + 1))
                continue
            log.info(
                json.dumps(
                    {
                        "event": "stripe_webhook",
                        "id": event_id,
                        "type": event_type,
                        "outcome": outcome,
                    }
                )
            )
            return outcome
        raise DependencyUnavailableError(f"event {event_id}: user item kept changing")

    # --- one attempt -----------------------------------------------------------------

    def _attempt(self, event: Mapping[str, Any], event_id: str, event_type: str) -> Outcome:
        if self._billing_item(f"event#{event_id}") is not None:
            return "duplicate"
        now = self._clock()
        if event_type in SUBSCRIPTION_EVENTS or event_type == "invoice.paid":
            return self._subscription(event, event_id, now)
        if event_type in CHECKOUT_EVENTS:
            return self._checkout(event, event_id, now)
        return self._refund(event, event_id, now)

    def _subscription(self, event: Mapping[str, Any], event_id: str, now: datetime) -> Outcome:
        state = subscription_state(event)
        if state is None:
            return self._mark_only(event_id, event, now, "ignored")
        obj = event["data"]["object"]
        user_id = self._user_of_customer(state.customer) or _metadata_user(obj)
        current = self._user(user_id) if user_id else None
        if current is None:
            return self._park(event, event_id, now, f"unknown customer {state.customer!r}")
        entitlement, stored_order = current
        if stored_order is not None and stored_order >= state.order:
            return self._mark_only(event_id, event, now, "stale")
        until = state.premium_until()
        before = entitlement.premium_active(now)
        after_entitlement = Entitlement(
            user_id=entitlement.user_id,
            premium=entitlement.premium,
            premium_until=entitlement.premium_until,
            version=entitlement.version,
            stripe_until=until,
        )
        after = after_entitlement.premium_active(now)
        names = {"#id": "user_id", "#so": "sub_order", "#ss": "stripe_sub", "#su": "stripe_until"}
        values: Item = {":order": s(state.order), ":sub": state.to_item()}
        sets = "#so = :order, #ss = :sub"
        if until is not None:
            values[":until"] = s(format_time(until))
            update = f"SET {sets}, #su = :until"
        else:
            update = f"SET {sets} REMOVE #su"
        if stored_order is None:
            condition = "attribute_exists(#id) AND attribute_not_exists(#so)"
        else:
            values[":seen"] = s(stored_order)
            condition = "attribute_exists(#id) AND #so = :seen"
        detail = f"subscription {state.subscription_id} {state.status}"
        if until is not None:
            detail += f" until {format_time(until)}"
        audit = self._audit_item(
            entitlement.user_id,
            now,
            event_id,
            action=_action(before, after),
            premium_before=before,
            premium_after=after,
            until_before=entitlement.stripe_until,
            until_after=until,
            detail=detail,
        )
        change = _Change(update, condition, names, values, audit)
        return self._write(event_id, event, now, change)

    def _checkout(self, event: Mapping[str, Any], event_id: str, now: datetime) -> Outcome:
        obj = event.get("data", {}).get("object", {})
        session_id = obj.get("id")
        metadata = obj.get("metadata") or {}
        user_id = _metadata_user(obj)
        if not isinstance(session_id, str):
            return self._mark_only(event_id, event, now, "ignored")
        current = self._user(user_id) if user_id else None
        if current is None:
            return self._park(event, event_id, now, f"unknown user {user_id!r}")
        entitlement, _ = current
        if self._billing_item(f"checkout#{session_id}") is not None:
            return self._mark_only(event_id, event, now, "stale")  # another event settled it
        result: Item = {
            "pk": s(f"checkout#{session_id}"),
            "user_id": s(entitlement.user_id),
            "state": s("complete"),
            "mode": s(str(obj.get("mode") or "")),
            "at": s(format_time(now)),
        }
        customer = obj.get("customer")
        if isinstance(customer, str) and customer:
            # The reverse link, for later events that name only the customer.
            result["customer"] = s(customer)
        result_put = {
            "Put": {
                "TableName": self._billing,
                "Item": result,
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        if obj.get("mode") == "subscription" or obj.get("payment_status") != "paid":
            # Premium itself comes from the subscription's own events; this only records
            # that checkout finished (an unpaid session grants nothing).
            if obj.get("payment_status") not in ("paid", "no_payment_required"):
                return self._mark_only(event_id, event, now, "ignored")
            return self._write_puts(event_id, event, now, [result_put])
        video_id = metadata.get("video_id")
        kind = metadata.get("kind")
        payment = obj.get("payment_intent") or session_id
        if not isinstance(video_id, str) or kind not in ("own", "rent") or not video_id:
            return self._park(event, event_id, now, "payment without video_id/kind metadata")
        try:
            window_hours = int(metadata.get("window_hours") or 0)
        except ValueError:
            window_hours = 0
        if kind == "rent" and window_hours <= 0:
            return self._park(event, event_id, now, "rental without a window")
        refund = self._billing_item(f"payment#{payment}")
        refunded_at = get_s(refund or {}, "refunded_at")
        existing = entitlement.paid.get(video_id)
        owned = existing is not None and existing.kind == "own" and existing.allows(now)
        if kind == "rent" and owned:  # owning beats renting: keep the purchase
            return self._write_puts(event_id, event, now, [result_put])
        entry: Item = {
            "kind": s(kind),
            "payment": s(str(payment)),
            "at": s(format_time(now)),
        }
        if kind == "rent":
            entry["window_seconds"] = n(window_hours * 3600)
            entry["start_by"] = s(format_time(now + RENTAL_START_WITHIN))
        if refunded_at:
            entry["ended"] = s(refunded_at)  # the refund arrived first: bought, and already over
        names = {"#id": "user_id", "#pd": "paid", "#v": video_id}
        values: Item = {":entry": {"M": entry}}
        if entitlement.paid or self._has_paid_map(entitlement.user_id):
            update = "SET #pd.#v = :entry"
            condition = "attribute_exists(#id) AND attribute_exists(#pd)"
        else:
            update = "SET #pd = :map"
            values = {":map": {"M": {video_id: {"M": entry}}}}
            names = {"#id": "user_id", "#pd": "paid"}
            condition = "attribute_exists(#id) AND attribute_not_exists(#pd)"
        audit = self._audit_item(
            entitlement.user_id,
            now,
            event_id,
            action="grant" if not refunded_at else "update",
            premium_before=entitlement.premium_active(now),
            premium_after=entitlement.premium_active(now),
            until_before=None,
            until_after=None,
            detail=(
                f"{'bought' if kind == 'own' else f'rented ({window_hours} h)'} video {video_id}"
                + (" (already refunded)" if refunded_at else "")
            ),
            video_id=video_id,
        )
        payment_put = {
            "Put": {
                "TableName": self._billing,
                "Item": {
                    "pk": s(f"payment#{payment}"),
                    "user_id": s(entitlement.user_id),
                    "video_id": s(video_id),
                    **({"refunded_at": s(refunded_at)} if refunded_at else {}),
                },
            }
        }
        extra = (result_put, payment_put, *self._customer_links([result_put]))
        change = _Change(update, condition, names, values, audit, extra)
        return self._write(event_id, event, now, change)

    def _refund(self, event: Mapping[str, Any], event_id: str, now: datetime) -> Outcome:
        obj = event.get("data", {}).get("object", {})
        payment = obj.get("payment_intent") or obj.get("id")
        if not isinstance(payment, str):
            return self._mark_only(event_id, event, now, "ignored")
        refunded_at = _ts(event.get("created")) or now
        known = self._billing_item(f"payment#{payment}")
        user_id = get_s(known or {}, "user_id")
        video_id = get_s(known or {}, "video_id")
        if known is not None and not user_id:
            return self._mark_only(event_id, event, now, "stale")  # refunded before, still unbought
        if not user_id or not video_id:
            # Refund before its purchase event: remember it, the purchase lands already ended.
            put = {
                "Put": {
                    "TableName": self._billing,
                    "Item": {"pk": s(f"payment#{payment}"), "refunded_at": s(format_time(now))},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            return self._write_puts(event_id, event, now, [put])
        current = self._user(user_id)
        if current is None:
            return self._park(event, event_id, now, f"refund for unknown user {user_id!r}")
        entitlement, _ = current
        paid = entitlement.paid.get(video_id)
        if paid is None or paid.payment != payment or paid.ended is not None:
            return self._mark_only(event_id, event, now, "stale")
        names = {"#id": "user_id", "#pd": "paid", "#v": video_id, "#p": "payment", "#e": "ended"}
        values: Item = {":pay": s(payment), ":ended": s(format_time(refunded_at))}
        update = "SET #pd.#v.#e = :ended"
        condition = "attribute_exists(#id) AND #pd.#v.#p = :pay AND attribute_not_exists(#pd.#v.#e)"
        audit = self._audit_item(
            user_id,
            now,
            event_id,
            action="revoke",
            premium_before=entitlement.premium_active(now),
            premium_after=entitlement.premium_active(now),
            until_before=None,
            until_after=None,
            detail=f"refund: {paid.kind} of video {video_id} ended",
            video_id=video_id,
        )
        return self._write(event_id, event, now, _Change(update, condition, names, values, audit))

    # --- reads -----------------------------------------------------------------------

    def _billing_item(self, pk: str) -> Item | None:
        with unavailable_on_errors():
            response = self._client.get_item(
                TableName=self._billing, Key={"pk": s(pk)}, ConsistentRead=True
            )
        return response.get("Item") or None

    def _user_of_customer(self, customer: str) -> str | None:
        if not customer:
            return None
        return get_s(self._billing_item(f"customer#{customer}") or {}, "user_id")

    def _user(self, user_id: str) -> tuple[Entitlement, str | None] | None:
        try:
            validate_user_id(user_id)
        except Exception:
            return None
        with unavailable_on_errors():
            item = self._client.get_item(
                TableName=self._users, Key={"user_id": s(user_id)}, ConsistentRead=True
            ).get("Item")
        if not item:
            return None
        return entitlement_from_item(user_id, item), get_s(item, "sub_order")

    def _has_paid_map(self, user_id: str) -> bool:
        with unavailable_on_errors():
            item = self._client.get_item(
                TableName=self._users,
                Key={"user_id": s(user_id)},
                ConsistentRead=True,
                ProjectionExpression="#pd",
                ExpressionAttributeNames={"#pd": "paid"},
            ).get("Item")
        return bool(item and "paid" in item)

    # --- writes ----------------------------------------------------------------------

    def _marker(
        self, event_id: str, event: Mapping[str, Any], now: datetime, outcome: str
    ) -> dict[str, Any]:
        expires = int((now + timedelta(days=EVENT_MARKER_DAYS)).timestamp())
        return {
            "Put": {
                "TableName": self._billing,
                "Item": {
                    "pk": s(f"event#{event_id}"),
                    "type": s(str(event.get("type"))),
                    "outcome": s(outcome),
                    "at": s(format_time(now)),
                    "expires_at": n(expires),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _audit_item(
        self,
        user_id: str,
        now: datetime,
        event_id: str,
        *,
        action: str,
        premium_before: bool,
        premium_after: bool,
        until_before: datetime | None,
        until_after: datetime | None,
        detail: str,
        video_id: str | None = None,
    ) -> Item:
        item: Item = {
            "user_id": s(user_id),
            "event_id": s(f"{now.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}#{uuid.uuid4().hex}"),
            "entity": s("audit"),
            "actor": s(f"stripe:{event_id}"),
            "source": s("stripe"),
            "action": s(action),
            "premium_before": b(premium_before),
            "premium_after": b(premium_after),
            "version": n(0),
            "at": s(format_time(now)),
            "detail": s(detail),
        }
        if until_before is not None:
            item["until_before"] = s(format_time(until_before))
        if until_after is not None:
            item["until_after"] = s(format_time(until_after))
        if video_id:
            item["video_id"] = s(video_id)
        return item

    def _write(
        self, event_id: str, event: Mapping[str, Any], now: datetime, change: _Change
    ) -> Outcome:
        items: list[dict[str, Any]] = [
            self._marker(event_id, event, now, "applied"),
            {
                "Update": {
                    "TableName": self._users,
                    "Key": {"user_id": change.audit["user_id"]},
                    "UpdateExpression": change.update,
                    "ConditionExpression": change.condition,
                    "ExpressionAttributeNames": change.names,
                    "ExpressionAttributeValues": change.values,
                }
            },
            {
                "Put": {
                    "TableName": self._audit,
                    "Item": change.audit,
                    "ConditionExpression": "attribute_not_exists(event_id)",
                }
            },
            *change.extra,
        ]
        return self._transact(items, "applied")

    def _write_puts(
        self,
        event_id: str,
        event: Mapping[str, Any],
        now: datetime,
        puts: list[dict[str, Any]],
    ) -> Outcome:
        return self._transact(
            [self._marker(event_id, event, now, "applied"), *puts, *self._customer_links(puts)],
            "applied",
        )

    def _customer_links(self, puts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``customer#<id>`` -> user for a completed checkout that names its customer."""
        links = []
        for put in puts:
            item = put["Put"]["Item"]
            if "customer" in item and str(item["pk"]["S"]).startswith("checkout#"):
                links.append(
                    {
                        "Put": {
                            "TableName": self._billing,
                            "Item": {
                                "pk": s(f"customer#{item['customer']['S']}"),
                                "user_id": item["user_id"],
                            },
                        }
                    }
                )
        return links

    def _mark_only(
        self, event_id: str, event: Mapping[str, Any], now: datetime, outcome: Outcome
    ) -> Outcome:
        return self._transact([self._marker(event_id, event, now, outcome)], outcome)

    def _park(self, event: Mapping[str, Any], event_id: str, now: datetime, reason: str) -> Outcome:
        payload = json.dumps(event, separators=(",", ":"), default=str)[:_PAYLOAD_MAX]
        obj = event.get("data", {}).get("object", {})
        created = event.get("created") if isinstance(event.get("created"), int) else 0
        park = {
            "Put": {
                "TableName": self._billing,
                "Item": {
                    "pk": s(f"parked#{event_id}"),
                    "entity": s("parked"),
                    "sort_key": s(f"{created:012d}#{event_id}"),
                    "event_id": s(event_id),
                    "type": s(str(event.get("type"))),
                    "customer": s(str(obj.get("customer") or "")),
                    "reason": s(reason),
                    "at": s(format_time(now)),
                    "payload": s(payload),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        log.warning(
            json.dumps({"event": "stripe_webhook_parked", "id": event_id, "reason": reason})
        )
        return self._transact([self._marker(event_id, event, now, "parked"), park], "parked")

    def _transact(self, items: list[dict[str, Any]], outcome: Outcome) -> Outcome:
        try:
            with unavailable_on_errors():
                self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = [
                str(reason.get("Code", "None"))
                for reason in exc.response.get("CancellationReasons", [])
            ]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return "duplicate"  # the marker exists: this event was applied already
            if any(r in ("ThrottlingError", "ProvisionedThroughputExceeded") for r in reasons):
                raise DependencyUnavailableError("DynamoDB is throttling webhook writes") from exc
            raise _Retry from exc
        return outcome


def _metadata_user(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    user_id = metadata.get("user_id") or obj.get("client_reference_id") or ""
    return user_id if isinstance(user_id, str) else ""


def _action(before: bool, after: bool) -> str:
    if after and not before:
        return "grant"
    if before and not after:
        return "revoke"
    return "update"


class RentalClock:
    """Starts a rental's window at its first play: one conditional UpdateItem, once."""

    def __init__(self, client: DynamoDBClient, users_table: str) -> None:
        self._client = client
        self._users = users_table

    def start(self, user_id: str, video_id: str, payment: str, now: datetime) -> None:
        """Record ``now`` as the start of the rental paid by ``payment`` unless it started already.

        :raises DependencyUnavailableError: DynamoDB could not be written (no grant).
        """
        try:
            with unavailable_on_errors():
                self._client.update_item(
                    TableName=self._users,
                    Key={"user_id": s(user_id)},
                    UpdateExpression="SET #pd.#v.#st = :now",
                    ConditionExpression="#pd.#v.#p = :pay AND #pd.#v.#k = :rent"
                    " AND attribute_not_exists(#pd.#v.#st)",
                    ExpressionAttributeNames={
                        "#pd": "paid",
                        "#v": video_id,
                        "#st": "started",
                        "#p": "payment",
                        "#k": "kind",
                    },
                    ExpressionAttributeValues={
                        ":now": s(format_time(now)),
                        ":pay": s(payment),
                        ":rent": s("rent"),
                    },
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            # A concurrent first play started it: the earlier start stands.
