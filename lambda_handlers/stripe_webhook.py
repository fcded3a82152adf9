"""Lambda entry point of the Stripe webhook (see app.http.webhooks)."""

import logging

from app.http.entry import LambdaEntry
from app.http.webhooks import from_environment

handler = LambdaEntry(from_environment, log=logging.getLogger("vidgate.http.webhooks"))
