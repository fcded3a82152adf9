"""The admin side of selling: the premium plan's prices, parked webhooks, a video's prices.

``/admin/billing`` shows and edits the premium plan (monthly and yearly
amount, currency, Stripe price ids) and lists the parked Stripe webhooks
(docs/selling.md#webhooks). A video's admin page (``/admin/videos/<id>``)
gets a "Prices" panel: the purchase price, the rental price and its window;
``/admin/videos/<id>/offer/remove`` takes a confirmation before the video is
no longer for sale. Every write goes through :class:`app.billing.BillingStore`
with :class:`~app.billing.PlanOffer` / :class:`~app.billing.VideoOffer`, the
same calls as ``vidgate billing plan|offer``, so the rules live there; a value
they refuse comes back as a sentence on the form (400), never a 500.
Admins only, like every ``/admin`` page. Selling is off (nothing editable)
when ``VIDGATE_BILLING_TABLE`` is not set.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.billing import PlanOffer, VideoOffer, format_amount
from app.errors import BadRequestError, DependencyUnavailableError
from app.web.admin_views import admin_template_context, video_page
from app.web.context import current_services
from app.web.signin import admin_required, current_user

log = logging.getLogger("vidgate.web.admin")

blueprint = Blueprint("admin_billing", __name__, url_prefix="/admin")
# The nav and the video page (re-shown here after a refused price) need the admin context.
blueprint.context_processor(admin_template_context)

_WHOLE = re.compile(r"^[0-9]{1,12}$")
FIELD_MAX = 200


class FormProblem(BadRequestError):
    """A form field a person must correct; its message is the sentence shown."""


def _selling() -> bool:
    return bool(current_services().settings.billing_table)


def _actor() -> str:
    user = current_user()
    assert user is not None  # admin_required ran
    return user.username


def _sentence(exc: BadRequestError) -> str:
    """The core's refusal as a sentence for the form: capital first, full stop last."""
    text = str(exc).strip() or "That could not be saved: check the fields and try again"
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _cents(form: dict[str, str], name: str, what: str, *, optional: bool = False) -> int | None:
    text = form.get(name, "").strip()
    if not text and optional:
        return None
    if not _WHOLE.match(text):
        raise FormProblem(f"Write the {what} as a whole number of cents, e.g. 900 for 9.00.")
    return int(text)


def _form(*names: str) -> dict[str, str]:
    return {name: request.form.get(name, "")[:FIELD_MAX] for name in names}


# --------------------------------------------------------------------------- the plan

PLAN_FIELDS = ("currency", "monthly_cents", "monthly_price_id", "yearly_cents", "yearly_price_id")


def _plan_form(plan: PlanOffer | None) -> dict[str, str]:
    if plan is None:
        return dict.fromkeys(PLAN_FIELDS, "") | {"currency": "usd"}
    return {
        "currency": plan.currency,
        "monthly_cents": str(plan.monthly_cents),
        "monthly_price_id": plan.monthly_price_id,
        "yearly_cents": str(plan.yearly_cents),
        "yearly_price_id": plan.yearly_price_id,
    }


def _billing_page(
    *, form: dict[str, str] | None = None, error: str | None = None, status: int = 200
) -> tuple[str, int]:
    if not _selling():
        return render_template("admin/billing.html", selling=False, error=error), status
    billing = current_services().billing
    plan = billing.plan()
    try:
        parked = billing.parked()
        parked_error = None
    except DependencyUnavailableError:
        parked, parked_error = [], "The parked webhooks cannot be read right now."
    return (
        render_template(
            "admin/billing.html",
            selling=True,
            plan=plan,
            form=form or _plan_form(plan),
            error=error,
            parked=parked,
            parked_error=parked_error,
            monthly=plan.label("month") if plan else None,
            yearly=plan.label("year") if plan else None,
        ),
        status,
    )


@blueprint.get("/billing")
@admin_required
def page() -> tuple[str, int]:
    """The plan's prices (a form) and the parked webhooks, newest first."""
    return _billing_page()


@blueprint.post("/billing/plan")
@admin_required
def save_plan() -> Response | tuple[str, int]:
    """Save the premium plan, like ``vidgate billing plan``; a refused value is a 400 form."""
    form = _form(*PLAN_FIELDS)
    if not _selling():
        return _billing_page(error="Selling is off: nothing can be priced here.", status=400)
    try:
        plan = PlanOffer(
            currency=form["currency"].strip().lower(),
            monthly_cents=_cents(form, "monthly_cents", "monthly price") or 0,
            monthly_price_id=form["monthly_price_id"].strip(),
            yearly_cents=_cents(form, "yearly_cents", "yearly price") or 0,
            yearly_price_id=form["yearly_price_id"].strip(),
        )
    except BadRequestError as exc:
        return _billing_page(form=form, error=_sentence(exc), status=400)
    current_services().billing.put_plan(plan)
    log.info(json.dumps({"event": "plan_saved", "actor": _actor()}))
    flash(f"Premium plan saved: {plan.label('month')}, {plan.label('year')}.", "success")
    return redirect(url_for("admin_billing.page"))


