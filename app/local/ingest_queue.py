"""The publishing pipeline's plumbing in the emulator: the ingest queue, its dead-letter
queue, the bucket's notification to it, and the bucket's lifecycle rules.

All idempotent. The emulator delivers S3 event notifications to SQS (an
``s3:TestEvent`` when the configuration is put, then one message per
``ObjectCreated`` under ``uploads/``), so locally, as in AWS, an upload is what
starts a transcode (docs/publishing.md#messages).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.publishing import UPLOADS_PREFIX
from app.storage_rules import s3_api_rules

VISIBILITY_TIMEOUT_SECONDS = 60
"""How long a received message stays hidden; the worker extends it while it works."""
MAX_RECEIVES = 5
"""Receives before a message goes to the dead-letter queue: more than the worker's
bounded attempts (3), so a video is failed with a reason before its message is parked."""
DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # the SQS maximum: time to look at what failed
WAIT_SECONDS = 20  # long polling: the SQS maximum


@dataclass(frozen=True)
class IngestQueues:
    ingest_url: str
    ingest_arn: str
    dlq_url: str
    dlq_arn: str

    def as_document(self) -> dict[str, str]:
        """The ``queues`` entry of ``dev-stack.json``."""
        return {"ingest": self.ingest_url, "ingest_dlq": self.dlq_url}


def _queue(sqs: Any, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    try:
        url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    except sqs.exceptions.QueueDoesNotExist:
        url = str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, str(arn)


def ensure_ingest_queues(
    sqs: Any, prefix: str, *, visibility_timeout: int = VISIBILITY_TIMEOUT_SECONDS
) -> IngestQueues:
    """The ingest queue (redrive to the DLQ after :data:`MAX_RECEIVES`) and its DLQ."""
    dlq_url, dlq_arn = _queue(
        sqs, f"{prefix}-ingest-dlq", {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
    )
    url, arn = _queue(
        sqs,
        f"{prefix}-ingest",
        {
            "VisibilityTimeout": str(visibility_timeout),
            "ReceiveMessageWaitTimeSeconds": str(WAIT_SECONDS),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}
            ),
        },
    )
    return IngestQueues(url, arn, dlq_url, dlq_arn)


def notify_on_upload(s3: Any, bucket: str, queue_arn: str) -> None:
    """The bucket sends an event to ``queue_arn`` for every object created under uploads/."""
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "ingest-originals",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {"FilterRules": [{"Name": "prefix", "Value": UPLOADS_PREFIX}]}
                    },
                }
            ]
        },
    )


def apply_lifecycle(s3: Any, bucket: str) -> None:
    """The same lifecycle rules as the template's bucket (the emulator stores them only)."""
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": s3_api_rules()}
    )
