"""The template's operations block and the deployable artefact, proven offline.

Alarms: every alarm notifies ``AlarmTopic``; every function, table and
dead-letter queue the template holds has its alarms (generic: resources other
parts add are held to the same rule). The dashboard renders to valid JSON and
shows the metrics :mod:`app.metrics` writes. The first admin, TOTP MFA, SES
e-mail, X-Ray and the web secret key's version pin, per parameter. The
artefact: IAM policy documents pass parliament (each suppression justified and
used), the packaged template and its SAM transform stay well inside
CloudFormation's size and resource quotas, and ``sam validate --lint`` passes
where the SAM CLI is installed.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import metrics
from infra import package
from tests.infra.cfn import (
    BASE,
    SCENARIOS,
    TEMPLATE,
    as_list,
    load,
    of_type,
    render,
    resolve,
    rule_failures,
    sam_transform,
)
from tests.infra.deployable import deployment_values, policy_documents

RAW = load()
OPERATIONS = {
    **BASE,
    "AdminEmail": "ops@example.com",
    "AdminUsername": "firstadmin",
    "AdminMfa": "TOTP",
    "SignInWith": "hosted-ui",
    "SesIdentityArn": "arn:aws:ses:us-east-1:123456789012:identity/example.com",
    "SesFromAddress": "vidgate <no-reply@example.com>",
    "AlarmEmail": "oncall@example.com",
    "Tracing": "PassThrough",
    "WebSecretKeyVersionId": "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
}
ALL_SCENARIOS = {**SCENARIOS, "operations": OPERATIONS}
DEPLOYMENTS = {name: resolve(RAW, overrides) for name, overrides in ALL_SCENARIOS.items()}
EACH = pytest.mark.parametrize("deployment", sorted(DEPLOYMENTS))

# CloudFormation quotas (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html).
TEMPLATE_BODY_LIMIT = 51_200  # bytes, a template passed inline (TemplateBody)
TEMPLATE_URL_LIMIT = 1_000_000  # bytes, a template read from S3 (TemplateURL)
RESOURCE_LIMIT = 500
HEADROOM = 0.8  # fail the build at 80 % of a quota, long before a deploy would


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return of_type(template, "AWS::CloudWatch::Alarm")


def watched(alarm: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric name, dimensions) of each metric an alarm reads."""
    props = alarm["Properties"]
    if "MetricName" in props:
        dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        yield props["Namespace"], props["MetricName"], dims
    for query in props.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            yield metric["Namespace"], metric["MetricName"], dims


# --------------------------------------------------------------------------- alarms


@EACH
def test_every_alarm_notifies_the_alarm_topic_when_it_fires_and_when_it_clears(
    deployment: str,
) -> None:
    found = alarms(DEPLOYMENTS[deployment])
    assert len(found) >= 10
    for name, alarm in found.items():
        props = alarm["Properties"]
        assert {"Ref": "AlarmTopic"} in as_list(props.get("AlarmActions")), name
        assert {"Ref": "AlarmTopic"} in as_list(props.get("OKActions")), name
        assert props.get("TreatMissingData") == "notBreaching", f"{name}: no traffic is no alarm"
        assert props.get("AlarmDescription"), name


def test_the_alarm_email_is_subscribed_exactly_when_given() -> None:
    subscriptions = of_type(DEPLOYMENTS["operations"], "AWS::SNS::Subscription")
    (subscription,) = subscriptions.values()
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    assert not of_type(DEPLOYMENTS["oai"], "AWS::SNS::Subscription")


def test_only_this_accounts_cloudwatch_alarms_may_publish_to_the_topic() -> None:
    (policy,) = of_type(DEPLOYMENTS["oai"], "AWS::SNS::TopicPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    values = deployment_values(DEPLOYMENTS["oai"], SCENARIOS["oai"])
    condition = render(statement["Condition"], values)
    assert condition == {
        "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*"}
    }


