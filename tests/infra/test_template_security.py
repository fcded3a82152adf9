"""The security properties of infra/template.yaml, read from the template itself.

No AWS account is reachable, so what AWS would enforce is proven on the
template: who may read the bucket, what CloudFront serves without a
signature, what each function's role allows, that the tables are exactly
app/tables.py's and that each function gets exactly the environment
app/config.py reads. Each test runs against the deployments that matter
(``tests/infra/cfn.py`` SCENARIOS): OAI and OAC, a key rotation in progress,
a custom domain. Where each path of the one host goes, and where the functions
learn that host, is in test_template_front_door.py.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from app.config import VARIABLES, Need
from app.tables import TABLES, cloudformation_properties
from app.web.session_store import TOKENS_PURPOSE, token_context
from infra import render
from tests.infra.cfn import ROOT, SCENARIOS, TEMPLATE, as_list, load, of_type, resolve

RAW = load()
DEPLOYMENTS = {name: resolve(RAW, overrides) for name, overrides in SCENARIOS.items()}
ALL = pytest.mark.parametrize("deployment", sorted(DEPLOYMENTS))

CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
BUCKET_ORIGIN = "video-bucket"
SIGNED_PATHS = {"/videos/*"}
"""Behaviors of the bucket that need a signed URL or signed cookies."""
PUBLIC_BUCKET_PATHS = {"/posters/*"}
"""Behaviors of the bucket allowed to serve without a signature, and why: catalog posters."""
SERVED_PREFIXES = [
    {"Fn::Sub": "${VideoBucket.Arn}/videos/*"},
    {"Fn::Sub": "${VideoBucket.Arn}/posters/*"},
]
"""What CloudFront may read from the bucket: what those behaviors serve, nothing else."""

_XRAY = (
    "X-Ray defines no resource type for trace uploads: the Service Authorization Reference "
    "(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html) "
    "lists none for it, so the Lambda runtime's traces need '*' (Tracing=Active only)"
)
STAR_RESOURCE_ACTIONS: dict[str, str] = {
    "xray:PutTraceSegments": _XRAY,
    "xray:PutTelemetryRecords": _XRAY,
    "mediaconvert:Probe": "Probe has no resource type in IAM: only '*' is accepted",
}
"""IAM actions allowed on Resource "*", each with the reason it cannot name an ARN."""
WILDCARD_RESOURCES: dict[str, str] = {
    "${VideoBucket.Arn}/uploads/*": "originals: keys are made at upload time",
    "${VideoBucket.Arn}/videos/*": "renditions: keys are made per video by the job",
    "${VideoBucket.Arn}/posters/*": "posters: keys are made per video",
    "arn:${AWS::Partition}:mediaconvert:${AWS::Region}:${AWS::AccountId}:jobs/*": (
        "a job's id is made by CreateJob itself"
    ),
}
"""Resources that end in a wildcard, each a key or id prefix that cannot be known earlier."""

# Function -> the file whose ``Need.*`` names say what it reads from the environment, and
# the constant holding them there (None: every Need the file names). The handler modules are
# entry points of a few lines; their APIs load the settings. The web zip's two entry points
# build the app with create_app(pages=...), which loads the settings for those pages.
FUNCTION_SOURCES: dict[str, tuple[str, str | None]] = {
    "PlaybackFunction": ("app/http/viewer.py", "NEEDS"),
    "AdminFunction": ("app/http/admin.py", "NEEDS"),
    "TriggerFunction": ("lambda_handlers/cognito_triggers.py", None),
    "WebFunction": ("app/web/__init__.py", "VIEWER_NEEDS"),
    "AdminWebFunction": ("app/web/__init__.py", "ADMIN_NEEDS"),
    "IngestFunction": ("app/ingest.py", "NEEDS"),
    "PublishFunction": ("app/ingest.py", "NEEDS"),
    "StripeWebhookFunction": ("app/http/webhooks.py", "NEEDS"),
}
WEB_ENTRIES: dict[str, Literal["viewer", "admin"]] = {
    "WebFunction": "viewer",
    "AdminWebFunction": "admin",
}
"""Each web function, by the ``pages`` its entry module gives create_app."""


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return as_list(document["Statement"])


# --------------------------------------------------------------------------- S3


@ALL
def test_every_bucket_blocks_all_public_access(deployment: str) -> None:
    buckets = of_type(DEPLOYMENTS[deployment], "AWS::S3::Bucket")
    assert set(buckets) == {"VideoBucket", "LogBucket"}
    for name, bucket in buckets.items():
        block = bucket["Properties"]["PublicAccessBlockConfiguration"]
        assert block == {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }, name


@ALL
def test_every_bucket_is_encrypted_owner_enforced_and_tls_only(deployment: str) -> None:
    template = DEPLOYMENTS[deployment]
    policies = {
        p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"]
        for p in of_type(template, "AWS::S3::BucketPolicy").values()
    }
    for name, bucket in of_type(template, "AWS::S3::Bucket").items():
        props = bucket["Properties"]
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        denies = [s for s in _statements(policies[name]) if s["Effect"] == "Deny"]
        assert any(
            s["Principal"] == "*"
            and s["Action"] == "s3:*"
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in denies
        ), f"{name} has no TLS-only statement"


def _bucket_origin(deployment: str) -> dict[str, Any]:
    config = DEPLOYMENTS[deployment]["Resources"]["Distribution"]["Properties"][
        "DistributionConfig"
    ]
    (origin,) = [o for o in config["Origins"] if o["Id"] == BUCKET_ORIGIN]
    assert origin["DomainName"] == {"Fn::GetAtt": ["VideoBucket", "RegionalDomainName"]}
    return origin


def _video_bucket_allows(deployment: str) -> list[dict[str, Any]]:
    template = DEPLOYMENTS[deployment]
    (policy,) = [
        p for p in of_type(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": "VideoBucket"}
    ]  # fmt: skip
    return [
        s for s in _statements(policy["Properties"]["PolicyDocument"]) if s["Effect"] == "Allow"
    ]


@pytest.mark.parametrize("deployment", ["oai", "rotating", "custom-domain"])
def test_with_oai_the_bucket_policys_only_reader_is_the_origin_access_identity(
    deployment: str,
) -> None:
    (allow,) = _video_bucket_allows(deployment)
    assert allow["Principal"] == {
        "AWS": {
            "Fn::Sub": "arn:${AWS::Partition}:iam::cloudfront:user/"
            "CloudFront Origin Access Identity ${OriginAccessIdentity}"
        }
    }
    assert allow["Action"] == "s3:GetObject"
    assert allow["Resource"] == SERVED_PREFIXES
    template = DEPLOYMENTS[deployment]
    assert "OriginAccessIdentity" in template["Resources"]
    assert "OriginAccessControl" not in template["Resources"]
    origin = _bucket_origin(deployment)
    assert origin["S3OriginConfig"]["OriginAccessIdentity"] == {
        "Fn::Sub": "origin-access-identity/cloudfront/${OriginAccessIdentity}"
    }
    assert "OriginAccessControlId" not in origin


def test_with_oac_the_only_reader_is_cloudfront_for_this_distribution_alone() -> None:
    (allow,) = _video_bucket_allows("oac")
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert allow["Resource"] == SERVED_PREFIXES
    # Without the SourceArn condition any distribution, in any account, could read the bucket.
    assert allow["Condition"] == {
        "StringEquals": {
            "AWS:SourceArn": {
                "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}"
                ":distribution/${Distribution}"
            }
        }
    }
    template = DEPLOYMENTS["oac"]
    assert "OriginAccessIdentity" not in template["Resources"]
    oac = template["Resources"]["OriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert oac["SigningBehavior"] == "always"
    assert oac["SigningProtocol"] == "sigv4"
    assert oac["OriginAccessControlOriginType"] == "s3"
    origin = _bucket_origin("oac")
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["OriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"]["OriginAccessIdentity"] == ""


# --------------------------------------------------------------------------- CloudFront


def _behaviors(deployment: str) -> list[dict[str, Any]]:
    config = DEPLOYMENTS[deployment]["Resources"]["Distribution"]["Properties"][
        "DistributionConfig"
    ]
    return [config["DefaultCacheBehavior"], *config.get("CacheBehaviors", [])]


@ALL
def test_only_the_video_behavior_trusts_the_key_group_and_posters_alone_are_public(
    deployment: str,
) -> None:
    behaviors = _behaviors(deployment)
    from_bucket = {b.get("PathPattern") for b in behaviors if b["TargetOriginId"] == BUCKET_ORIGIN}
    # The default behavior (pages, /api) is the web app's; no other path reaches the bucket.
    assert from_bucket == SIGNED_PATHS | PUBLIC_BUCKET_PATHS
    for behavior in behaviors:
        assert "TrustedSigners" not in behavior  # legacy account key pairs: never
        if behavior.get("PathPattern") in SIGNED_PATHS:
            assert behavior["TrustedKeyGroups"] == [{"Ref": "SigningKeyGroup"}], behavior
        else:
            # A key group on a web path would refuse every page and API call without a grant.
            assert "TrustedKeyGroups" not in behavior, behavior.get("PathPattern")


@ALL
def test_the_bucket_serves_exactly_what_the_bucket_policy_lets_cloudfront_read(
    deployment: str,
) -> None:
    (allow,) = _video_bucket_allows(deployment)
    readable = {r["Fn::Sub"].removeprefix("${VideoBucket.Arn}") for r in allow["Resource"]}
    served = {
        b["PathPattern"] for b in _behaviors(deployment) if b["TargetOriginId"] == BUCKET_ORIGIN
    }
    assert readable == served


@ALL
def test_every_behavior_is_https_only_for_viewers(deployment: str) -> None:
    for behavior in _behaviors(deployment):
        assert behavior["ViewerProtocolPolicy"] in ("redirect-to-https", "https-only")


@ALL
def test_videos_cache_without_query_strings_so_signed_urls_share_cached_ranges(
    deployment: str,
) -> None:
    (videos,) = [b for b in _behaviors(deployment) if b.get("PathPattern") == "/videos/*"]
    assert videos["CachePolicyId"] == CACHING_OPTIMIZED
    assert "ForwardedValues" not in videos
    assert set(videos["AllowedMethods"]) <= {"GET", "HEAD", "OPTIONS"}


@ALL
def test_the_key_group_holds_exactly_the_filled_key_slots(deployment: str) -> None:
    template = DEPLOYMENTS[deployment]
    params = template["_parameters"]
    slots = [s for s in "AB" if params[f"SigningPublicKey{s}"]]
    items = template["Resources"]["SigningKeyGroup"]["Properties"]["KeyGroupConfig"]["Items"]
    assert items == [{"Ref": f"SigningPublicKeyResource{s}"} for s in slots]
    for slot in slots:
        key = template["Resources"][f"SigningPublicKeyResource{slot}"]
        assert key["Type"] == "AWS::CloudFront::PublicKey"
        assert key["Properties"]["PublicKeyConfig"]["EncodedKey"] == {
            "Ref": f"SigningPublicKey{slot}"
        }


@ALL
def test_playback_signs_with_the_active_slots_key_and_secret_together(deployment: str) -> None:
    template = DEPLOYMENTS[deployment]
    active = template["_parameters"]["ActiveSigningKey"]
    env = template["Resources"]["PlaybackFunction"]["Properties"]["Environment"]["Variables"]
    assert env["VIDGATE_KEY_PAIR_ID"] == {"Ref": f"SigningPublicKeyResource{active}"}
    assert env["VIDGATE_SIGNING_KEY_SECRET"] == {"Ref": f"SigningKeySecretArn{active}"}


@ALL
def test_tls_is_at_least_1_2_whenever_the_template_chooses_the_certificate(
    deployment: str,
) -> None:
    config = DEPLOYMENTS[deployment]["Resources"]["Distribution"]["Properties"][
        "DistributionConfig"
    ]
    certificate = config["ViewerCertificate"]
    if certificate.get("CloudFrontDefaultCertificate"):
        assert deployment != "custom-domain"
    else:
        assert certificate["MinimumProtocolVersion"] == "TLSv1.2_2021"
        assert certificate["SslSupportMethod"] == "sni-only"
    assert config["HttpVersion"] == "http2and3"


# --------------------------------------------------------------------------- IAM


def _role_statements(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each role's statements: its inline policies and the AWS::IAM::Policy resources on it."""
    result: dict[str, list[dict[str, Any]]] = {}
    for name, role in of_type(template, "AWS::IAM::Role").items():
        statements = []
        for policy in role["Properties"].get("Policies", []):
            statements += _statements(policy["PolicyDocument"])
        result[name] = statements
        assert not role["Properties"].get("ManagedPolicyArns"), f"{name}: managed policies grant *"
    for name, policy in of_type(template, "AWS::IAM::Policy").items():
        for role in as_list(policy["Properties"]["Roles"]):
            assert set(role) == {"Ref"}, f"{name}: attached to {role}"
            result[role["Ref"]] += _statements(policy["Properties"]["PolicyDocument"])
    return result


