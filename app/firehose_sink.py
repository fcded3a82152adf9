"""The Firehose sink: viewing events queued in memory, sent in batches by a background thread.

``put`` only appends a newline-terminated JSON line to a bounded queue and
wakes the sender; it never waits for the network, so a grant never waits for
analytics. The sender thread takes up to 500 records / 4 MiB per
``PutRecordBatch`` (Firehose's limits), retries the records a batch reports as
failed (``FailedPutCount``) once, and counts everything it could not deliver
as dropped, with one structured log line per lost batch. Delivery is at most
once; why a background thread and what Lambda's freeze does to it:
docs/analytics.md#an-2. The boto3 client comes in through the constructor.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("vidgate.viewing_events.firehose")

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024
DEFAULT_QUEUE_LIMIT = 20_000
DEFAULT_LINGER_SECONDS = 1.0
DROP_METRIC = "ViewingEventsDropped"


def encode(record: Mapping[str, Any]) -> bytes:
    """One newline-delimited JSON line: Firehose concatenates records as they come."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def batches(lines: list[bytes]) -> list[list[bytes]]:
    """Split lines into PutRecordBatch-sized groups (<= 500 records, <= 4 MiB each)."""
    groups: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and (len(current) == MAX_BATCH_RECORDS or size + len(line) > MAX_BATCH_BYTES):
            groups.append(current)
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        groups.append(current)
    return groups


def drop_log_fields(count: int, reason: str, stream: str) -> dict[str, Any]:
    """The dropped-events log line: a CloudWatch embedded-metric-format document."""
    return {
        "message": "viewing events dropped",
        "reason": reason,
        "stream": stream,
        DROP_METRIC: count,
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "vidgate",
                    "Dimensions": [[]],
                    "Metrics": [{"Name": DROP_METRIC, "Unit": "Count"}],
                }
            ],
        },
    }


class FirehoseSink:
    """An :class:`~app.viewing_events.EventSink` that delivers to one Firehose stream.

    :param client: a boto3 ``firehose`` client (short timeouts: it runs off the request path).
    :param stream: the delivery stream's name.
    :param queue_limit: records held at most; past it new records are dropped (counted).
    :param linger_seconds: how long the sender waits for a batch to fill before sending.
    """

    def __init__(
        self,
        client: Any,
        stream: str,
        *,
        queue_limit: int = DEFAULT_QUEUE_LIMIT,
        linger_seconds: float = DEFAULT_LINGER_SECONDS,
        report: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.client = client
        self.stream = stream
        self.queue_limit = queue_limit
        self.linger_seconds = linger_seconds
        self._report = report or (lambda fields: log.warning(json.dumps(fields)))
        self._queue: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closed = False
        self._hurry = False  # a flush is waiting: send without lingering
        self.counts = {"sent": 0, "dropped": 0, "retried": 0, "failed_batches": 0}

    def put(self, record: Mapping[str, Any]) -> None:
        line = encode(record)
        with self._cond:
            if len(line) > MAX_RECORD_BYTES or self._closed:
                self._drop_locked(1, "too_large" if not self._closed else "closed")
                return
            if len(self._queue) >= self.queue_limit:
                self._drop_locked(1, "queue_full")
                return
            self._queue.append(line)
            self._ensure_sender_locked()
            # Wake the sender: it sleeps while the queue is empty, and lingers for a full batch.
            if len(self._queue) == 1 or len(self._queue) >= MAX_BATCH_RECORDS:
                self._cond.notify_all()

    def _drop_locked(self, count: int, reason: str) -> None:
        self.counts["dropped"] += count
        # One line per lost batch, not per record: a full queue would flood the log.
        if reason != "queue_full" or self.counts["dropped"] % 1000 == 1:
            self._report(drop_log_fields(count, reason, self.stream))

    def _ensure_sender_locked(self) -> None:
        # After a fork (gunicorn workers) the parent's thread is gone: start our own.
        if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, name="viewing-events-sender", daemon=True
            )
            self._thread.start()

    def _take_locked(self) -> list[bytes]:
        taken: list[bytes] = []
        size = 0
        while self._queue and len(taken) < MAX_BATCH_RECORDS:
            if taken and size + len(self._queue[0]) > MAX_BATCH_BYTES:
                break
            line = self._queue.popleft()
            taken.append(line)
            size += len(line)
        self._in_flight = len(taken)
        return taken

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                # Give the batch a moment to fill, unless it is full already.
                deadline = time.monotonic() + self.linger_seconds
                while len(self._queue) < MAX_BATCH_RECORDS and not (self._closed or self._hurry):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch = self._take_locked()
            try:
                self._send(batch)
            except Exception:  # the sender must outlive any surprise
                log.exception("viewing events: sender failed on a batch")
                self._count("dropped", len(batch))
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()

    def _count(self, name: str, amount: int) -> None:
        with self._cond:
            self.counts[name] += amount

    def _send(self, batch: list[bytes]) -> None:
        """One PutRecordBatch, then the failed records once more; the rest are dropped."""
        pending = batch
        for attempt in (1, 2):
            try:
                answer = self.client.put_record_batch(
                    DeliveryStreamName=self.stream, Records=[{"Data": line} for line in pending]
                )
            except Exception as exc:  # unreachable, throttled, stream gone: the events are lost
                with self._cond:
                    self.counts["failed_batches"] += 1
                    self._drop_locked(len(pending), type(exc).__name__)
                return
            failed = [
                line
                for line, result in zip(pending, answer.get("RequestResponses", []), strict=False)
                if result.get("ErrorCode")
            ]
            if answer.get("FailedPutCount", 0) and not failed:
                failed = pending  # a count without per-record answers: assume all failed
            self._count("sent", len(pending) - len(failed))
            if not failed:
                return
            if attempt == 1:
                self._count("retried", len(failed))
                pending = failed
        with self._cond:
            self._drop_locked(len(pending), "failed_put_count")

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record was sent or dropped; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._hurry = True
            if self._queue:
                self._ensure_sender_locked()
            self._cond.notify_all()
            while self._queue or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._hurry = False
                    return False
                self._cond.wait(min(left, 0.05))
                self._cond.notify_all()
            self._hurry = False
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout``) and refuse new records."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.flush(timeout)

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {**self.counts, "queued": len(self._queue) + self._in_flight}
