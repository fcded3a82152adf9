"""The media bucket's lifecycle rules, as data (docs/publishing.md#lifecycle).

One definition for both sides: :func:`cloudformation_rules` is what the SAM
template's ``LifecycleConfiguration`` must say (a test compares them) and
:func:`s3_api_rules` is what the local stack puts on the emulator's bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UPLOADS_PREFIX = "uploads/"
RENDITIONS_PREFIX = "videos/"
REMOVED_TAG = "vidgate-removed"
"""Tag put on the original of a removed video (value: the removal date)."""


@dataclass(frozen=True)
class Transition:
    days: int
    storage_class: str


@dataclass(frozen=True)
class LifecycleRule:
    """One rule: objects under ``prefix`` (``""``: all) and what happens to them."""

    rule_id: str
    prefix: str
    transitions: tuple[Transition, ...] = ()
    abort_incomplete_multipart_days: int | None = None
    noncurrent_expiration_days: int | None = None


LIFECYCLE_RULES: tuple[LifecycleRule, ...] = (
    # Originals are the masters of every re-transcode, read rarely: Glacier Flexible
    # Retrieval after 30 days (a re-transcode restores one first).
    LifecycleRule("originals-to-glacier", UPLOADS_PREFIX, transitions=(Transition(30, "GLACIER"),)),
    # Renditions: popular titles stay hot, the long tail cools by itself.
    LifecycleRule(
        "renditions-intelligent-tiering",
        RENDITIONS_PREFIX,
        transitions=(Transition(0, "INTELLIGENT_TIERING"),),
    ),
    # An abandoned browser or CLI upload leaves parts that S3 keeps and bills.
    LifecycleRule("abort-incomplete-uploads", "", abort_incomplete_multipart_days=1),
    # The bucket is versioned: replaced and deleted objects (removed renditions, a
    # re-uploaded original) are kept 30 days for recovery, then go.
    LifecycleRule("expire-replaced-versions", "", noncurrent_expiration_days=30),
)


def cloudformation_rules(rules: tuple[LifecycleRule, ...] = LIFECYCLE_RULES) -> list[Any]:
    """The ``AWS::S3::Bucket`` ``LifecycleConfiguration.Rules`` of ``rules``."""
    out: list[Any] = []
    for rule in rules:
        entry: dict[str, Any] = {"Id": rule.rule_id, "Status": "Enabled"}
        if rule.prefix:
            entry["Prefix"] = rule.prefix
        if rule.transitions:
            entry["Transitions"] = [
                {"StorageClass": t.storage_class, "TransitionInDays": t.days}
                for t in rule.transitions
            ]
        if rule.abort_incomplete_multipart_days is not None:
            entry["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": rule.abort_incomplete_multipart_days
            }
        if rule.noncurrent_expiration_days is not None:
            entry["NoncurrentVersionExpiration"] = {
                "NoncurrentDays": rule.noncurrent_expiration_days
            }
        out.append(entry)
    return out


def s3_api_rules(rules: tuple[LifecycleRule, ...] = LIFECYCLE_RULES) -> list[Any]:
    """The ``PutBucketLifecycleConfiguration`` ``Rules`` of ``rules``."""
    out: list[Any] = []
    for rule in rules:
        entry: dict[str, Any] = {
            "ID": rule.rule_id,
            "Status": "Enabled",
            "Filter": {"Prefix": rule.prefix},
        }
        if rule.transitions:
            entry["Transitions"] = [
                {"Days": t.days, "StorageClass": t.storage_class} for t in rule.transitions
            ]
        if rule.abort_incomplete_multipart_days is not None:
            entry["AbortIncompleteMultipartUpload"] = {
                "DaysAfterInitiation": rule.abort_incomplete_multipart_days
            }
        if rule.noncurrent_expiration_days is not None:
            entry["NoncurrentVersionExpiration"] = {
                "NoncurrentDays": rule.noncurrent_expiration_days
            }
        out.append(entry)
    return out