@ALL
def test_no_iam_statement_uses_a_wildcard_where_an_arn_is_known(deployment: str) -> None:
    for role, statements in _role_statements(DEPLOYMENTS[deployment]).items():
        for statement in statements:
            assert statement["Effect"] == "Allow"
            actions = as_list(statement["Action"])
            for action in actions:
                _service, _, verb = action.partition(":")
                assert verb and "*" not in verb, f"{role}: {action} is a wildcard action"
            resources = as_list(statement["Resource"])
            assert resources, f"{role}: {statement.get('Sid')} has no resource left"
            for resource in resources:
                if resource == "*":
                    unexplained = [a for a in actions if a not in STAR_RESOURCE_ACTIONS]
                    assert not unexplained, f"{role}: {unexplained} on Resource '*'"
                    continue
                # An ARN the template knows: an attribute, a reference or a built ARN.
                assert isinstance(resource, dict), f"{role}: literal resource {resource!r}"
                assert set(resource) <= {"Fn::GetAtt", "Fn::Sub", "Ref"}, resource
                if resource.get("Fn::Sub") in WILDCARD_RESOURCES:
                    continue
                text = json.dumps(resource)
                if OBJECTS_UNDER_A_FOLDER.fullmatch(str(resource.get("Fn::Sub", ""))):
                    continue  # object keys are made later: one folder of one bucket is the ARN
                elif str(resource.get("Fn::Sub", "")).startswith("${VideoBucket.Arn}/"):
                    # Objects under a prefix of our own bucket: keys are not known in advance.
                    text = json.dumps(resource["Fn::Sub"].split("/", 1)[0])
                assert "*" not in text.replace(":*", ""), f"{role}: {resource}"


