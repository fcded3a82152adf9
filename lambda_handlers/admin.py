"""Lambda entry point of the admin API (see app.http.admin)."""

import logging

from app.http.admin import from_environment
from app.http.entry import LambdaEntry

handler = LambdaEntry(from_environment, log=logging.getLogger("vidgate.http.admin"))
