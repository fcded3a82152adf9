"""The media bucket's lifecycle rules in the template are exactly app.storage_rules."""

from __future__ import annotations

from app.storage_rules import LIFECYCLE_RULES, cloudformation_rules, s3_api_rules
from tests.infra.cfn import load


def test_the_video_buckets_lifecycle_rules_are_the_data_definition() -> None:
    bucket = load()["Resources"]["VideoBucket"]["Properties"]

    assert bucket["LifecycleConfiguration"]["Rules"] == cloudformation_rules()
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"  # noncurrent rule needs it


def test_originals_go_to_glacier_renditions_to_intelligent_tiering_and_parts_are_aborted() -> None:
    by_id = {rule["ID"]: rule for rule in s3_api_rules()}

    assert by_id["originals-to-glacier"]["Filter"] == {"Prefix": "uploads/"}
    assert by_id["originals-to-glacier"]["Transitions"] == [{"Days": 30, "StorageClass": "GLACIER"}]
    assert by_id["renditions-intelligent-tiering"]["Filter"] == {"Prefix": "videos/"}
    assert by_id["renditions-intelligent-tiering"]["Transitions"] == [
        {"Days": 0, "StorageClass": "INTELLIGENT_TIERING"}
    ]
    assert by_id["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 1
    }
    assert by_id["abort-incomplete-uploads"]["Filter"] == {"Prefix": ""}
    # posters/ stay in S3 Standard: small, public, read on every catalog page
    assert not any(rule.prefix == "posters/" for rule in LIFECYCLE_RULES)