OBJECTS_UNDER_A_FOLDER = re.compile(r"\$\{[A-Za-z]+Bucket\.Arn\}/[a-z0-9-]+(/[a-z0-9-]+)*/\*")
"""``${XBucket.Arn}/analytics/events/*``: the objects of one named folder, never the bucket's."""

SIGNING_ROLES = {"PlaybackRole", "WebRole"}
"""Roles of code that signs URLs: the viewer API, and the web app, whose watch page renews
grants through the same handler in-process (app.web.apigw.invoke_as)."""


def test_only_the_roles_that_sign_may_read_the_signing_key_and_only_it() -> None:
    template = DEPLOYMENTS["rotating"]
    statements = _role_statements(template)
    readers = {
        role
        for role, role_statements in statements.items()
        for statement in role_statements
        if any(a.startswith("secretsmanager:") for a in as_list(statement["Action"]))
        and "SigningKeySecretArnA" in json.dumps(statement["Resource"])
    }
    assert readers == SIGNING_ROLES
    for role in SIGNING_ROLES:
        reads = [
            s for s in statements[role] if "secretsmanager:GetSecretValue" in as_list(s["Action"])
        ]
        (signing,) = [s for s in reads if "SigningKeySecretArnA" in json.dumps(s["Resource"])]
        events_key = [s for s in reads if "ViewingEventsKey" in json.dumps(s["Resource"])]
        assert as_list(signing["Action"]) == ["secretsmanager:GetSecretValue"]
        # During a rotation both slots' secrets, and nothing else.
        assert signing["Resource"] == [
            {"Ref": "SigningKeySecretArnA"},
            {"Ref": "SigningKeySecretArnB"},
        ]
        # And, where the code emits viewing events, their HMAC key (docs/viewing-events.md#ve-2).
        for statement in events_key:
            assert as_list(statement["Action"]) == ["secretsmanager:GetSecretValue"]
            assert statement["Resource"] == {"Ref": "ViewingEventsKey"}
    assert len([s for s in statements["WebRole"] if s.get("Sid") == "ReadViewingEventsKey"]) == 1


