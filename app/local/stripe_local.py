"""``vidgate dev``'s selling setup: the Stripe secrets, the demo offers, the stand-in server.

The two secrets the app reads in AWS (the Stripe secret key and the webhook
signing secret) are created in the emulator's Secrets Manager on first run and
reused after; the premium plan points at the stand-in's demo prices and each
premium demo video can be bought or rented (48 h). Idempotent.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from app.billing import BillingStore, PlanOffer, VideoOffer
from app.local.stripe_standin import StripeStandIn, demo_prices
from app.local.webserver import ServerHandle, serve_wsgi

# Secrets Manager names (not secrets).
KEY_SECRET = "vidgate-local/stripe-secret-key"  # noqa: S105
WEBHOOK_SECRET = "vidgate-local/stripe-webhook-secret"  # noqa: S105
DEMO_OFFERS = {
    "premium-aurora": VideoOffer("premium-aurora", "usd", 499, 199, 48),
    "premium-mandelbrot": VideoOffer("premium-mandelbrot", "usd", 399, 149, 48),
}


def _ensure_secret(client: Any, name: str, make: str) -> str:
    try:
        return str(client.get_secret_value(SecretId=name)["SecretString"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
    client.create_secret(Name=name, SecretString=make)
    return make


@dataclass
class LocalStripe:
    standin: StripeStandIn
    handle: ServerHandle
    url: str
    key_secret_id: str
    webhook_secret_id: str

    def stop(self) -> None:
        self.standin.stop_delivery()
        self.handle.stop()

    def document(self) -> dict[str, Any]:
        """The ``stripe`` key of ``dev-stack.json``."""
        return {
            "api_base": self.url,
            "webhook_url": self.standin.webhook_url,
            "key_secret_id": self.key_secret_id,
            "webhook_secret_id": self.webhook_secret_id,
            "test_hooks": f"{self.url}/_test/",
        }


def start_local_stripe(
    secrets_client: Any, dynamodb: Any, tables: dict[str, str], *, site_url: str, port: int = 0
) -> LocalStripe:
    """Secrets, offers, and the stand-in serving on ``port`` (0: any free one)."""
    api_key = _ensure_secret(secrets_client, KEY_SECRET, f"sk_test_{secrets.token_hex(24)}")
    signing = _ensure_secret(secrets_client, WEBHOOK_SECRET, f"whsec_{secrets.token_hex(24)}")
    prices = demo_prices()
    billing = BillingStore(dynamodb, tables["billing"], tables["users"])
    billing.put_plan(
        PlanOffer(
            currency="usd",
            monthly_cents=prices["price_localmonthly"]["unit_amount"],
            monthly_price_id="price_localmonthly",
            yearly_cents=prices["price_localyearly"]["unit_amount"],
            yearly_price_id="price_localyearly",
        )
    )
    for offer in DEMO_OFFERS.values():
        if billing.video_offer(offer.video_id) is None:  # an admin's change survives a restart
            billing.put_video_offer(offer)
    standin = StripeStandIn(
        api_key=api_key,
        webhook_secret=signing,
        webhook_url=f"{site_url.rstrip('/')}/webhooks/stripe",
        public_url="http://127.0.0.1:0",
        prices=prices,
    )
    handle = serve_wsgi(standin, port, name="stripe")
    url = f"http://127.0.0.1:{handle.port}"
    standin.public_url = url
    standin.start_delivery()
    return LocalStripe(standin, handle, url, KEY_SECRET, WEBHOOK_SECRET)
