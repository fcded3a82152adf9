"""``vidgate billing``: what is for sale (the plan, a video's prices) and parked webhooks.

``plan`` sets the premium plan's monthly and yearly prices and their Stripe
price ids; ``offer`` sets or clears a video's purchase and rental prices;
``show`` prints both; ``parked`` lists webhooks nobody could be found for
(docs/selling.md#parked). Amounts are in the currency's smallest unit (cents).
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_billing(sub: Any, common: argparse.ArgumentParser) -> None:
    billing = sub.add_parser("billing", help="prices (plan, videos) and parked Stripe webhooks")
    billing.set_defaults(run=run_billing)
    actions = billing.add_subparsers(dest="action", required=True, metavar="ACTION")
    plan = actions.add_parser("plan", parents=[common], help="set the premium plan's prices")
    plan.add_argument("--currency", default="usd")
    plan.add_argument("--monthly-cents", type=int, required=True)
    plan.add_argument("--monthly-price-id", required=True, help="Stripe price id (price_…)")
    plan.add_argument("--yearly-cents", type=int, required=True)
    plan.add_argument("--yearly-price-id", required=True, help="Stripe price id (price_…)")
    offer = actions.add_parser("offer", parents=[common], help="set a video's prices")
    offer.add_argument("video_id")
    offer.add_argument("--currency", default="usd")
    offer.add_argument("--buy-cents", type=int, default=None, help="omit: not for sale")
    offer.add_argument("--rent-cents", type=int, default=None, help="omit: not for rent")
    offer.add_argument("--rent-hours", type=int, default=48, help="rental window from first play")
    show = actions.add_parser("show", parents=[common], help="the plan, and a video's prices")
    show.add_argument("video_id", nargs="?")
    parked = actions.add_parser("parked", parents=[common], help="webhooks parked, newest first")
    parked.add_argument("--json", action="store_true", help="the full events, as JSON lines")


def run_billing(args: argparse.Namespace) -> int:
    # Imported here, not above: boto3 would slow down `vidgate --help`.
    from app.billing import PlanOffer, VideoOffer, format_amount
    from app.config import Need
    from app.errors import ConfigurationError, VidgateError
    from app.ops.admin_cli import Operator, OperatorError, one_line
    from app.ops.cli import UserError

    try:
        operator = Operator.load({Need.TABLES, Need.BILLING}, env_file=args.env_file)
        if not operator.settings.billing_table:
            raise OperatorError("VIDGATE_BILLING_TABLE is not set: selling is off")
        billing = operator.services.billing
        say = operator.say
        if args.action == "plan":
            billing.put_plan(
                PlanOffer(
                    args.currency,
                    args.monthly_cents,
                    args.monthly_price_id,
                    args.yearly_cents,
                    args.yearly_price_id,
                )
            )
            say("premium plan saved")
        elif args.action == "offer":
            operator.services.catalog.get(args.video_id)  # only a video that exists
            offer = VideoOffer(
                args.video_id, args.currency, args.buy_cents, args.rent_cents, args.rent_hours
            )
            billing.put_video_offer(offer)
            say(f"prices of {args.video_id} saved")
        elif args.action == "show":
            plan = billing.plan()
            say(f"plan: {plan.label('month')}, {plan.label('year')}" if plan else "plan: none")
            if args.video_id:
                found = billing.video_offer(args.video_id)
                if found is None:
                    say(f"{args.video_id}: not for sale")
                else:
                    buy = format_amount(found.buy_cents, found.currency) if found.buy_cents else "-"
                    rent = (
                        format_amount(found.rent_cents, found.currency) if found.rent_cents else "-"
                    )
                    say(f"{args.video_id}: buy {buy}, rent {rent} for {found.rent_hours} h")
        else:
            events = billing.parked()
            for event in events:
                if args.json:
                    say(json.dumps(event.payload, separators=(",", ":")))
                else:
                    at = event.at.isoformat() if event.at else "?"
                    say(f"{at}  {event.event_id}  {event.type}  {event.reason}")
            if not events and not args.json:
                say("no parked webhooks")
        return 0
    except (OperatorError, VidgateError, ConfigurationError) as exc:
        raise UserError(one_line(exc)) from exc