STRIPE_SECRET_READERS = {
    "StripeSecretKey": {"WebRole"},
    "StripeWebhookSecret": {"StripeWebhookRole"},
}
"""The Stripe secrets: the API key for checkout (web pages), the signing secret for webhooks."""


def test_each_stripe_secret_is_read_by_its_one_role_and_every_secret_read_is_named() -> None:
    statements = _role_statements(DEPLOYMENTS["rotating"])
    for secret, roles in STRIPE_SECRET_READERS.items():
        readers = {
            role
            for role, role_statements in statements.items()
            for statement in role_statements
            if any(a.startswith("secretsmanager:") for a in as_list(statement["Action"]))
            and {"Ref": secret} in as_list(statement["Resource"])
        }
        assert readers == roles, secret
    for role_statements in statements.values():
        for statement in role_statements:
            if any(a.startswith("secretsmanager:") for a in as_list(statement["Action"])):
                assert as_list(statement["Action"]) == ["secretsmanager:GetSecretValue"]
                assert "*" not in json.dumps(statement["Resource"])


ENTITLEMENT_ATTRIBUTES = {"premium", "premium_until", "version"}
"""What a premium change writes on a user item (app/entitlements.py)."""
WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
          "dynamodb:BatchWriteItem", "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate",
          "dynamodb:PartiQLDelete"}  # fmt: skip
