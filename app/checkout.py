"""Starting payments in Stripe: customers, Checkout Sessions and customer-portal sessions.

:class:`Checkout` asks Stripe (through a built ``stripe.StripeClient``: the real
API in AWS, the local stand-in under ``vidgate dev``) for a hosted page and
returns its URL. It grants nothing: only verified webhooks do
(:mod:`app.purchases`). Each user gets one Stripe customer, created on first
need and linked both ways (:meth:`app.billing.BillingStore.link_customer`).
Checkout metadata carries the user, the video and the kind so the webhook
knows what was paid for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.errors import BadRequestError, DependencyUnavailableError, NotFoundError

if TYPE_CHECKING:
    from app.billing import BillingStore

log = logging.getLogger("vidgate.checkout")


class OfferNotFoundError(NotFoundError):
    """Nothing is for sale under this name (no plan configured, or no price for this video)."""


@dataclass(frozen=True)
class Buyer:
    user_id: str
    email: str | None


class Checkout:
    """Hosted Stripe pages for one buyer; one per process."""

    def __init__(self, stripe_client: Any, billing: BillingStore, *, site_url: str) -> None:
        self._stripe = stripe_client
        self._billing = billing
        self._site = site_url.rstrip("/")

    def _call(self, what: str, call: Any, params: dict[str, Any]) -> Any:
        import stripe

        try:
            return call(params=params)
        except stripe.StripeError as exc:
            # Details to the log; the viewer gets "try again later" (fail closed, nothing granted).
            log.warning("stripe %s failed: %s", what, exc)
            raise DependencyUnavailableError(f"Stripe could not {what}") from exc

    def customer(self, buyer: Buyer) -> str:
        """The buyer's Stripe customer id, created and stored on first use."""
        existing = self._billing.customer_of(buyer.user_id)
        if existing:
            return existing
        params: dict[str, Any] = {"metadata": {"user_id": buyer.user_id}}
        if buyer.email:
            params["email"] = buyer.email
        created = self._call("create a customer", self._stripe.v1.customers.create, params)
        return self._billing.link_customer(buyer.user_id, created.id)

    def subscribe(self, buyer: Buyer, interval: str) -> str:
        """The URL of a Checkout Session for the premium plan (``month`` or ``year``)."""
        plan = self._billing.plan()
        if plan is None:
            raise OfferNotFoundError("no premium plan is for sale")
        price_id = plan.price_id(interval)
        customer = self.customer(buyer)
        metadata = {"user_id": buyer.user_id, "kind": "premium", "interval": interval}
        session = self._call(
            "start a checkout",
            self._stripe.v1.checkout.sessions.create,
            {
                "mode": "subscription",
                "customer": customer,
                "client_reference_id": buyer.user_id,
                "line_items": [{"price": price_id, "quantity": 1}],
                "metadata": metadata,
                "subscription_data": {"metadata": metadata},
                "success_url": self._success_url(),
                "cancel_url": f"{self._site}/pricing?checkout=canceled",
            },
        )
        return str(session.url)

    def buy(self, buyer: Buyer, video_id: str, title: str, kind: str) -> str:
        """The URL of a one-off Checkout Session: ``own`` the video or ``rent`` it."""
        if kind not in ("own", "rent"):
            raise BadRequestError("kind must be own or rent")
        offer = self._billing.video_offer(video_id)
        if offer is None:
            raise OfferNotFoundError(f"video {video_id} is not for sale")
        amount = offer.cents(kind)
        customer = self.customer(buyer)
        metadata = {"user_id": buyer.user_id, "video_id": video_id, "kind": kind}
        if kind == "rent":
            metadata["window_hours"] = str(offer.rent_hours)
        label = f"Rent: {title} ({offer.rent_hours} h)" if kind == "rent" else f"Buy: {title}"
        session = self._call(
            "start a checkout",
            self._stripe.v1.checkout.sessions.create,
            {
                "mode": "payment",
                "customer": customer,
                "client_reference_id": buyer.user_id,
                "line_items": [
                    {
                        "price_data": {
                            "currency": offer.currency,
                            "unit_amount": amount,
                            "product_data": {"name": label[:250]},
                        },
                        "quantity": 1,
                    }
                ],
                "metadata": metadata,
                "payment_intent_data": {"metadata": metadata},
                "success_url": self._success_url(),
                "cancel_url": f"{self._site}/watch/{video_id}?checkout=canceled",
            },
        )
        return str(session.url)

    def portal(self, buyer: Buyer) -> str:
        """The URL of the customer portal (cancel, payment methods, invoices)."""
        customer = self._billing.customer_of(buyer.user_id)
        if not customer:
            raise OfferNotFoundError("you have nothing billed yet")
        session = self._call(
            "open the billing portal",
            self._stripe.v1.billing_portal.sessions.create,
            {"customer": customer, "return_url": f"{self._site}/account"},
        )
        return str(session.url)

    def _success_url(self) -> str:
        # Stripe replaces {CHECKOUT_SESSION_ID}; the page only polls, it never grants.
        return f"{self._site}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
