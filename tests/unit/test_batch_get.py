"""Two items of two tables in one round trip: what BatchGetItem is asked, and failing closed."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from app.dynamo import BATCH_GET_CALLS, Item, KeyRead, batch_get_pair
from app.errors import DependencyUnavailableError

VIDEO = {"video_id": {"S": "v1"}, "tier": {"S": "premium"}}
USER = {"user_id": {"S": "u1"}, "premium": {"BOOL": True}}


@dataclass
class FakeBatchClient:
    """Answers BatchGetItem from ``tables``; holds back what ``unprocessed`` names, once each."""

    tables: dict[str, dict[str, Item]]
    unprocessed: list[set[str]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    error: Exception | None = None

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(copy.deepcopy(RequestItems))
        if self.error is not None:
            raise self.error
        held = self.unprocessed.pop(0) if self.unprocessed else set()
        responses: dict[str, list[Item]] = {}
        for table, entry in RequestItems.items():
            if table in held:
                continue
            (key,) = entry["Keys"]
            (value,) = (v["S"] for v in key.values())
            found = self.tables.get(table, {}).get(value)
            responses[table] = [found] if found else []
        return {
            "Responses": responses,
            "UnprocessedKeys": {t: RequestItems[t] for t in held if t in RequestItems},
        }


def reads() -> tuple[KeyRead[Item | None], KeyRead[str]]:
    video = KeyRead("videos", {"video_id": {"S": "v1"}}, lambda item: item)
    user = KeyRead(
        "users",
        {"user_id": {"S": "u1"}},
        lambda item: "premium" if item else "no record",
        projection="#id, #p",
        names={"#id": "user_id", "#p": "premium"},
    )
    return video, user


def client() -> FakeBatchClient:
    return FakeBatchClient({"videos": {"v1": VIDEO}, "users": {"u1": USER}})


def test_both_items_come_back_parsed_from_one_strongly_consistent_call() -> None:
    fake = client()

    assert batch_get_pair(fake, *reads()) == (VIDEO, "premium")  # type: ignore[arg-type]
    assert fake.requests == [
        {
            "videos": {"Keys": [{"video_id": {"S": "v1"}}], "ConsistentRead": True},
            "users": {
                "Keys": [{"user_id": {"S": "u1"}}],
                "ConsistentRead": True,
                "ProjectionExpression": "#id, #p",
                "ExpressionAttributeNames": {"#id": "user_id", "#p": "premium"},
            },
        }
    ]


def test_a_missing_item_is_parsed_from_none() -> None:
    fake = FakeBatchClient({"videos": {}, "users": {}})

    assert batch_get_pair(fake, *reads()) == (None, "no record")  # type: ignore[arg-type]


def test_unprocessed_keys_are_asked_for_again_with_a_backoff() -> None:
    fake = client()
    fake.unprocessed = [{"users"}, {"users"}]
    pauses: list[float] = []

    result = batch_get_pair(fake, *reads(), sleep=pauses.append)  # type: ignore[arg-type]

    assert result == (VIDEO, "premium")
    assert [sorted(request) for request in fake.requests] == [
        ["users", "videos"],
        ["users"],
        ["users"],
    ]
    assert len(pauses) == 2 and 0 < pauses[0] < pauses[1] <= 0.1


def test_keys_still_unprocessed_after_the_last_call_fail_closed() -> None:
    fake = client()
    fake.unprocessed = [{"users", "videos"}] * BATCH_GET_CALLS

    with pytest.raises(DependencyUnavailableError):
        batch_get_pair(fake, *reads(), sleep=lambda _: None)  # type: ignore[arg-type]
    assert len(fake.requests) == BATCH_GET_CALLS


def test_throttling_or_a_missing_table_fails_closed() -> None:
    fake = client()
    response: Any = {"Error": {"Code": "ResourceNotFoundException"}, "ResponseMetadata": {}}
    fake.error = ClientError(response, "BatchGetItem")

    with pytest.raises(DependencyUnavailableError):
        batch_get_pair(fake, *reads())  # type: ignore[arg-type]


def test_two_reads_of_one_table_are_refused() -> None:
    video, _ = reads()

    with pytest.raises(ValueError, match="two tables"):
        batch_get_pair(client(), video, video)  # type: ignore[arg-type]
