"""The admin billing pages of the running local stack (``vidgate dev`` as a child process).

carol (group ``admin``) sets the premium plan's prices on ``/admin/billing``
and a video's purchase and rental prices on its admin page; bob (a free
viewer) sees them on the upsell page. Bad amounts get a sentence on the form,
bob gets 403 everywhere, and parked webhooks are listed. The stack is shared
with other modules: every test puts back the plan and the offers it changed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
import requests
from flask import Flask

from app.billing import BillingStore, VideoOffer
from app.config import Need, load_settings
from app.ops.admin_cli import OperatorSession, read_env_file
from app.services import Services
from app.web.admin_billing_views import blueprint as billing_blueprint
from tests.integration.test_admin_web import browser_for, csrf_from, form_fields, open_local
from tests.stackproc import RunningStack

pytestmark = pytest.mark.integration

VIDEO = "premium-aurora"
TIMEOUT = 10


class Billing:
    """The stack, carol's and bob's browsers' factory, and the billing store over ``dev.env``."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.local = open_local(stack)
        env = read_env_file(stack.state_dir / "dev.env")
        settings = load_settings(env, {Need.TABLES, Need.BILLING})
        self.services = Services(settings, session=OperatorSession(env))
        self.store: BillingStore = self.services.billing
        self.table = settings.billing_table

    @property
    def web(self) -> str:
        return self.stack.web_url

    def browser(self, username: str) -> requests.Session:
        return browser_for(self.local, username)


@pytest.fixture(scope="module")
def billing(dev_stack: RunningStack) -> Billing:
    return Billing(dev_stack)


