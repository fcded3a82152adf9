"""Lambda entry point of the Cognito PostConfirmation trigger (see app.cognito_triggers)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from app.cognito_triggers import post_confirmation
from app.config import Need, load_settings
from app.dynamo import dynamodb_client
from app.users import UserDirectory


@cache
def _directory() -> UserDirectory:
    settings = load_settings(os.environ, {Need.TABLES})
    return UserDirectory(dynamodb_client(), settings.users_table)


def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    return post_confirmation(event, _directory())
