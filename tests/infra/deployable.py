"""What one deployment of the template would hold, for checks that need real strings.

:func:`deployment_values` gives every Ref and ``Fn::GetAtt`` of a resolved
template a plausible physical value (ARNs in each service's documented shape),
so :func:`tests.infra.cfn.render` can turn a policy document into the JSON IAM
would receive. :func:`policy_documents` finds every policy document in a
template: roles' inline and trust policies, bucket, topic and queue policies,
key policies.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.infra.cfn import parameter_values

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "vidgate"

# Fn::GetAtt <Resource>.Arn, by resource type (IAM's documented ARN shapes).
ARN_SHAPES = {
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:{region}:{account}:table/{name}",
    "AWS::Logs::LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}:*",
    "AWS::Cognito::UserPool": "arn:aws:cognito-idp:{region}:{account}:userpool/{region}_{name}",
    "AWS::KMS::Key": "arn:aws:kms:{region}:{account}:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    "AWS::S3::Bucket": "arn:aws:s3:::{lower}",
    "AWS::SNS::Topic": "arn:aws:sns:{region}:{account}:{name}",
    "AWS::SQS::Queue": "arn:aws:sqs:{region}:{account}:{name}",
    "AWS::SecretsManager::Secret": "arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf",
    "AWS::Serverless::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::Lambda::Function": "arn:aws:lambda:{region}:{account}:function:{name}",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::CloudFront::Distribution": "arn:aws:cloudfront::{account}:distribution/EDFDVBD6EXAMPLE",
    "AWS::KinesisFirehose::DeliveryStream": (
        "arn:aws:firehose:{region}:{account}:deliverystream/{name}"
    ),
    "AWS::Events::Rule": "arn:aws:events:{region}:{account}:rule/{name}",
    "AWS::Events::EventBus": "arn:aws:events:{region}:{account}:event-bus/{name}",
    "AWS::StepFunctions::StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{name}",
    "AWS::CloudWatch::Alarm": "arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
    "AWS::WAFv2::WebACL": "arn:aws:wafv2:us-east-1:{account}:global/webacl/{name}/a1b2c3d4",
    "AWS::Glue::Database": "arn:aws:glue:{region}:{account}:database/{lower}",
    "AWS::Athena::WorkGroup": "arn:aws:athena:{region}:{account}:workgroup/{name}",
}
# Ref <Resource>, where it is not simply the name.
REF_SHAPES = {
    "AWS::SNS::Topic": ARN_SHAPES["AWS::SNS::Topic"],
    "AWS::SecretsManager::Secret": ARN_SHAPES["AWS::SecretsManager::Secret"],
    "AWS::SQS::Queue": "https://sqs.{region}.amazonaws.com/{account}/{name}",
    "AWS::KMS::Key": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    "AWS::S3::Bucket": "{lower}",
}
OTHER_ATTRIBUTES = ("DomainName", "QueueName", "Name", "Id", "TopicName", "KeyId")


def _arn(kind: str, name: str) -> str:
    shape = ARN_SHAPES.get(kind)
    if shape is None:  # a type without a documented shape here: the service's generic form
        service = kind.split("::")[1].lower()
        shape = f"arn:aws:{service}:{{region}}:{{account}}:{{name}}"
    return shape.format(region=REGION, account=ACCOUNT, name=name, lower=name.lower())


def deployment_values(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    """Parameter, pseudo-parameter, Ref and Fn::GetAtt values of one deployment."""
    values: dict[str, Any] = {
        **parameter_values(template, overrides),
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::StackName": STACK,
        "AWS::URLSuffix": "amazonaws.com",
    }
    for logical, resource in template["Resources"].items():
        kind = resource["Type"]
        name = f"{STACK}-{logical}"
        ref_shape = REF_SHAPES.get(kind, "{name}")
        values[logical] = ref_shape.format(
            region=REGION, account=ACCOUNT, name=name, lower=name.lower()
        )
        values[f"{logical}.Arn"] = _arn(kind, name)
        for attribute in OTHER_ATTRIBUTES:
            values.setdefault(f"{logical}.{attribute}", f"{name}-{attribute.lower()}")
    return values


POLICY_KEYS = ("PolicyDocument", "AssumeRolePolicyDocument", "KeyPolicy")


def policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, document) for every IAM policy document in the template's resources."""

    def walk(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in POLICY_KEYS and isinstance(value, dict):
                    yield f"{where}.{key}", value
                else:
                    yield from walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                yield from walk(item, f"{where}[{index}]")

    for logical, resource in template["Resources"].items():
        yield from walk(resource.get("Properties", {}), logical)
