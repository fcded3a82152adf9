"""Selling pages: pricing, checkout, the success page that waits for the webhook, the portal.

``POST /billing/subscribe`` and ``POST /billing/buy/<video id>`` send the viewer
to a Stripe Checkout page; ``POST /billing/portal`` to the customer portal.
``/billing/success`` grants nothing: it shows "processing" and polls
``/billing/status`` until the webhook recorded the checkout
(docs/selling.md#checkout). The policy pages (pricing, terms, privacy,
contact) read the operator's texts (:mod:`app.web.policy`). The webhook
itself is not here: it is ``app.http.webhooks``, mounted under ``/webhooks``.
Selling is on when ``VIDGATE_BILLING_TABLE`` is set; without it the pricing
page says nothing is for sale.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response

from app.billing import format_amount
from app.checkout import Buyer, Checkout
from app.errors import BadRequestError, NotFoundError
from app.web.context import current_services
from app.web.policy import policy_texts
from app.web.signin import current_user, login_required

blueprint = Blueprint("billing", __name__)

_SESSION_ID = re.compile(r"^cs_[A-Za-z0-9_]{1,200}$")
STRIPE_HOSTED = ["https://checkout.stripe.com", "https://billing.stripe.com"]


@blueprint.record_once
def _allow_stripe_pages(state: BlueprintSetupState) -> None:
    """Form posts here redirect to Stripe's hosted pages: form-action must allow them."""
    csp = state.app.config.get("VIDGATE_CSP")
    if not isinstance(csp, dict):
        return
    services = state.app.extensions.get("vidgate.services")
    base = services.settings.stripe_api_base if services is not None else ""
    hosted = list(STRIPE_HOSTED)
    if base:
        parts = urlsplit(base)
        hosted.append(f"{parts.scheme}://{parts.netloc}")
    csp.setdefault("form-action", ["'self'"]).extend(
        h for h in hosted if h not in csp["form-action"]
    )


def _selling() -> bool:
    return bool(current_services().settings.billing_table)


def _checkout() -> Checkout:
    services = current_services()
    base = services.settings.web_base_url or request.host_url.rstrip("/")
    return Checkout(services.stripe, services.billing, site_url=base)


def _buyer() -> Buyer:
    user = current_user()
    assert user is not None  # login_required
    return Buyer(user.user_id, user.email or None)


@blueprint.app_context_processor
def _billing_context() -> dict[str, Any]:
    return {"policy": policy_texts(), "offers_for": _offers_for, "billing_summary": _summary}


def _offers_for(video_id: str) -> dict[str, Any]:
    """What the upsell page offers for ``video_id``: the plan and the video's own prices."""
    if not _selling():
        return {"selling": False}
    billing = current_services().billing
    plan = billing.plan()
    offer = billing.video_offer(video_id)
    return {
        "selling": True,
        "plan": plan,
        "monthly": plan.label("month") if plan else None,
        "yearly": plan.label("year") if plan else None,
        "buy": format_amount(offer.buy_cents, offer.currency)
        if offer and offer.buy_cents
        else None,
        "rent": (
            format_amount(offer.rent_cents, offer.currency) if offer and offer.rent_cents else None
        ),
        "rent_hours": offer.rent_hours if offer else None,
    }


def _fmt(moment: datetime | None) -> str | None:
    return moment.strftime("%d %B %Y, %H:%M UTC") if moment else None


