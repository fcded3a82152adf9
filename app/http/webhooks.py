"""The Stripe webhook endpoint: ``POST /webhooks/stripe``.

The signature is checked first, over the raw body as received, with the
official library's ``stripe.Webhook.construct_event`` (HMAC-SHA256 of
``<t>.<body>`` with the endpoint's signing secret, timestamps older than its
default 300 s tolerance refused: replays); a bad signature, a stale timestamp
or a tampered body is a 400 and nothing is written (docs/selling.md#webhooks).
Only then is the event applied (:class:`app.purchases.StripeEventProcessor`);
a DynamoDB failure is a 503, so Stripe delivers the event again.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from app.config import Need, load_settings
from app.errors import BadRequestError
from app.http.router import Request, Response, Router, json_response
from app.services import Services

log = logging.getLogger("vidgate.http.webhooks")

NEEDS = frozenset({Need.TABLES, Need.BILLING, Need.STRIPE_WEBHOOK})
MAX_WEBHOOK_BYTES = 512 * 1024


class SignatureError(BadRequestError):
    """The Stripe-Signature header is missing or does not match the body and secret."""

    code = "bad_signature"


class StripeWebhookApi:
    """The route table of the webhook endpoint over one :class:`Services`."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.router = Router(max_body_bytes=MAX_WEBHOOK_BYTES)
        self.router.add("POST", "/webhooks/stripe", self.stripe)

    def __call__(self, event: object, context: object = None) -> dict[str, Any]:
        return self.router.handle(event)

    def stripe(self, request: Request) -> Response:
        import stripe

        signature = request.header("stripe-signature")
        if not signature:
            raise SignatureError("no Stripe-Signature header")
        secret = self.services.stripe_webhook_secret
        try:
            event = stripe.Webhook.construct_event(request.body, signature, secret)
        except stripe.SignatureVerificationError as exc:
            raise SignatureError("the signature does not match") from exc
        except ValueError as exc:  # the library's answer to a body that is not JSON
            raise BadRequestError("the body is not a Stripe event") from exc
        outcome = self.services.stripe_events.process(event.to_dict())
        return json_response({"received": True, "outcome": outcome})


def make_handler(services: Services) -> StripeWebhookApi:
    return StripeWebhookApi(services)


def from_environment() -> StripeWebhookApi:
    """The process-wide handler of the webhook Lambda function."""
    return make_handler(Services(load_settings(os.environ, NEEDS)))
