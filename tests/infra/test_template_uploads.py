"""The template's side of browser uploads: the bucket's CORS and what the admin pages may do."""

from __future__ import annotations

from typing import Any

from app.bucket_cors import s3_cors
from tests.infra.cfn import SCENARIOS, as_list, cycles, dependencies, load, resolve

RAW = load()


def _site_url() -> Any:
    """The front door's URL exactly as the template writes it (the app client's callback)."""
    client = RAW["Resources"]["UserPoolClient"]["Properties"]
    return client["LogoutURLs"]["Fn::If"][2][0]["Fn::Sub"][1]["Site"]


def test_the_bucket_cors_is_the_one_definition_for_the_sites_origin() -> None:
    cors = RAW["Resources"]["BucketCors"]["Properties"]
    assert cors["Bucket"] == {"Ref": "VideoBucket"}
    assert cors["CORSConfiguration"] == s3_cors(_site_url())


def test_the_site_url_is_the_custom_domain_or_the_distribution() -> None:
    site = _site_url()
    assert site["Fn::If"][0] == "HasCustomDomain"
    assert site["Fn::If"][1] == {"Fn::Sub": "https://${DomainName}"}
    assert site["Fn::If"][2] == {"Fn::Sub": "https://${Distribution.DomainName}"}


def test_applying_the_cors_after_the_distribution_makes_no_dependency_cycle() -> None:
    assert "CorsConfiguration" not in RAW["Resources"]["VideoBucket"]["Properties"]
    for overrides in SCENARIOS.values():
        assert not cycles(dependencies(resolve(RAW, overrides)))


def test_the_cors_function_may_only_set_this_buckets_cors() -> None:
    role = resolve(RAW, SCENARIOS["oai"])["Resources"]["BucketCorsRole"]
    (policy,) = role["Properties"]["Policies"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert statements["BucketCors"]["Action"] == "s3:PutBucketCORS"
    assert statements["BucketCors"]["Resource"] == {"Fn::GetAtt": ["VideoBucket", "Arn"]}
    # WriteTraces: tracing is Active by default, as for every function.
    assert set(statements) == {"WriteOwnLogs", "WriteTraces", "BucketCors"}


def test_the_admin_pages_write_uploads_captions_and_posters_only_where_they_belong() -> None:
    # Resolved: the X-Ray statement is an Fn::If on the Tracing parameter in the raw template.
    role = resolve(RAW, SCENARIOS["oai"])["Resources"]["AdminWebRole"]
    (policy,) = role["Properties"]["Policies"]
    s3 = [
        s for s in policy["PolicyDocument"]["Statement"]
        if any(str(a).startswith("s3:") for a in as_list(s["Action"]))
    ]  # fmt: skip
    resources = {s["Sid"]: s["Resource"]["Fn::Sub"] for s in s3}
    assert resources == {
        "BrowserUploads": "${VideoBucket.Arn}/uploads/*",
        "Captions": "${VideoBucket.Arn}/videos/*/hls/master.m3u8",
        "CaptionFiles": "${VideoBucket.Arn}/videos/*/hls/subs/*",
        "Posters": "${VideoBucket.Arn}/posters/*",
    }
    actions = {a for s in s3 for a in as_list(s["Action"])}
    assert not {"s3:ListBucket", "s3:PutBucketCORS", "s3:PutBucketPolicy"} & actions