def custom_resource_functions(template: dict[str, Any]) -> set[str]:
    """Functions some custom resource names as its ServiceToken."""
    return {
        props["ServiceToken"]["Fn::GetAtt"][0]
        for resource in template["Resources"].values()
        if resource["Type"].startswith("Custom::")
        and "Fn::GetAtt" in (props := resource.get("Properties", {})).get("ServiceToken", {})
    }


def missing_function_alarms(template: dict[str, Any]) -> set[str]:
    """Functions lacking an Errors or a Throttles alarm (on their own FunctionName).

    A custom resource's function is exempt: only CloudFormation invokes it, during a
    deploy, and its failure (or its silence) is that deploy's failure, shown to whoever
    deploys; an alarm on it would only repeat that later.
    """
    covered = {
        (metric, dims.get("FunctionName", {}).get("Ref"))
        for alarm in alarms(template).values()
        for namespace, metric, dims in watched(alarm)
        if namespace == "AWS/Lambda"
    }
    functions = set(of_type(template, "AWS::Serverless::Function")) | set(
        of_type(template, "AWS::Lambda::Function")
    )
    return {
        f"{function} {metric}"
        for function in functions - custom_resource_functions(template)
        for metric in ("Errors", "Throttles")
        if (metric, function) not in covered
    }


def missing_table_alarms(template: dict[str, Any]) -> set[str]:
    """Tables lacking an alarm on both their read and their write throttle events."""
    covered = {
        (metric, dims.get("TableName", {}).get("Ref"))
        for alarm in alarms(template).values()
        for namespace, metric, dims in watched(alarm)
        if namespace == "AWS/DynamoDB"
    }
    return {
        f"{table} {metric}"
        for table in of_type(template, "AWS::DynamoDB::Table")
        for metric in ("ReadThrottleEvents", "WriteThrottleEvents")
        if (metric, table) not in covered
    }


def dead_letter_queues(template: dict[str, Any]) -> set[str]:
    """Queues some RedrivePolicy (or event source) sends failures to, or named ``*DLQ``."""
    queues = set(of_type(template, "AWS::SQS::Queue"))
    named = {q for q in queues if q.upper().endswith("DLQ")}
    targets = set()
    text = json.dumps(template["Resources"])
    for queue in queues:
        if f'"deadLetterTargetArn": {{"Fn::GetAtt": ["{queue}", "Arn"]}}' in text:
            targets.add(queue)
    return named | targets


def missing_dlq_alarms(template: dict[str, Any]) -> set[str]:
    """Dead-letter queues without an alarm on ApproximateNumberOfMessagesVisible."""
    covered = {
        dims.get("QueueName", {}).get("Fn::GetAtt", [None])[0]
        for alarm in alarms(template).values()
        for namespace, metric, dims in watched(alarm)
        if (namespace, metric) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    }
    return dead_letter_queues(template) - covered


@EACH
def test_every_function_has_an_errors_and_a_throttles_alarm(deployment: str) -> None:
    assert missing_function_alarms(DEPLOYMENTS[deployment]) == set()


@EACH
def test_every_table_has_a_throttle_alarm(deployment: str) -> None:
    assert missing_table_alarms(DEPLOYMENTS[deployment]) == set()


@EACH
def test_every_dead_letter_queue_has_a_depth_alarm(deployment: str) -> None:
    assert missing_dlq_alarms(DEPLOYMENTS[deployment]) == set()


def test_the_coverage_checks_find_what_lacks_an_alarm() -> None:
    template = copy.deepcopy(DEPLOYMENTS["oai"])
    resources = template["Resources"]
    resources["ExtraFunction"] = {"Type": "AWS::Serverless::Function", "Properties": {}}
    resources["ExtraTable"] = {"Type": "AWS::DynamoDB::Table", "Properties": {}}
    resources["SetupFunction"] = {"Type": "AWS::Lambda::Function", "Properties": {}}
    resources["Setup"] = {
        "Type": "Custom::Setup",
        "Properties": {"ServiceToken": {"Fn::GetAtt": ["SetupFunction", "Arn"]}},
    }
    # A name the template does not hold (its own IngestDLQ has its alarm).
    resources["ExtraDLQ"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    resources["Failures"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    resources["Ingest"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": ["Failures", "Arn"]},
                "maxReceiveCount": 5,
            }
        },
    }
    assert missing_function_alarms(template) == {"ExtraFunction Errors", "ExtraFunction Throttles"}
    assert missing_table_alarms(template) == {
        "ExtraTable ReadThrottleEvents",
        "ExtraTable WriteThrottleEvents",
    }
    assert missing_dlq_alarms(template) == {"ExtraDLQ", "Failures"}
    # The documented pattern (docs/observability.md) covers a queue with its name only.
    resources["ExtraDLQDepthAlarm"] = dlq_alarm("ExtraDLQ")
    resources["FailuresDepthAlarm"] = dlq_alarm("Failures")
    assert missing_dlq_alarms(template) == set()


