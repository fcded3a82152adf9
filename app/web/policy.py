"""The operator's texts for the footer and the policy pages (pricing, terms, privacy, contact).

Read once from the JSON file named by ``VIDGATE_POLICY_FILE`` (keys below, all
optional, plain text; blank lines separate paragraphs); what the file leaves
out keeps the default. A file that cannot be read is a configuration error
at the first page, not a silent default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path

from flask import current_app

from app.errors import ConfigurationError


@dataclass(frozen=True)
class PolicyTexts:
    operator: str = "The vidgate operator"
    contact_email: str = "support@example.com"
    contact_address: str = ""
    terms: str = (
        "You may stream the videos your plan, purchase or rental covers, for your own "
        "viewing, on the devices and number of streams your plan allows.\n\n"
        "Premium renews each period until you cancel; canceling keeps premium until the "
        "end of the period you paid for. A purchased video stays yours while the service "
        "runs; a rental lasts its window from the first play. Refunds end the access they "
        "paid for.\n\nPayments are processed by Stripe."
    )
    privacy: str = (
        "We keep your account (username, e-mail), what you bought and when, and "
        "pseudonymous viewing events to run and improve the service. Card details go to "
        "Stripe, never to us. We do not sell personal data.\n\nAsk us for a copy of your "
        "data or to delete your account at the contact address."
    )
    pricing_note: str = "Prices include applicable taxes where required."

    def paragraphs(self, name: str) -> list[str]:
        text = str(getattr(self, name))
        return [part.strip() for part in text.split("\n\n") if part.strip()]


def load_policy(path: str) -> PolicyTexts:
    """The texts in ``path`` over the defaults.

    :raises ConfigurationError: unreadable, not a JSON object, or a value that is not text.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"VIDGATE_POLICY_FILE {path!r} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError("VIDGATE_POLICY_FILE must hold a JSON object")
    known = {f.name for f in fields(PolicyTexts)}
    unknown = sorted(set(data) - known)
    bad = sorted(k for k, v in data.items() if k in known and not isinstance(v, str))
    if unknown or bad:
        raise ConfigurationError(
            f"VIDGATE_POLICY_FILE: unknown keys {unknown}, non-text values {bad}; "
            f"known: {sorted(known)}"
        )
    return replace(PolicyTexts(), **data)


@lru_cache(maxsize=4)
def _cached(path: str) -> PolicyTexts:
    return load_policy(path) if path else PolicyTexts()


def policy_texts() -> PolicyTexts:
    settings = current_app.extensions["vidgate.services"].settings
    return _cached(settings.policy_file)
