"""The template's publishing pipeline: upload notifications, the queues, MediaConvert's role,
the EventBridge rule and the alarms (docs/mediaconvert.md)."""

from __future__ import annotations

from typing import Any

from app.catalog import Video
from tests.infra.cfn import SCENARIOS, as_list, cycles, dependencies, load, resolve, sam_transform

TEMPLATE = resolve(load(), SCENARIOS["oai"])
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PIPELINE_ROLES = ("IngestRole", "PublishRole")


def _statements(role: str) -> dict[str, dict[str, Any]]:
    policies = RESOURCES[role]["Properties"]["Policies"]
    return {s["Sid"]: s for p in policies for s in as_list(p["PolicyDocument"]["Statement"])}


def test_uploads_alone_notify_the_ingest_queue_which_s3_of_this_account_may_fill() -> None:
    bucket = RESOURCES["VideoBucket"]
    (config,) = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert config["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}
    assert config["Event"] == "s3:ObjectCreated:*"
    assert config["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}]
    # S3 checks the permission when the notification is set: the policy comes first.
    assert bucket["DependsOn"] == "IngestQueuePolicy"
    (allow,) = [
        s
        for s in RESOURCES["IngestQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    ]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_the_template_has_no_dependency_cycle() -> None:
    assert cycles(dependencies(TEMPLATE)) == set()


def test_failed_ingests_reach_the_dead_letter_queue_after_bounded_receives() -> None:
    queue = RESOURCES["IngestQueue"]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["IngestDLQ", "Arn"]},
        "maxReceiveCount": 5,
    }
    function = RESOURCES["IngestFunction"]["Properties"]
    # Lambda's SQS guide: visibility timeout at least six times the function's timeout.
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    event = function["Events"]["Uploads"]["Properties"]
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Queue"] == {"Fn::GetAtt": ["IngestQueue", "Arn"]}


def test_mediaconvert_assumes_a_role_that_reads_originals_and_writes_renditions_only() -> None:
    role = RESOURCES["MediaConvertRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "mediaconvert.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    granted = {
        (action, resource["Fn::Sub"])
        for statement in _statements("MediaConvertRole").values()
        for action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }
    assert granted == {
        ("s3:GetObject", "${VideoBucket.Arn}/uploads/*"),
        ("s3:PutObject", "${VideoBucket.Arn}/videos/*"),
    }


def test_the_pipeline_roles_pass_only_the_mediaconvert_role_and_only_to_mediaconvert() -> None:
    for role in PIPELINE_ROLES:
        passing = [s for s in _statements(role).values() if "iam:PassRole" in as_list(s["Action"])]
        (statement,) = passing
        assert statement["Resource"] == {"Fn::GetAtt": ["MediaConvertRole", "Arn"]}
        assert statement["Condition"] == {
            "StringEquals": {"iam:PassedToService": "mediaconvert.amazonaws.com"}
        }
        jobs = _statements(role)["CreateJobsInOwnQueue"]
        assert {"Fn::GetAtt": ["TranscodeQueue", "Arn"]} in jobs["Resource"]


def test_the_pipeline_roles_write_publishing_state_but_never_what_admins_set() -> None:
    admin_fields = {"title", "description", "tier", "created_at", "sort_key", "entity"}
    assert admin_fields <= set(Video.__dataclass_fields__) | {"sort_key", "entity"}
    for role in PIPELINE_ROLES:
        statement = _statements(role)["WritePublishingState"]
        assert statement["Action"] == "dynamodb:UpdateItem"
        condition = statement["Condition"]
        allowed = set(condition["ForAllValues:StringEquals"]["dynamodb:Attributes"])
        assert {"state", "attempts", "progress", "failure_reason", "job_id"} <= allowed
        assert not allowed & admin_fields
        assert condition["Null"] == {"dynamodb:Attributes": "false"}


def test_publish_listens_to_this_stacks_queue_only() -> None:
    event = RESOURCES["PublishFunction"]["Properties"]["Events"]["JobStateChanges"]
    assert event["Type"] == "EventBridgeRule"
    pattern = event["Properties"]["Pattern"]
    assert pattern["source"] == ["aws.mediaconvert"]
    assert pattern["detail-type"] == ["MediaConvert Job State Change"]
    assert pattern["detail"]["queue"] == [{"Fn::GetAtt": ["TranscodeQueue", "Arn"]}]
    assert set(pattern["detail"]["status"]) == {"STATUS_UPDATE", "COMPLETE", "ERROR", "CANCELED"}
    env = RESOURCES["PublishFunction"]["Properties"]["Environment"]["Variables"]
    assert env["VIDGATE_MEDIACONVERT_QUEUE_ARN"] == {"Fn::GetAtt": ["TranscodeQueue", "Arn"]}


def test_the_sam_transform_makes_the_rule_and_the_sqs_mapping() -> None:
    transformed = sam_transform(SCENARIOS["oai"])["Resources"]
    rules = [r for r in transformed.values() if r["Type"] == "AWS::Events::Rule"]
    (rule,) = rules
    assert rule["Properties"]["EventPattern"]["source"] == ["aws.mediaconvert"]
    (mapping,) = [r for r in transformed.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_alarms_watch_both_dead_letter_queues_and_errored_jobs() -> None:
    # The pipeline's alarms among all the template's (the operations block has its own).
    alarms = {
        name: r["Properties"]
        for name, r in RESOURCES.items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("Namespace") in ("AWS/SQS", "AWS/MediaConvert")
    }
    watched = {
        (a["Namespace"], a["MetricName"], tuple(a["Dimensions"][0]["Value"]["Fn::GetAtt"]))
        for a in alarms.values()
    }
    sqs = ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert {
        (*sqs, ("IngestDLQ", "QueueName")),
        (*sqs, ("PublishDLQ", "QueueName")),
        ("AWS/MediaConvert", "JobsErroredCount", ("TranscodeQueue", "Arn")),
    } <= watched
    for alarm in alarms.values():
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": "AlarmTopic"}]
