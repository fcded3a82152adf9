"""The local stack's viewing-event pipeline: the HMAC key secret and the Firehose stream.

Created idempotently through the emulator, like the rest of the bootstrap:
the key a random string in Secrets Manager (the template generates its own in
AWS), the stream an S3 delivery stream writing to the video bucket under the
same ``dt=!{timestamp:yyyy-MM-dd}/`` prefix as the template's.
"""

from __future__ import annotations

import secrets
from typing import Any

from botocore.exceptions import ClientError

from app.analytics import FIREHOSE_ERROR_PREFIX, FIREHOSE_PREFIX

# The emulator checks no IAM: any well-formed role ARN is accepted.
LOCAL_FIREHOSE_ROLE = "arn:aws:iam::123456789012:role/vidgate-local-firehose"


def ensure_events_key(client: Any, secret_id: str) -> str:
    """The HMAC key's secret, created once (a new key would re-pseudonymize everyone)."""
    try:
        client.describe_secret(SecretId=secret_id)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        client.create_secret(
            Name=secret_id,
            Description="HMAC key pseudonymizing user ids in viewing events",
            SecretString=secrets.token_urlsafe(48),
        )
    return secret_id


def ensure_events_stream(client: Any, name: str, bucket: str) -> str:
    """A Firehose delivery stream to ``bucket`` under the analytics prefix."""
    try:
        client.describe_delivery_stream(DeliveryStreamName=name)
        return name
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    client.create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": LOCAL_FIREHOSE_ROLE,
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": FIREHOSE_PREFIX,
            "ErrorOutputPrefix": FIREHOSE_ERROR_PREFIX,
            "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60},
            "CompressionFormat": "UNCOMPRESSED",
        },
    )
    return name