@pytest.fixture
def restored(billing: Billing) -> Iterator[Billing]:
    """The plan and the video's offer as they were before the test."""
    plan, offer = billing.store.plan(), billing.store.video_offer(VIDEO)
    yield billing
    if plan is not None:
        billing.store.put_plan(plan)
    if offer is not None:
        billing.store.put_video_offer(offer)
    else:
        billing.store.put_video_offer(VideoOffer(VIDEO, "usd", None, None, 48))  # none: deleted


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _error(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</p>', html, re.S)
    assert found, f"no #{element_id} on the page"
    return _text(found.group(1))


def _post(browser: requests.Session, url: str, page: str, form_id: str, **values: str) -> Any:
    fields = form_fields(page, form_id)
    return browser.post(url, data={**fields, **values}, allow_redirects=False, timeout=TIMEOUT)


# --------------------------------------------------------------------------- admins set prices


def test_carol_sets_the_plan_and_a_rental_and_bob_sees_them_on_the_upsell_page(
    restored: Billing,
) -> None:
    billing = restored
    carol = billing.browser("carol")
    page = carol.get(f"{billing.web}/admin/billing", timeout=TIMEOUT)
    assert page.status_code == 200
    assert 'aria-current="page">Billing</a>' in page.text

    saved = _post(
        carol,
        f"{billing.web}/admin/billing/plan",
        page.text,
        "plan-form",
        currency="usd",
        monthly_cents="1234",
        monthly_price_id="price_adminmonthly",
        yearly_cents="12340",
        yearly_price_id="price_adminyearly",
    )
    assert saved.status_code == 302, saved.text[:300]
    assert saved.headers["Location"] == "/admin/billing"
    plan = billing.store.plan()
    assert plan is not None
    assert (plan.monthly_cents, plan.monthly_price_id) == (1234, "price_adminmonthly")
    assert (plan.yearly_cents, plan.yearly_price_id) == (12340, "price_adminyearly")
    shown = carol.get(f"{billing.web}/admin/billing", timeout=TIMEOUT).text
    assert "12.34 USD per month" in _text(shown)

    video_page = carol.get(f"{billing.web}/admin/videos/{VIDEO}", timeout=TIMEOUT).text
    saved = _post(
        carol,
        f"{billing.web}/admin/videos/{VIDEO}/offer",
        video_page,
        "offer-form",
        currency="usd",
        buy_cents="777",
        rent_cents="333",
        rent_hours="72",
    )
    assert saved.status_code == 302, saved.text[:300]
    assert saved.headers["Location"] == f"/admin/videos/{VIDEO}"
    offer = billing.store.video_offer(VIDEO)
    assert offer is not None
    assert (offer.buy_cents, offer.rent_cents, offer.rent_hours) == (777, 333, 72)
    assert "rent for 3.33 USD, 72 h from the first play" in _text(
        carol.get(f"{billing.web}/admin/videos/{VIDEO}", timeout=TIMEOUT).text
    )

    upsell = billing.browser("bob").get(f"{billing.web}/watch/{VIDEO}", timeout=TIMEOUT)
    assert upsell.status_code == 200
    words = _text(upsell.text)
    assert "12.34 USD per month" in words and "123.40 USD per year" in words
    assert "Buy this video: 7.77 USD" in words
    assert "Rent for 72 h: 3.33 USD" in words


@pytest.mark.parametrize(
    ("field", "value", "sentence"),
    [
        ("monthly_cents", "9.99", "Write the monthly price as a whole number of cents"),
        ("monthly_cents", "10", "Monthly price must be a whole number of cents from 50"),
        ("yearly_cents", "", "Write the yearly price as a whole number of cents"),
        ("monthly_price_id", "prod_123", "A Stripe price id looks like price_"),
        ("currency", "dollars", "Currency must be a three-letter ISO code"),
    ],
)
def test_a_bad_plan_value_gets_a_sentence_and_changes_nothing(
    restored: Billing, field: str, value: str, sentence: str
) -> None:
    billing = restored
    before = billing.store.plan()
    carol = billing.browser("carol")
    page = carol.get(f"{billing.web}/admin/billing", timeout=TIMEOUT).text

    answer = _post(carol, f"{billing.web}/admin/billing/plan", page, "plan-form", **{field: value})

    assert answer.status_code == 400
    assert _error(answer.text, "form-error").startswith(sentence)
    assert form_fields(answer.text, "plan-form")[field] == value  # what was typed stays
    assert billing.store.plan() == before


@pytest.mark.parametrize(
    ("values", "sentence"),
    [
        ({"buy_cents": "abc"}, "Write the purchase price as a whole number of cents"),
        ({"rent_cents": "20"}, "Rental price must be a whole number of cents from 50"),
        ({"rent_cents": "300", "rent_hours": "0"}, "Rental window must be 1 to 2160 hours"),
        ({"buy_cents": "", "rent_cents": ""}, "Give a purchase price, a rental price or both"),
    ],
)
def test_a_bad_video_price_gets_a_sentence_on_the_video_page_and_changes_nothing(
    restored: Billing, values: dict[str, str], sentence: str
) -> None:
    billing = restored
    before = billing.store.video_offer(VIDEO)
    carol = billing.browser("carol")
    page = carol.get(f"{billing.web}/admin/videos/{VIDEO}", timeout=TIMEOUT).text

    answer = _post(carol, f"{billing.web}/admin/videos/{VIDEO}/offer", page, "offer-form", **values)

    assert answer.status_code == 400
    assert _error(answer.text, "offer-error").startswith(sentence)
    assert 'id="video-form"' in answer.text  # the whole video page, not a bare error
    assert billing.store.video_offer(VIDEO) == before


def test_prices_for_a_video_that_does_not_exist_are_a_404(billing: Billing) -> None:
    carol = billing.browser("carol")
    token = csrf_from(carol.get(f"{billing.web}/admin/billing", timeout=TIMEOUT).text)

    answer = carol.post(
        f"{billing.web}/admin/videos/no-such-video/offer",
        data={"csrf_token": token, "currency": "usd", "buy_cents": "500", "rent_hours": "48"},
        timeout=TIMEOUT,
    )

    assert answer.status_code == 404
    assert billing.store.video_offer("no-such-video") is None


def test_stop_selling_asks_first_and_then_clears_the_offer(restored: Billing) -> None:
    billing = restored
    billing.store.put_video_offer(VideoOffer(VIDEO, "usd", 500, 200, 48))
    carol = billing.browser("carol")
    page = carol.get(f"{billing.web}/admin/videos/{VIDEO}", timeout=TIMEOUT).text
    assert f'href="/admin/videos/{VIDEO}/offer/remove"' in page

    confirm = carol.get(f"{billing.web}/admin/videos/{VIDEO}/offer/remove", timeout=TIMEOUT)
    assert confirm.status_code == 200
    assert 'id="confirm-panel"' in confirm.text and "5.00 USD" in _text(confirm.text)
    assert billing.store.video_offer(VIDEO) is not None  # asking changed nothing
    unconfirmed = carol.post(
        f"{billing.web}/admin/videos/{VIDEO}/offer/remove",
        data={"csrf_token": csrf_from(confirm.text)},
        timeout=TIMEOUT,
    )
    assert 'id="confirm-panel"' in unconfirmed.text
    assert billing.store.video_offer(VIDEO) is not None

    done = _post(
        carol,
        f"{billing.web}/admin/videos/{VIDEO}/offer/remove",
        confirm.text,
        "confirm-form",
    )

    assert done.status_code == 302
    assert billing.store.video_offer(VIDEO) is None
    upsell = billing.browser("bob").get(f"{billing.web}/watch/{VIDEO}", timeout=TIMEOUT).text
    assert 'id="rent-video"' not in upsell and 'id="buy-video"' not in upsell


# --------------------------------------------------------------------------- parked webhooks


def test_a_webhook_for_an_unknown_customer_is_listed_on_the_billing_page(billing: Billing) -> None:
    event_id = f"evt_{uuid.uuid4().hex}"
    customer = f"cus_unknown{uuid.uuid4().hex[:8]}"
    event = {
        "id": event_id,
        "object": "event",
        "created": 1_900_000_000,
        "type": "customer.subscription.updated",
        "data": {
            "object": {
                "id": "sub_parked",
                "object": "subscription",
                "customer": customer,
                "status": "active",
                "cancel_at_period_end": False,
                "metadata": {},
                "items": {
                    "object": "list",
                    "data": [{"current_period_start": 1, "current_period_end": 1_900_000_000}],
                },
            }
        },
    }
    assert billing.services.stripe_events.process(event) == "parked"
    try:
        page = billing.browser("carol").get(f"{billing.web}/admin/billing", timeout=TIMEOUT).text
        row = re.search(rf'<tr data-event="{event_id}">.*?</tr>', page, re.S)
        assert row, "the parked event is not listed"
        cells = dict(re.findall(r'data-label="([^"]+)">(.*?)</td>', row.group(0), re.S))
        assert _text(cells["Type"]) == "customer.subscription.updated"
        assert _text(cells["Customer"]) == customer
        assert customer in _text(cells["Why"])
        assert re.fullmatch(r"\d{1,2} \w{3} \d{4}, \d\d:\d\d UTC", _text(cells["When"]))
    finally:
        billing.services.dynamodb.delete_item(
            TableName=billing.table, Key={"pk": {"S": f"parked#{event_id}"}}
        )


# --------------------------------------------------------------------------- refusals

ROUTES: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/admin/billing", {}),
    (
        "POST",
        "/admin/billing/plan",
        {
            "currency": "usd",
            "monthly_cents": "100",
            "monthly_price_id": "price_pwned",
            "yearly_cents": "1000",
            "yearly_price_id": "price_pwned",
        },
    ),
    ("POST", f"/admin/videos/{VIDEO}/offer", {"currency": "usd", "buy_cents": "50"}),
    ("GET", f"/admin/videos/{VIDEO}/offer/remove", {}),
    ("POST", f"/admin/videos/{VIDEO}/offer/remove", {"confirm": "yes"}),
]


