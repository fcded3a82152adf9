"""Lambda entry point of the ingest: SQS batches of S3 upload notifications (see app.ingest)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from app.config import load_settings
from app.ingest import NEEDS, Ingest
from app.services import Services


@cache
def _ingest() -> Ingest:
    return Services(load_settings(os.environ, NEEDS)).ingest


def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    return _ingest().handle_batch(event)