GUARDED_TABLES = {"UsersTable", "VideosTable", "AuditTable"}


@ALL
def test_the_internet_facing_roles_cannot_write_entitlements_the_audit_trail_or_the_catalog(
    deployment: str,
) -> None:
    """Only the admin roles write them; the viewer web role may create a user record whose
    attributes leave every entitlement attribute out (a condition IAM enforces)."""
    statements = _role_statements(DEPLOYMENTS[deployment])
    for role in ("WebRole", "PlaybackRole"):
        for statement in statements[role]:
            writes = set(as_list(statement["Action"])) & WRITES
            tables = {
                r["Fn::GetAtt"][0] for r in as_list(statement["Resource"])
                if isinstance(r, dict) and "Fn::GetAtt" in r
            } & GUARDED_TABLES  # fmt: skip
            if not writes or not tables:
                continue
            if role == "WebRole" and statement.get("Sid") == "RecordAdminPreview":
                # Admin previews are logged under video#<id> partitions only: no user's
                # partition (a Cognito sub has no "#"), so no premium audit record.
                assert (writes, tables) == ({"dynamodb:PutItem"}, {"AuditTable"}), statement
                assert statement["Condition"] == {
                    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["video#*"]}
                }
                continue
            assert (writes, tables) == ({"dynamodb:UpdateItem"}, {"UsersTable"}), statement
            condition = statement["Condition"]
            allowed = set(condition["ForAllValues:StringEquals"]["dynamodb:Attributes"])
            assert allowed and not allowed & ENTITLEMENT_ATTRIBUTES, allowed
            assert condition["Null"] == {"dynamodb:Attributes": "false"}
    writers = {
        role for role, role_statements in statements.items() for s in role_statements
        if set(as_list(s["Action"])) & WRITES and "Condition" not in s
        and {r["Fn::GetAtt"][0] for r in as_list(s["Resource"])
             if isinstance(r, dict) and "Fn::GetAtt" in r} & GUARDED_TABLES
    }  # fmt: skip
    # The Stripe webhook writes paid state and its audit records, after checking the signature.
    assert writers == {"AdminRole", "AdminWebRole", "StripeWebhookRole"}


