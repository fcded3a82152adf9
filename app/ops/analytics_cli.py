"""``vidgate analytics report --from YYYY-MM-DD --to YYYY-MM-DD``: CSV reports to S3.

Reads its settings like the other operator commands (``--env-file``; the
local stack's ``.vidgate/dev.env`` by default): the bucket, and the Athena
database and workgroup when the queries should run there (else DuckDB).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_analytics(sub: Any, common: argparse.ArgumentParser) -> None:
    analytics = sub.add_parser("analytics", help="viewing analytics: reports")
    analytics.set_defaults(run=run_analytics)
    actions = analytics.add_subparsers(dest="action", required=True, metavar="ACTION")
    report = actions.add_parser(
        "report", parents=[common], help="write CSV reports of a date range to S3 reports/"
    )
    report.add_argument("--from", dest="first", required=True, metavar="YYYY-MM-DD")
    report.add_argument("--to", dest="last", required=True, metavar="YYYY-MM-DD")


def run_analytics(args: argparse.Namespace) -> int:
    """Run every query for the range and print the ``s3://`` URIs written."""
    from botocore.exceptions import BotoCoreError, ClientError

    from app.analytics import DateRange
    from app.config import Need
    from app.errors import VidgateError
    from app.ops.admin_cli import Operator, OperatorError, one_line
    from app.ops.cli import UserError
    from app.ops.reports import write_reports

    try:
        days = DateRange.parse(args.first, args.last)
        operator = Operator.load({Need.MEDIA, Need.ANALYTICS}, env_file=args.env_file)
        services = operator.services
        written = write_reports(services.analytics, services.s3, operator.settings.bucket, days)
    except (OperatorError, VidgateError) as exc:
        raise UserError(one_line(exc)) from exc
    except (ClientError, BotoCoreError) as exc:
        raise UserError(f"AWS refused the report: {one_line(exc)}") from exc
    for uri in written:
        operator.say(uri)
    return 0