# --------------------------------------------------------------------------- a video's prices

OFFER_FIELDS = ("currency", "buy_cents", "rent_cents", "rent_hours")


def _offer_form(offer: VideoOffer | None) -> dict[str, str]:
    if offer is None:
        return {"currency": "usd", "buy_cents": "", "rent_cents": "", "rent_hours": "48"}
    return {
        "currency": offer.currency,
        "buy_cents": "" if offer.buy_cents is None else str(offer.buy_cents),
        "rent_cents": "" if offer.rent_cents is None else str(offer.rent_cents),
        "rent_hours": str(offer.rent_hours),
    }


def offer_panel(video_id: str) -> dict[str, Any]:
    """What the video page's "Prices" panel shows (a form re-shown with its error after a 400)."""
    if not _selling():
        return {"selling": False}
    try:
        offer = current_services().billing.video_offer(video_id)
    except DependencyUnavailableError:
        # The page still edits the video; only its prices are unavailable for now.
        return {"selling": True, "unavailable": True}
    refused = g.get("offer_refused") or {}
    return {
        "selling": True,
        "offer": offer,
        "form": refused.get("form") or _offer_form(offer),
        "error": refused.get("error"),
        "buy": format_amount(offer.buy_cents, offer.currency)
        if offer and offer.buy_cents
        else None,
        "rent": (
            format_amount(offer.rent_cents, offer.currency) if offer and offer.rent_cents else None
        ),
    }


@blueprint.app_context_processor
def _offer_context() -> dict[str, Any]:
    return {"offer_panel": offer_panel}


def _video_page_again(video_id: str, form: dict[str, str], error: str) -> tuple[str, int]:
    """The video page, 400, with the prices form as typed and the sentence that refused it."""
    g.offer_refused = {"form": form, "error": error}
    return video_page(video_id, status=400)


@blueprint.post("/videos/<video_id>/offer")
@admin_required
def save_offer(video_id: str) -> Response | tuple[str, int]:
    """Save a video's prices, like ``vidgate billing offer``; a refused value is a 400 form."""
    video = current_services().catalog.get_any(video_id)  # only a video that exists
    form = _form(*OFFER_FIELDS)
    if not _selling():
        return _video_page_again(video_id, form, "Selling is off: nothing can be priced here.")
    try:
        buy = _cents(form, "buy_cents", "purchase price", optional=True)
        rent = _cents(form, "rent_cents", "rental price", optional=True)
        if buy is None and rent is None:
            raise FormProblem(
                "Give a purchase price, a rental price or both;"
                " to stop selling this video, use Stop selling."
            )
        hours_text = form["rent_hours"].strip() or "48"
        if not _WHOLE.match(hours_text):
            raise FormProblem("Write the rental window as a whole number of hours, e.g. 48.")
        offer = VideoOffer(video_id, form["currency"].strip().lower(), buy, rent, int(hours_text))
    except BadRequestError as exc:
        return _video_page_again(video_id, form, _sentence(exc))
    current_services().billing.put_video_offer(offer)
    log.info(json.dumps({"event": "offer_saved", "video_id": video_id, "actor": _actor()}))
    flash(f"Prices of “{video.title}” saved.", "success")
    return redirect(url_for("admin.video", video_id=video_id))


@blueprint.route("/videos/<video_id>/offer/remove", methods=["GET", "POST"])
@admin_required
def remove_offer(video_id: str) -> Response | tuple[str, int]:
    """GET (or POST without ``confirm=yes``): the confirmation page. POST confirmed: not for
    sale any more (the offer is cleared, as ``vidgate billing offer`` without prices does)."""
    video = current_services().catalog.get_any(video_id)
    back = url_for("admin.video", video_id=video_id)
    if not _selling():
        flash("Selling is off: this video has no prices to remove.", "info")
        return redirect(back)
    billing = current_services().billing
    offer = billing.video_offer(video_id)
    if request.method == "POST" and request.form.get("confirm") == "yes":
        if offer is not None:
            currency = offer.currency
            billing.put_video_offer(VideoOffer(video_id, currency, None, None, offer.rent_hours))
            log.info(
                json.dumps({"event": "offer_removed", "video_id": video_id, "actor": _actor()})
            )
        flash(f"“{video.title}” is no longer for sale or rent.", "success")
        return redirect(back)
    facts = []
    if offer is not None and offer.buy_cents:
        facts.append(("Purchase price", format_amount(offer.buy_cents, offer.currency)))
    if offer is not None and offer.rent_cents:
        rent = format_amount(offer.rent_cents, offer.currency)
        facts.append(("Rental", f"{rent} for {offer.rent_hours} h"))
    return (
        render_template(
            "admin/confirm.html",
            active="videos",
            heading=f"Stop selling “{video.title}”?",
            facts=facts,
            consequence=(
                "Viewers can no longer buy or rent it. Purchases and rentals already paid"
                " keep playing; premium members still watch it. You can set prices again later."
            ),
            action=url_for("admin_billing.remove_offer", video_id=video_id),
            confirm_label="Yes, stop selling",
            cancel_url=back,
            next="",
        ),
        200,
    )