@ALL
def test_each_function_has_its_own_role_and_a_log_group_with_retention(deployment: str) -> None:
    template = DEPLOYMENTS[deployment]
    roles = set()
    for name, function in of_type(template, "AWS::Serverless::Function").items():
        props = function["Properties"]
        role = props["Role"]["Fn::GetAtt"][0]
        assert role not in roles, f"{name} shares role {role}"
        roles.add(role)
        group = template["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        (log_statement,) = [
            s for s in _role_statements(template)[role] if s["Sid"] == "WriteOwnLogs"
        ]  # fmt: skip
        assert log_statement["Resource"] == {
            "Fn::GetAtt": [props["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]
        }


# --------------------------------------------------------------------------- KMS

ACCOUNT_ROOT = {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
WEB_ROLES = {"AWS": [{"Fn::GetAtt": ["WebRole", "Arn"]}, {"Fn::GetAtt": ["AdminWebRole", "Arn"]}]}
KMS_USE_ACTIONS = (
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateDataKeyPair",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:CreateGrant",
)
"""What reads or makes key material, or hands that right on (a grant)."""


def _session_key(deployment: str) -> dict[str, Any]:
    properties: dict[str, Any] = DEPLOYMENTS[deployment]["Resources"]["SessionTokensKey"][
        "Properties"
    ]
    return properties


@ALL
def test_only_the_web_roles_may_use_the_session_key_and_only_for_the_sessions_table(
    deployment: str,
) -> None:
    key = _session_key(deployment)
    assert (key["KeySpec"], key["KeyUsage"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert key["EnableKeyRotation"] is True
    statements = _statements(key["KeyPolicy"])
    assert all(s["Effect"] == "Allow" for s in statements)
    assert {json.dumps(s["Principal"], sort_keys=True) for s in statements} == {
        json.dumps(ACCOUNT_ROOT, sort_keys=True),
        json.dumps(WEB_ROLES, sort_keys=True),
    }
    (use,) = [s for s in statements if s["Principal"] == WEB_ROLES]
    assert sorted(as_list(use["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert use["Condition"] == {
        "StringEquals": {
            "kms:EncryptionContext:purpose": TOKENS_PURPOSE,
            "kms:EncryptionContext:table": {"Ref": "SessionsTable"},
        },
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["purpose", "table"]},
    }


@ALL
def test_the_account_administers_the_session_key_but_cannot_read_with_it(deployment: str) -> None:
    statements = _statements(_session_key(deployment)["KeyPolicy"])
    for statement in statements:
        if statement["Principal"] != ACCOUNT_ROOT:
            continue
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{action}: the administrators' actions are listed"
            used = [u for u in KMS_USE_ACTIONS if fnmatch.fnmatchcase(u, action)]
            assert not used, f"{action} would let IAM policies grant {used}"
        assert "kms:PutKeyPolicy" in as_list(statement["Action"]), "never an unmanageable key"


def test_the_key_policy_condition_is_the_encryption_context_the_code_sends() -> None:
    (use,) = [
        s for s in _statements(_session_key("oai")["KeyPolicy"]) if s["Principal"] == WEB_ROLES
    ]
    sent = token_context("the-table")
    assert set(use["Condition"]["StringEquals"]) == {f"kms:EncryptionContext:{k}" for k in sent}
    assert use["Condition"]["StringEquals"]["kms:EncryptionContext:purpose"] == sent["purpose"]
    assert (
        sorted(sent) == use["Condition"]["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"]
    )


@ALL
def test_no_iam_role_policy_grants_a_kms_action(deployment: str) -> None:
    # The key policy is the one place that decides who uses the key.
    for role, statements in _role_statements(DEPLOYMENTS[deployment]).items():
        for statement in statements:
            kms = [a for a in as_list(statement["Action"]) if a.startswith("kms:")]
            assert not kms, f"{role}: {kms}"


@ALL
def test_the_web_function_names_the_session_key_by_its_arn(deployment: str) -> None:
    env = DEPLOYMENTS[deployment]["Resources"]["WebFunction"]["Properties"]["Environment"]
    assert env["Variables"]["VIDGATE_SESSION_KEY_ID"] == {"Fn::GetAtt": ["SessionTokensKey", "Arn"]}


# --------------------------------------------------------------------------- tables


def test_the_template_tables_are_exactly_app_tables_definitions() -> None:
    tables = of_type(RAW, "AWS::DynamoDB::Table")
    assert set(tables) == {render.TABLE_RESOURCES[logical] for logical in TABLES}
    for logical in TABLES:
        resource = tables[render.TABLE_RESOURCES[logical]]
        assert resource["Properties"] == cloudformation_properties(logical, render.TABLE_NAME_REF)


def test_the_generated_table_block_is_current() -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    assert render.render_template(text) == text, "run: python infra/render.py"


def test_tables_are_on_demand_recoverable_encrypted_and_sessions_expire() -> None:
    for name, table in of_type(RAW, "AWS::DynamoDB::Table").items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", name
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"]["SSEEnabled"] is True
    sessions = RAW["Resources"]["SessionsTable"]["Properties"]
    assert sessions["TimeToLiveSpecification"]["Enabled"] is True


def test_render_refuses_a_template_without_markers() -> None:
    with pytest.raises(render.TemplateLayoutError):
        render.render_template("Resources: {}\n")


# --------------------------------------------------------------------------- environment


def _needs_named_in(path: Path, constant: str | None = None) -> set[Need]:
    """The ``Need.X`` members a source file mentions (its ``load_settings`` needs), or, with
    ``constant``, those in the module-level assignment of that name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    scope: ast.AST = tree
    if constant is not None:
        (scope,) = [
            node.value for node in tree.body
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
            and constant in {t.id for t in _targets(node) if isinstance(t, ast.Name)}
        ]  # fmt: skip
    return {
        Need[node.attr]
        for node in ast.walk(scope)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Need"
        and node.attr in Need.__members__
    }


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return node.targets if isinstance(node, ast.Assign) else [node.target]


def test_the_web_entry_points_build_the_pages_whose_needs_the_template_meets() -> None:
    from app.web import NEEDS_OF

    for function, pages in WEB_ENTRIES.items():
        handler = RAW["Resources"][function]["Properties"]["Handler"]
        source = ROOT / (handler.rsplit(".", 1)[0].replace(".", "/") + ".py")
        assert f'create_app(pages="{pages}")' in source.read_text(encoding="utf-8"), source
        path, constant = FUNCTION_SOURCES[function]
        assert NEEDS_OF[pages] == _needs_named_in(ROOT / path, constant), function


@pytest.mark.parametrize("function", sorted(FUNCTION_SOURCES))
@ALL
def test_each_function_gets_exactly_the_variables_its_code_reads(
    function: str, deployment: str
) -> None:
    path, constant = FUNCTION_SOURCES[function]
    source = ROOT / path
    needs = _needs_named_in(source, constant)
    assert needs, f"{source} names no Need.*"
    env = DEPLOYMENTS[deployment]["Resources"][function]["Properties"]["Environment"]["Variables"]
    unknown = set(env) - set(VARIABLES)
    assert not unknown, f"{function}: variables app/config.py does not read: {unknown}"
    required = {name for name, (need, req, _) in VARIABLES.items() if need in needs and req}
    assert required <= set(env), f"{function}: missing {required - set(env)}"
    foreign = {name for name in env if VARIABLES[name][0] not in needs}
    assert not foreign, f"{function}: gets variables of needs it does not have: {foreign}"


@pytest.mark.parametrize("function", sorted(WEB_ENTRIES))
def test_the_web_secret_key_is_generated_and_resolved_never_a_literal(function: str) -> None:
    # One secret for both web functions: they check the CSRF tokens of the same sessions.
    # (Pinned to a version while rotating: tests/infra/test_template_operations.py.)
    env = DEPLOYMENTS["oai"]["Resources"][function]["Properties"]["Environment"]["Variables"]
    assert env["VIDGATE_SECRET_KEY"] == {
        "Fn::Sub": "{{resolve:secretsmanager:${WebSecretKey}:SecretString}}"
    }
    secret = RAW["Resources"]["WebSecretKey"]["Properties"]["GenerateSecretString"]
    assert secret["PasswordLength"] >= 32


# --------------------------------------------------------------------------- Cognito


def test_the_user_pool_signs_in_by_email_with_a_strong_password_policy() -> None:
    pool = RAW["Resources"]["UserPool"]["Properties"]
    assert "email" in pool["AliasAttributes"]
    policy = pool["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12
    assert all(
        policy[k]
        for k in ("RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols")
    )
    assert pool["LambdaConfig"]["PostConfirmation"] == {"Fn::GetAtt": ["TriggerFunction", "Arn"]}
    permission = RAW["Resources"]["TriggerInvokePermission"]["Properties"]
    assert permission["Principal"] == "cognito-idp.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["UserPool", "Arn"]}
    assert permission["FunctionName"] == {"Fn::GetAtt": ["TriggerFunction", "Arn"]}
    group = RAW["Resources"]["AdminGroup"]["Properties"]
    assert group["GroupName"] == "admin"


def test_the_app_client_is_public_uses_the_code_flow_and_can_revoke_tokens() -> None:
    client = RAW["Resources"]["UserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is False
    assert set(client["ExplicitAuthFlows"]) == {
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
    }
    assert client["AllowedOAuthFlows"] == ["code"]
    # Its callback and sign-out URLs: test_template_front_door.py (the site's own URL).
    assert client["EnableTokenRevocation"] is True
    assert client["PreventUserExistenceErrors"] == "ENABLED"


# --------------------------------------------------------------------------- Lambda code


def _import_time_imports(tree: ast.Module) -> Iterator[str]:
    """Modules imported when the module itself is imported (function bodies run later)."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        pending.extend(ast.iter_child_nodes(node))


def test_no_lambda_handler_or_core_module_imports_flask_or_the_local_stack() -> None:
    # Importing a handler must not pull Flask or the local stack, neither of which
    # is in the handler artifact (tests/infra/test_package.py runs it without them).
    forbidden = re.compile(r"^(flask|werkzeug|jinja2|moto|app\.web|app\.local)(\.|$)")
    files = sorted((ROOT / "lambda_handlers").glob("*.py")) + sorted((ROOT / "app").glob("*.py"))
    # Operator tools run on a workstation (the vidgate CLI), never in a Lambda.
    operator_tools = {"cli.py", "keys_admin.py", "admin_cli.py", "uploads.py"}
    for path in files:
        if path.name in operator_tools:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name in _import_time_imports(tree):
            assert not forbidden.match(name), f"{path.relative_to(ROOT)} imports {name}"


def test_every_parameter_and_output_is_documented() -> None:
    for section in ("Parameters", "Outputs"):
        for name, body in RAW[section].items():
            assert len(body.get("Description", "")) > 10, f"{section}.{name}"