def dlq_alarm(queue: str) -> dict[str, Any]:
    """The depth alarm docs/observability.md gives for a dead-letter queue."""
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": f"{queue}: messages waiting in a dead-letter queue",
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}],
            "Statistic": "Maximum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "AlarmTopic"}],
            "OKActions": [{"Ref": "AlarmTopic"}],
        },
    }


def test_the_documented_dlq_alarm_is_the_one_the_coverage_check_accepts() -> None:
    text = (TEMPLATE.parents[1] / "docs" / "observability.md").read_text(encoding="utf-8")
    for line in (
        "MetricName: ApproximateNumberOfMessagesVisible",
        "Value: !GetAtt IngestDLQ.QueueName",
        "AlarmActions: [!Ref AlarmTopic]",
        "OKActions: [!Ref AlarmTopic]",
        "TreatMissingData: notBreaching",
    ):
        assert line in text, line


def test_unavailable_refusals_alarm_on_the_metric_the_playback_code_writes() -> None:
    alarm = alarms(DEPLOYMENTS["oai"])["GrantsUnavailableAlarm"]
    ((namespace, metric, dims),) = watched(alarm)
    assert namespace == metrics.NAMESPACE
    assert metric == metrics.REFUSALS
    assert dims == {"Service": metrics.SERVICE, "Reason": "unavailable"}


def test_the_api_5xx_alarm_is_a_rate_of_this_apis_requests() -> None:
    props = alarms(DEPLOYMENTS["oai"])["Api5xxRateAlarm"]["Properties"]
    read = {metric: dims for _, metric, dims in watched({"Properties": props})}
    assert read == {"5xx": {"ApiId": {"Ref": "HttpApi"}}, "Count": {"ApiId": {"Ref": "HttpApi"}}}
    (expression,) = [q for q in props["Metrics"] if "Expression" in q]
    assert expression["ReturnData"] is True
    assert "errors / requests" in expression["Expression"]


def test_the_waf_spike_alarm_exists_only_where_the_stack_owns_its_web_acl() -> None:
    with_acl = alarms(DEPLOYMENTS["oai"])
    assert "WafBlockedSpikeAlarm" in with_acl
    given = resolve(
        RAW,
        {**BASE, "WebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/x/0a1b2c3d"},
    )
    assert "WafBlockedSpikeAlarm" not in alarms(given)
    props = with_acl["WafBlockedSpikeAlarm"]["Properties"]
    assert props["ComparisonOperator"] == "GreaterThanUpperThreshold"
    ((_, metric, dims),) = watched({"Properties": props})
    assert metric == "BlockedRequests"
    assert dims["Rule"] == "ALL"
    web_acl = DEPLOYMENTS["oai"]["Resources"]["WebAcl"]["Properties"]["Name"]
    assert dims["WebACL"] == web_acl


# --------------------------------------------------------------------------- dashboard


