"""Selling's configuration: the operator's policy texts, the Stripe variables, offer values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.billing import PlanOffer, VideoOffer
from app.config import Need, load_settings
from app.errors import BadRequestError, ConfigurationError
from app.web.policy import PolicyTexts, load_policy

BASE = {"AWS_REGION": "us-east-1"}


def test_the_policy_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"contact_email": "help@shop.example", "terms": "One.\n\nTwo."}))

    texts = load_policy(str(path))

    assert texts.contact_email == "help@shop.example"
    assert texts.paragraphs("terms") == ["One.", "Two."]
    assert texts.privacy == PolicyTexts().privacy


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"terms": 3}', '{"unknown_key": "x"}'])
def test_a_bad_policy_file_is_a_configuration_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "policy.json"
    path.write_text(content)

    with pytest.raises(ConfigurationError):
        load_policy(str(path))


def test_a_missing_policy_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        load_policy(str(tmp_path / "absent.json"))


def test_the_webhook_needs_its_secret_and_the_billing_table() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(BASE, {Need.STRIPE_WEBHOOK})
    assert "VIDGATE_STRIPE_WEBHOOK_SECRET" in str(caught.value)
    assert "VIDGATE_BILLING_TABLE" in str(caught.value)


def test_selling_in_the_web_app_is_off_or_complete() -> None:
    assert load_settings(BASE, {Need.BILLING, Need.STRIPE_API}).billing_table == ""
    with pytest.raises(ConfigurationError):
        load_settings({**BASE, "VIDGATE_BILLING_TABLE": "billing"}, {Need.STRIPE_API})
    settings = load_settings(
        {
            **BASE,
            "VIDGATE_BILLING_TABLE": "billing",
            "VIDGATE_STRIPE_KEY_SECRET": "vidgate/stripe",
            "VIDGATE_STRIPE_API_BASE": "http://127.0.0.1:9999/",
        },
        {Need.BILLING, Need.STRIPE_API},
    )
    assert settings.stripe_api_base == "http://127.0.0.1:9999"
    with pytest.raises(ConfigurationError):
        load_settings({**BASE, "VIDGATE_STRIPE_API_BASE": "ftp://x"}, {Need.STRIPE_API})


@pytest.mark.parametrize(
    "make",
    [
        lambda: PlanOffer("usd", 49, "price_a", 9000, "price_b"),
        lambda: PlanOffer("USD", 900, "price_a", 9000, "price_b"),
        lambda: PlanOffer("usd", 900, "prod_a", 9000, "price_b"),
        lambda: VideoOffer("v", "usd", None, 199, 0),
        lambda: VideoOffer("v", "usd", True, None, 48),
    ],
)
def test_offers_refuse_what_stripe_would(make: object) -> None:
    with pytest.raises(BadRequestError):
        make()  # type: ignore[operator]


def test_an_offer_without_a_rental_price_cannot_be_rented() -> None:
    offer = VideoOffer("v", "usd", 499, None, 48)

    assert offer.cents("own") == 499
    with pytest.raises(BadRequestError):
        offer.cents("rent")
