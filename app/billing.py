"""What is for sale and vidgate's own Stripe bookkeeping, in the billing table.

Items by key (docs/selling.md#data): ``plan`` (premium prices: monthly and
yearly, each with its Stripe price id), ``offer#<video id>`` (a video's
purchase price and rental price and window), ``customer#<cus id>`` (the Stripe
customer -> user link; the user item holds ``stripe_customer``),
``checkout#<cs id>`` (written by the webhook when a checkout completed: what
the success page polls), ``event#<evt id>`` (processed webhooks, TTL) and
``parked#<evt id>`` (webhooks nobody could be found for). Offers are set by
admins; nothing here decides access.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from app.dynamo import Item, error_code, get_n, get_s, get_time, n, s, unavailable_on_errors
from app.errors import BadRequestError
from app.tables import BILLING_PARKED_INDEX

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_CURRENCY = re.compile(r"^[a-z]{3}$")
_PRICE_ID = re.compile(r"^price_[A-Za-z0-9]{1,64}$")
MAX_AMOUNT = 99_999_999  # Stripe's maximum amount in the smallest currency unit
MAX_RENTAL_HOURS = 24 * 90


def _amount(value: object, what: str, *, optional: bool = False) -> int | None:
    if value in (None, "") and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 50 <= value <= MAX_AMOUNT:
        raise BadRequestError(f"{what} must be a whole number of cents from 50 to {MAX_AMOUNT}")
    return value


def _currency(value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY.match(value):
        raise BadRequestError("currency must be a three-letter ISO code in lower case, e.g. usd")
    return value


def format_amount(cents: int, currency: str) -> str:
    """``12.00 USD``: an amount for people."""
    return f"{cents // 100}.{cents % 100:02d} {currency.upper()}"


@dataclass(frozen=True)
class PlanOffer:
    """The premium plan: a monthly and a yearly price, each a Stripe recurring price."""

    currency: str
    monthly_cents: int
    monthly_price_id: str
    yearly_cents: int
    yearly_price_id: str

    def __post_init__(self) -> None:
        _currency(self.currency)
        _amount(self.monthly_cents, "monthly price")
        _amount(self.yearly_cents, "yearly price")
        for price_id in (self.monthly_price_id, self.yearly_price_id):
            if not isinstance(price_id, str) or not _PRICE_ID.match(price_id):
                raise BadRequestError(f"a Stripe price id looks like price_…, got {price_id!r}")

    def price_id(self, interval: str) -> str:
        if interval == "month":
            return self.monthly_price_id
        if interval == "year":
            return self.yearly_price_id
        raise BadRequestError("interval must be month or year")

    def label(self, interval: str) -> str:
        cents = self.monthly_cents if interval == "month" else self.yearly_cents
        return f"{format_amount(cents, self.currency)} per {interval}"


@dataclass(frozen=True)
class VideoOffer:
    """One video's prices: buy it (own it) and/or rent it for ``rent_hours`` from the first play."""

    video_id: str
    currency: str
    buy_cents: int | None
    rent_cents: int | None
    rent_hours: int

    def __post_init__(self) -> None:
        _currency(self.currency)
        _amount(self.buy_cents, "purchase price", optional=True)
        _amount(self.rent_cents, "rental price", optional=True)
        if self.rent_cents is not None and not (
            isinstance(self.rent_hours, int) and 1 <= self.rent_hours <= MAX_RENTAL_HOURS
        ):
            raise BadRequestError(f"rental window must be 1 to {MAX_RENTAL_HOURS} hours")

    def cents(self, kind: str) -> int:
        amount = self.buy_cents if kind == "own" else self.rent_cents if kind == "rent" else None
        if amount is None:
            raise BadRequestError(f"this video cannot be {'bought' if kind == 'own' else 'rented'}")
        return amount


@dataclass(frozen=True)
class ParkedEvent:
    event_id: str
    type: str
    customer: str
    reason: str
    at: datetime | None
    payload: dict[str, Any]