def test_the_refusal_table_covers_every_billing_route() -> None:
    app = Flask("routes-only")
    app.register_blueprint(billing_blueprint)
    found = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("admin_billing.")
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }
    assert {(m, p.replace(VIDEO, "<video_id>")) for m, p, _ in ROUTES} == found


def _state(billing: Billing) -> tuple[Any, Any]:
    return billing.store.plan(), billing.store.video_offer(VIDEO)


@pytest.mark.parametrize(("method", "path", "form"), ROUTES)
def test_bob_who_is_not_an_admin_gets_403_on_every_billing_page_and_form(
    billing: Billing, method: str, path: str, form: dict[str, str]
) -> None:
    before = _state(billing)
    bob = billing.browser("bob")
    token = csrf_from(bob.get(f"{billing.web}/account", timeout=TIMEOUT).text)

    answer = bob.request(
        method,
        billing.web + path,
        data={"csrf_token": token, **form} if method == "POST" else None,
        allow_redirects=False,
        timeout=TIMEOUT,
    )

    assert answer.status_code == 403, answer.text[:300]
    assert 'data-code="forbidden"' in answer.text
    assert _state(billing) == before


@pytest.mark.parametrize(("method", "path", "form"), ROUTES)
def test_a_visitor_who_is_not_signed_in_gets_nothing_from_the_billing_pages(
    billing: Billing, method: str, path: str, form: dict[str, str]
) -> None:
    before = _state(billing)

    answer = requests.request(
        method, billing.web + path, data=form or None, allow_redirects=False, timeout=TIMEOUT
    )

    if method == "GET":
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/auth/sign-in")
    else:
        assert answer.status_code in (401, 403)
    assert _state(billing) == before


def test_a_price_form_without_its_csrf_token_is_refused(billing: Billing) -> None:
    before = _state(billing)
    carol = billing.browser("carol")

    answer = carol.post(
        f"{billing.web}/admin/billing/plan",
        data=dict(ROUTES[1][2]),
        timeout=TIMEOUT,
    )

    assert answer.status_code == 403
    assert 'data-code="csrf"' in answer.text
    assert _state(billing) == before
