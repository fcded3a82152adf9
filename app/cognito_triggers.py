"""Cognito user-pool triggers: what they do, given a user directory.

``post_confirmation`` runs after a user confirms sign-up (Cognito's
PostConfirmation trigger, ``PostConfirmation_ConfirmSignUp``): it creates the
user's record in the users table. In AWS, Cognito invokes it through the
trigger's Lambda entry point; the local stack calls this same function,
since the emulator fires no triggers. It must return
the event unchanged, or Cognito fails the confirmation.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from app.users import UserDirectory

log = logging.getLogger("vidgate.cognito_triggers")
log.setLevel(logging.INFO)

_HANDLED = {"PostConfirmation_ConfirmSignUp", "PostConfirmation_ConfirmForgotPassword"}


def post_confirmation(event: dict[str, Any], directory: UserDirectory) -> dict[str, Any]:
    """Create the user record on first confirmation; idempotent (retries are safe)."""
    if not isinstance(event, dict):
        raise TypeError("a Cognito trigger event is a JSON object")
    source = event.get("triggerSource")
    if source not in _HANDLED:
        log.info(json.dumps({"event": "trigger_ignored", "trigger_source": source}))
        return event
    request = event.get("request")
    attributes = request.get("userAttributes") if isinstance(request, dict) else None
    if not isinstance(attributes, dict):
        raise TypeError("a PostConfirmation event carries request.userAttributes as an object")
    user_id = attributes.get("sub")
    username = event.get("userName")
    email = attributes.get("email", "")
    if not isinstance(user_id, str) or not user_id or not isinstance(username, str) or not username:
        # Cognito always sends both; a malformed event must not create a junk record.
        raise ValueError("PostConfirmation event without userName or sub")
    record = directory.create_on_signup(user_id, username, email)
    log.info(json.dumps({"event": "user_record", "user_id": record.user_id, "source": source}))
    return event
