"""Lambda entry point of the viewer API (see app.http.viewer)."""

import logging
import os

from app.http.entry import LambdaEntry
from app.http.viewer import from_environment
from app.metrics import PROCESS as METRICS

# Grants and refusals become CloudWatch metrics (EMF) in this function's log.
METRICS.enable_in_lambda(os.environ)
handler = LambdaEntry(from_environment, log=logging.getLogger("vidgate.http.viewer"))
