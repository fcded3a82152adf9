"""Lambda entry point of the publish step: MediaConvert job state changes from EventBridge
(see app.job_events)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from app.config import load_settings
from app.ingest import NEEDS
from app.job_events import JobEvents
from app.services import Services


@cache
def _job_events() -> JobEvents:
    return Services(load_settings(os.environ, NEEDS)).job_events


def handler(event: dict[str, Any], context: object = None) -> dict[str, str]:
    return {"outcome": _job_events().handle(event)}
