"""Lambda entry point of the viewer API (see app.http.viewer)."""

import logging

from app.http.entry import LambdaEntry
from app.http.viewer import from_environment
from app.metrics import PROCESS as METRICS

METRICS.enable_stdout()  # grants and refusals become CloudWatch metrics (EMF) in this log
handler = LambdaEntry(from_environment, log=logging.getLogger("vidgate.http.viewer"))