def _summary() -> dict[str, Any]:
    """The account page's billing part: plan, price, renewal or end, purchases, rentals."""
    user = current_user()
    if user is None or not _selling():
        return {"selling": False}
    services = current_services()
    item = services.dynamodb.get_item(
        TableName=services.settings.users_table,
        Key={"user_id": {"S": user.user_id}},
        ConsistentRead=True,
        ProjectionExpression="stripe_sub, stripe_until, paid, stripe_customer",
    ).get("Item", {})
    entitlement = services.entitlements.get(user.user_id)
    now = datetime.now(UTC)
    sub = item.get("stripe_sub", {}).get("M", {})
    plan: dict[str, Any] | None = None
    if sub:
        status = sub.get("status", {}).get("S", "")
        interval = sub.get("interval", {}).get("S", "")
        amount = int(sub.get("amount", {}).get("N", "0"))
        currency = sub.get("currency", {}).get("S", "usd")
        cancel = bool(sub.get("cancel_at_period_end", {}).get("BOOL"))
        period_end = sub.get("period_end", {}).get("S")
        active = entitlement.stripe_until is not None and now < entitlement.stripe_until
        plan = {
            "status": status,
            "active": active,
            "price": f"{format_amount(amount, currency)} per {interval}" if amount else None,
            "renews": None if cancel or not active else _fmt(_parse(period_end)),
            "ends": _fmt(entitlement.stripe_until) if (cancel or not active) else None,
        }
    paid = [
        {
            "video_id": access.video_id,
            "kind": access.kind,
            "active": access.allows(now),
            "ends": _fmt(access.ends_at()),
            "started": access.started is not None,
            "refunded": access.ended is not None,
        }
        for access in entitlement.paid.values()
    ]
    return {
        "selling": True,
        "plan": plan,
        "paid": sorted(paid, key=lambda p: p["video_id"]),
        "has_customer": "stripe_customer" in item,
    }


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(UTC) if text else None


@blueprint.get("/pricing")
def pricing() -> str:
    plan = current_services().billing.plan() if _selling() else None
    return render_template(
        "billing/pricing.html",
        plan=plan,
        monthly=plan.label("month") if plan else None,
        yearly=plan.label("year") if plan else None,
        canceled=request.args.get("checkout") == "canceled",
    )


@blueprint.get("/terms")
def terms() -> str:
    return render_template(
        "billing/policy.html", title="Terms of service", text=policy_texts().terms
    )


@blueprint.get("/privacy")
def privacy() -> str:
    return render_template(
        "billing/policy.html", title="Privacy policy", text=policy_texts().privacy
    )


@blueprint.get("/contact")
def contact() -> str:
    return render_template("billing/contact.html")


@blueprint.post("/billing/subscribe")
@login_required
def subscribe() -> Response:
    interval = request.form.get("interval", "month")
    if interval not in ("month", "year"):
        raise BadRequestError("interval must be month or year")
    if not _selling():
        raise NotFoundError("nothing is for sale")
    buyer = _buyer()
    entitlement = current_services().entitlements.get(buyer.user_id)
    if entitlement.premium_active(datetime.now(UTC)):
        # No second subscription for someone who has premium: the portal changes plans.
        flash("You already have premium. Manage your plan under Manage billing.", "info")
        return redirect(url_for("auth.account"), code=303)
    return redirect(_checkout().subscribe(buyer, interval), code=303)


@blueprint.post("/billing/buy/<video_id>")
@login_required
def buy(video_id: str) -> Response:
    kind = request.form.get("kind", "")
    if kind not in ("own", "rent"):
        raise BadRequestError("kind must be own or rent")
    if not _selling():
        raise NotFoundError("nothing is for sale")
    video = current_services().catalog.get(video_id)
    buyer = _buyer()
    owned = current_services().entitlements.get(buyer.user_id).paid.get(video.video_id)
    if owned is not None and owned.kind == "own" and owned.allows(datetime.now(UTC)):
        flash("You own this video already.", "info")
        return redirect(url_for("watch.watch", video_id=video.video_id), code=303)
    return redirect(_checkout().buy(buyer, video.video_id, video.title, kind), code=303)


@blueprint.post("/billing/portal")
@login_required
def portal() -> Response:
    if not _selling():
        raise NotFoundError("nothing is for sale")
    return redirect(_checkout().portal(_buyer()), code=303)


def _session_id() -> str:
    session_id = request.args.get("session_id", "")
    if not _SESSION_ID.match(session_id):
        raise BadRequestError("session_id is not a Checkout Session id")
    return session_id


@blueprint.get("/billing/success")
@login_required
def success() -> str:
    """Never grants: shows "processing" until the webhook recorded this checkout."""
    return render_template("billing/success.html", session_id=_session_id())


@blueprint.get("/billing/status")
@login_required
def status() -> Response:
    user = current_user()
    assert user is not None
    state = current_services().billing.checkout_state(_session_id(), user.user_id)
    response = jsonify({"state": state})
    response.headers["Cache-Control"] = "no-store"
    return response