class BillingStore:
    """Offers, customer links, checkout results and parked webhooks."""

    def __init__(self, client: DynamoDBClient, billing_table: str, users_table: str) -> None:
        self._client = client
        self._table = billing_table
        self._users = users_table

    def _get(self, pk: str) -> Item | None:
        with unavailable_on_errors():
            return self._client.get_item(
                TableName=self._table, Key={"pk": s(pk)}, ConsistentRead=True
            ).get("Item")

    # --- offers ----------------------------------------------------------------------

    def plan(self) -> PlanOffer | None:
        item = self._get("plan")
        if not item:
            return None
        return PlanOffer(
            currency=get_s(item, "currency") or "usd",
            monthly_cents=get_n(item, "monthly_cents"),
            monthly_price_id=get_s(item, "monthly_price_id") or "",
            yearly_cents=get_n(item, "yearly_cents"),
            yearly_price_id=get_s(item, "yearly_price_id") or "",
        )

    def put_plan(self, plan: PlanOffer) -> None:
        with unavailable_on_errors():
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": s("plan"),
                    "currency": s(plan.currency),
                    "monthly_cents": n(plan.monthly_cents),
                    "monthly_price_id": s(plan.monthly_price_id),
                    "yearly_cents": n(plan.yearly_cents),
                    "yearly_price_id": s(plan.yearly_price_id),
                },
            )

    def video_offer(self, video_id: str) -> VideoOffer | None:
        item = self._get(f"offer#{video_id}")
        if not item:
            return None
        return VideoOffer(
            video_id=video_id,
            currency=get_s(item, "currency") or "usd",
            buy_cents=get_n(item, "buy_cents") if "buy_cents" in item else None,
            rent_cents=get_n(item, "rent_cents") if "rent_cents" in item else None,
            rent_hours=get_n(item, "rent_hours"),
        )

    def put_video_offer(self, offer: VideoOffer) -> None:
        item: Item = {
            "pk": s(f"offer#{offer.video_id}"),
            "currency": s(offer.currency),
            "rent_hours": n(offer.rent_hours),
        }
        if offer.buy_cents is not None:
            item["buy_cents"] = n(offer.buy_cents)
        if offer.rent_cents is not None:
            item["rent_cents"] = n(offer.rent_cents)
        with unavailable_on_errors():
            if offer.buy_cents is None and offer.rent_cents is None:
                self._client.delete_item(TableName=self._table, Key={"pk": item["pk"]})
            else:
                self._client.put_item(TableName=self._table, Item=item)

    # --- customers -------------------------------------------------------------------

    def customer_of(self, user_id: str) -> str | None:
        with unavailable_on_errors():
            item = self._client.get_item(
                TableName=self._users,
                Key={"user_id": s(user_id)},
                ConsistentRead=True,
                ProjectionExpression="stripe_customer",
            ).get("Item")
        return get_s(item or {}, "stripe_customer")

    def link_customer(self, user_id: str, customer: str) -> str:
        """Link ``customer`` to ``user_id`` unless one is linked already; the id kept.

        Only the user item is written here; the reverse link (``customer#<id>``)
        is the webhook's to write, when the checkout completes.
        """
        try:
            with unavailable_on_errors():
                self._client.update_item(
                    TableName=self._users,
                    Key={"user_id": s(user_id)},
                    UpdateExpression="SET stripe_customer = :c",
                    ConditionExpression="attribute_exists(user_id)"
                    " AND attribute_not_exists(stripe_customer)",
                    ExpressionAttributeValues={":c": s(customer)},
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            kept = self.customer_of(user_id)
            if kept is None:
                raise
            return kept
        return customer

    # --- checkout results and parked webhooks ------------------------------------------

    def checkout_state(self, session_id: str, user_id: str) -> str:
        """``complete`` once the webhook recorded this user's checkout, else ``processing``."""
        item = self._get(f"checkout#{session_id}")
        if item and get_s(item, "user_id") == user_id:
            return "complete"
        return "processing"

    def parked(self, limit: int = 100) -> list[ParkedEvent]:
        with unavailable_on_errors():
            items = self._client.query(
                TableName=self._table,
                IndexName=BILLING_PARKED_INDEX,
                KeyConditionExpression="#e = :e",
                ExpressionAttributeNames={"#e": "entity"},
                ExpressionAttributeValues={":e": s("parked")},
                ScanIndexForward=False,
                Limit=limit,
            ).get("Items", [])
        return [_parked(item) for item in items]


def _parked(item: Mapping[str, Any]) -> ParkedEvent:
    try:
        payload = json.loads(get_s(item, "payload") or "{}")
    except ValueError:
        payload = {}
    return ParkedEvent(
        event_id=get_s(item, "event_id") or "",
        type=get_s(item, "type") or "",
        customer=get_s(item, "customer") or "",
        reason=get_s(item, "reason") or "",
        at=get_time(item, "at"),
        payload=payload if isinstance(payload, dict) else {},
    )