@EACH
def test_the_dashboard_renders_to_json_with_the_playback_metrics(deployment: str) -> None:
    template = DEPLOYMENTS[deployment]
    values = deployment_values(template, ALL_SCENARIOS[deployment])
    (dashboard,) = of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(render(dashboard["Properties"]["DashboardBody"], values))
    widgets = body["widgets"]
    assert len(widgets) >= 8
    text = json.dumps(body)
    for name in (metrics.GRANTS, metrics.RENEWALS, metrics.REFUSALS, metrics.LATENCY):
        assert f'"{name}"' in text or f'MetricName=\\"{name}\\"' in text, name
    for widget in widgets:
        assert {"type", "x", "y", "width", "height", "properties"} <= set(widget)
        assert widget["x"] + widget["width"] <= 24
    alarm_widgets = [w for w in widgets if w["type"] == "alarm"]
    assert alarm_widgets and all(w["properties"]["alarms"] for w in alarm_widgets)


# --------------------------------------------------------------------------- Cognito


def test_the_first_admin_is_created_in_the_admin_group_from_the_parameter() -> None:
    resources = DEPLOYMENTS["operations"]["Resources"]
    user = resources["AdminUser"]["Properties"]
    assert user["Username"] == {"Ref": "AdminUsername"}
    assert user["DesiredDeliveryMediums"] == ["EMAIL"]
    assert "TemporaryPassword" not in user, "Cognito makes the password and e-mails it"
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert attributes == {"email": {"Ref": "AdminEmail"}, "email_verified": "true"}
    attachment = resources["AdminUserInAdminGroup"]["Properties"]
    assert attachment == {
        "UserPoolId": {"Ref": "UserPool"},
        "GroupName": {"Ref": "AdminGroup"},
        "Username": {"Ref": "AdminUser"},
    }
    assert resources["AdminGroup"]["Properties"]["GroupName"] == "admin"


def test_without_an_admin_email_no_user_is_created() -> None:
    resources = DEPLOYMENTS["oai"]["Resources"]
    assert "AdminUser" not in resources and "AdminUserInAdminGroup" not in resources


@pytest.mark.parametrize("username", ["admin", "first.admin", "ops-1"])
def test_admin_usernames_are_plain_names(username: str) -> None:
    assert re.fullmatch(RAW["Parameters"]["AdminUsername"]["AllowedPattern"], username)


@pytest.mark.parametrize("username", ["ops@example.com", "A", "Admin", ""])
def test_an_email_shaped_or_odd_admin_username_is_refused(username: str) -> None:
    assert not re.fullmatch(RAW["Parameters"]["AdminUsername"]["AllowedPattern"], username)


def test_totp_is_offered_by_the_pool_only_with_the_parameter() -> None:
    with_totp = DEPLOYMENTS["operations"]["Resources"]["UserPool"]["Properties"]
    assert with_totp["MfaConfiguration"] == "OPTIONAL"
    assert with_totp["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    without = DEPLOYMENTS["oai"]["Resources"]["UserPool"]["Properties"]
    assert without["MfaConfiguration"] == "OFF"
    assert "EnabledMfas" not in without


def test_totp_needs_the_hosted_ui_which_can_ask_for_the_code() -> None:
    assert rule_failures(RAW, {**OPERATIONS, "SignInWith": "form"}) == [
        "AdminMfa is TOTP, so SignInWith must be hosted-ui (it asks for the code)."
    ]
    assert rule_failures(RAW, OPERATIONS) == []


@pytest.mark.parametrize(
    ("function", "role"), [("AdminFunction", "AdminRole"), ("AdminWebFunction", "AdminWebRole")]
)
def test_with_totp_the_admin_functions_check_it_and_may_read_the_users_mfa(
    function: str, role: str
) -> None:
    def wiring(template: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
        resources = template["Resources"]
        env = resources[function]["Properties"]["Environment"]["Variables"]
        statements = [
            s
            for p in resources[role]["Properties"]["Policies"]
            for s in as_list(p["PolicyDocument"]["Statement"])
            if "cognito-idp:AdminGetUser" in as_list(s["Action"])
        ]
        return env.get("VIDGATE_ADMIN_MFA"), statements

    mfa, statements = wiring(DEPLOYMENTS["operations"])
    assert mfa == "totp"
    (statement,) = statements
    assert as_list(statement["Action"]) == ["cognito-idp:AdminGetUser"]
    assert statement["Resource"] == {"Fn::GetAtt": ["UserPool", "Arn"]}
    assert wiring(DEPLOYMENTS["oai"]) == (None, [])


def test_cognito_sends_through_ses_when_an_identity_is_given_else_its_own() -> None:
    ses = DEPLOYMENTS["operations"]["Resources"]["UserPool"]["Properties"]["EmailConfiguration"]
    assert ses == {
        "EmailSendingAccount": "DEVELOPER",
        "SourceArn": {"Ref": "SesIdentityArn"},
        "From": {"Ref": "SesFromAddress"},
    }
    default = DEPLOYMENTS["oai"]["Resources"]["UserPool"]["Properties"]["EmailConfiguration"]
    assert default == {"EmailSendingAccount": "COGNITO_DEFAULT"}


# --------------------------------------------------------------------------- X-Ray


def transformed_and_resolved(overrides: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The SAM transform's resources for ``overrides`` (conditions applied) and their values."""
    template = resolve(sam_transform(overrides), overrides)
    return template["Resources"], deployment_values(template, overrides)


def test_tracing_is_active_by_default_with_the_roles_allowed_to_send_traces() -> None:
    transformed, values = transformed_and_resolved(SCENARIOS["oai"])
    functions = {n: r for n, r in transformed.items() if r["Type"] == "AWS::Lambda::Function"}
    assert functions
    for name, function in functions.items():
        assert render(function["Properties"]["TracingConfig"], values) == {"Mode": "Active"}, name
        role = transformed[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        policies = role["Properties"]["Policies"]
        statements = [s for p in policies for s in as_list(p["PolicyDocument"]["Statement"])]
        actions = {a for s in statements for a in as_list(s["Action"])}
        assert {"xray:PutTraceSegments", "xray:PutTelemetryRecords"} <= actions, name


def test_pass_through_tracing_drops_the_trace_permission() -> None:
    transformed, values = transformed_and_resolved({**BASE, "Tracing": "PassThrough"})
    for name, resource in transformed.items():
        if resource["Type"] == "AWS::Lambda::Function":
            mode = render(resource["Properties"]["TracingConfig"], values)
            assert mode == {"Mode": "PassThrough"}, name
    assert "xray:" not in json.dumps(transformed)


# --------------------------------------------------------------------------- web secret key


@pytest.mark.parametrize("function", ["WebFunction", "AdminWebFunction"])
def test_a_web_secret_key_version_changes_the_reference_so_a_deploy_rereads_it(
    function: str,
) -> None:
    def reference(overrides: dict[str, str]) -> str:
        template = resolve(RAW, overrides)
        env = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        rendered: str = render(env["VIDGATE_SECRET_KEY"], deployment_values(template, overrides))
        return rendered

    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:vidgate-WebSecretKey-AbCdEf"
    unpinned = reference(BASE)
    assert unpinned == f"{{{{resolve:secretsmanager:{secret}:SecretString}}}}"
    first = reference({**BASE, "WebSecretKeyVersionId": "11111111-2222-3333-4444-555555555555"})
    second = reference({**BASE, "WebSecretKeyVersionId": "66666666-7777-8888-9999-000000000000"})
    # secret-id:SecretString:json-key:version-stage:version-id, key and stage empty.
    assert first == (
        f"{{{{resolve:secretsmanager:{secret}:SecretString:::11111111-2222-3333-4444-555555555555}}}}"
    )
    # Each version is a new text, so CloudFormation resolves it again.
    assert len({unpinned, first, second}) == 3


# --------------------------------------------------------------------------- IAM: parliament

# Findings parliament reports that are right for this kind of document, each with why.
PARLIAMENT_SUPPRESSIONS: dict[tuple[str, str], str] = {
    ("AssumeRolePolicyDocument", "MALFORMED"): (
        "a role's trust policy names a Principal and no Resource (the role itself is the "
        "resource; https://docs.aws.amazon.com/IAM/latest/UserGuide/"
        "reference_policies_elements_resource.html); parliament reads every document as an "
        "identity policy"
    ),
    ("KeyPolicy", "RESOURCE_STAR"): (
        'in a key policy "Resource": "*" means this key and no other '
        "(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html)"
    ),
}


# Real IAM actions newer than parliament's bundled IAM definitions, each with where it is listed.
NEWER_THAN_PARLIAMENT: dict[str, str] = {
    "mediaconvert:Probe": (
        "MediaConvert's Probe API (2024); https://docs.aws.amazon.com/service-authorization/"
        "latest/reference/list_awselementalmediaconvert.html lists the action"
    ),
}


def parliament_findings() -> tuple[list[str], set[tuple[str, str]]]:
    """(unsuppressed findings, suppressions that matched) over every scenario's policies."""
    from parliament import analyze_policy_string

    unsuppressed: list[str] = []
    used: set[tuple[str, str]] = set()
    for deployment, template in DEPLOYMENTS.items():
        values = deployment_values(template, ALL_SCENARIOS[deployment])
        for where, document in policy_documents(template):
            policy = analyze_policy_string(json.dumps(render(document, values)))
            for finding in policy.findings:
                key = (where.rsplit(".", 1)[-1], finding.issue)
                newer = [a for a in NEWER_THAN_PARLIAMENT if a in str(finding.detail)]
                if finding.issue == "UNKNOWN_ACTION" and newer:
                    used.update(("UNKNOWN_ACTION", a) for a in newer)
                elif key in PARLIAMENT_SUPPRESSIONS:
                    used.add(key)
                else:
                    unsuppressed.append(f"{deployment} {where}: {finding.issue} {finding.detail}")
    return unsuppressed, used


def test_every_iam_policy_document_passes_parliament() -> None:
    unsuppressed, used = parliament_findings()
    assert unsuppressed == []
    expected = set(PARLIAMENT_SUPPRESSIONS) | {("UNKNOWN_ACTION", a) for a in NEWER_THAN_PARLIAMENT}
    assert used == expected, "a suppression no finding needs is stale"


def test_parliament_finds_a_bad_action_and_a_mistyped_resource() -> None:
    from parliament import analyze_policy_string

    bad = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "dynamodb:GetItems", "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/users",
            },
        ],
    }
    issues = {f.issue for f in analyze_policy_string(json.dumps(bad)).findings}
    assert {"UNKNOWN_ACTION", "RESOURCE_MISMATCH"} <= issues


def test_every_policy_document_is_found() -> None:
    found = {where for where, _ in policy_documents(DEPLOYMENTS["oac"])}
    roles = of_type(DEPLOYMENTS["oac"], "AWS::IAM::Role")
    for role in roles:
        assert f"{role}.AssumeRolePolicyDocument" in found
        assert any(w.startswith(f"{role}.Policies[") for w in found), role
    for kind in ("AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy", "AWS::KMS::Key"):
        for name in of_type(DEPLOYMENTS["oac"], kind):
            assert any(w.startswith(f"{name}.") for w in found), name


# --------------------------------------------------------------------------- size and count


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template `make package` writes and the docs deploy (arm64; x86_64 differs by bytes)."""
    return package.deploy_template("arm64", out_dir=tmp_path_factory.mktemp("package"))


def test_the_packaged_template_stays_well_inside_the_s3_template_limit(packaged: Path) -> None:
    size = packaged.stat().st_size
    assert size <= HEADROOM * TEMPLATE_URL_LIMIT, (
        f"{size} bytes: past {HEADROOM:.0%} of CloudFormation's {TEMPLATE_URL_LIMIT}-byte limit "
        "for a template in S3; split into nested stacks (docs/deploy.md)"
    )


def test_a_template_past_the_inline_limit_is_deployed_through_s3_by_every_documented_command(
    packaged: Path,
) -> None:
    if packaged.stat().st_size <= HEADROOM * TEMPLATE_BODY_LIMIT:
        pytest.skip("the template would fit inline")
    docs = TEMPLATE.parents[1] / "docs"
    commands = []
    for path in [*docs.glob("*.md"), TEMPLATE.parents[1] / "README.md"]:
        text = path.read_text(encoding="utf-8").replace("\\\n", " ")
        commands += [
            (path.name, line) for line in text.splitlines() if line.strip().startswith("sam deploy")
        ]
    assert commands
    for name, line in commands:
        assert "--resolve-s3" in line or "--s3-bucket" in line, f"{name}: {line}"


@pytest.mark.parametrize("scenario", ["oai", "operations"])
def test_the_transformed_template_stays_inside_the_size_and_resource_quotas(scenario: str) -> None:
    transformed = sam_transform(ALL_SCENARIOS[scenario])
    size = len(json.dumps(transformed, separators=(",", ":")).encode("utf-8"))
    assert size <= HEADROOM * TEMPLATE_URL_LIMIT, f"{size} bytes after the SAM transform"
    count = len(transformed["Resources"])
    assert count <= HEADROOM * RESOURCE_LIMIT, (
        f"{count} resources: past {HEADROOM:.0%} of CloudFormation's {RESOURCE_LIMIT} per stack"
    )


def test_the_transformed_operations_scenario_passes_cfn_lint(tmp_path: Path) -> None:
    path = tmp_path / "transformed.json"
    path.write_text(json.dumps(sam_transform(OPERATIONS)), encoding="utf-8")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", str(path)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes_where_the_sam_cli_is_installed(packaged: Path) -> None:
    sam = shutil.which("sam")
    if sam is None:
        pytest.skip("the AWS SAM CLI is not installed (docs/deploy.md, Prerequisites)")
    result = subprocess.run(
        [sam, "validate", "--lint", "--template-file", str(packaged), "--region", "us-east-1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- runbooks

DOCS = TEMPLATE.parents[1] / "docs"


def test_every_table_has_point_in_time_recovery_for_the_restore_runbook() -> None:
    tables = of_type(DEPLOYMENTS["oai"], "AWS::DynamoDB::Table")
    assert tables
    for name, table in tables.items():
        spec = table["Properties"].get("PointInTimeRecoverySpecification", {})
        assert spec.get("PointInTimeRecoveryEnabled") is True, name


def vidgate_commands(path: Path) -> list[list[str]]:
    """Every ``vidgate ...`` command line in a document's shell blocks (continuations joined)."""
    commands = []
    in_block = False
    for line in path.read_text(encoding="utf-8").replace("\\\n", " ").splitlines():
        if line.strip().startswith("```"):
            in_block = not in_block
            continue
        words = line.strip()
        if in_block:
            for prefix in (
                "vidgate ",
                ".venv/bin/vidgate ",
                "AWS_REGION=$REGION .venv/bin/vidgate ",
            ):
                if words.startswith(prefix):
                    argv = shlex.split(words[len(prefix) :], comments=True)
                    commands.append(argv)
    return commands


@pytest.mark.parametrize("document", ["runbooks.md", "deploy.md"])
def test_every_vidgate_command_in_the_docs_parses_with_the_real_cli(document: str) -> None:
    from app.ops.cli import build_parser

    commands = vidgate_commands(DOCS / document)
    assert commands, f"{document} shows no vidgate command"
    parser = build_parser()
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{document}: `vidgate {' '.join(argv)}` is not a valid command")


def test_the_command_checker_catches_a_command_the_cli_lacks(tmp_path: Path) -> None:
    from app.ops.cli import build_parser

    doc = tmp_path / "doc.md"
    doc.write_text("```sh\nvidgate videos unpublish clip --env-file deploy.env\n```\n")
    (argv,) = vidgate_commands(doc)
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)


def test_the_runbooks_cover_what_operators_are_asked_to_do() -> None:
    text = (DOCS / "runbooks.md").read_text(encoding="utf-8")
    for anchor in (
        "rotate-cloudfront-key", "rotate-web-secret", "restore-table", "revoke-user",
        "take-down", "admin-totp", "dashboard", "cost",
        "api-5xx", "grants-unavailable", "lambda-errors", "dynamodb-throttles", "waf-spike", "dlq",
    ):  # fmt: skip
        assert f'<a id="{anchor}"></a>' in text, anchor
    assert "WebSecretKeyVersionId" in text
    assert "create-invalidation" in text
