"""Optimistic concurrency under real contention, on both DynamoDB engines.

Twenty threads share one boto3 client (clients are thread-safe) and race to
change one user's premium state. Every write is conditioned on the version
its thread read: the winners' changes and audit records must line up
exactly, and every loser must get a VersionConflictError, never a silent
overwrite or a lost audit record.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from app.entitlements import AuditRecord, Entitlement, EntitlementStore
from app.errors import VersionConflictError
from app.users import UserDirectory
from tests.integration.conftest import DdbTarget

THREADS = 20
TIMEOUT = 60.0


@dataclass
class Outcomes:
    successes: list[Entitlement] = field(default_factory=list)
    conflicts: list[VersionConflictError] = field(default_factory=list)
    other: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _race(store: EntitlementStore, user_id: str, *, read_together: bool) -> Outcomes:
    """Run THREADS toggles at once; with ``read_together`` all read before any writes."""
    outcomes = Outcomes()
    start = threading.Barrier(THREADS, timeout=TIMEOUT)
    after_read = threading.Barrier(THREADS, timeout=TIMEOUT)

    def toggle(number: int) -> None:
        start.wait()
        try:
            seen = store.get(user_id)
            if read_together:
                after_read.wait()
            result = store.set_premium(
                user_id,
                not seen.premium,
                None,
                actor=f"thread-{number}",
                expected_version=seen.version,
            )
        except VersionConflictError as exc:
            with outcomes.lock:
                outcomes.conflicts.append(exc)
        except BaseException as exc:
            with outcomes.lock:
                outcomes.other.append(exc)
        else:
            with outcomes.lock:
                outcomes.successes.append(result)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for future in [pool.submit(toggle, number) for number in range(THREADS)]:
            future.result(timeout=TIMEOUT)
    return outcomes


def _setup(target: DdbTarget) -> EntitlementStore:
    UserDirectory(target.client, target.tables["users"]).create_on_signup(
        "racer", "racer", "racer@example.com"
    )
    return EntitlementStore(target.client, target.tables["users"], target.tables["audit"])


def _check(
    target: DdbTarget, store: EntitlementStore, outcomes: Outcomes, *, start_version: int
) -> None:
    assert outcomes.other == []
    assert len(outcomes.successes) + len(outcomes.conflicts) == THREADS
    assert outcomes.successes, "somebody must win"

    # Each success produced the next version: no two writers won the same version.
    winners = sorted(outcomes.successes, key=lambda e: e.version)
    assert [e.version for e in winners] == list(
        range(start_version + 1, start_version + 1 + len(winners))
    )
    # The final state is the last successful write.
    assert store.get("racer") == winners[-1]
    # One audit record per success, matching it, and none for a conflict.
    records = [
        record for page in _pages(store) for record in page if record.version > start_version
    ]
    assert len(records) == len(winners)
    assert sorted((r.version, r.actor, r.premium_after) for r in records) == [
        (e.version, e.updated_by, e.premium) for e in winners
    ]
    # Consecutive records chain: each one starts from where the previous one ended.
    chain = sorted(records, key=lambda r: r.version)
    for before, after in itertools.pairwise(chain):
        assert after.premium_before == before.premium_after
    # Every loser was told which state won.
    for conflict in outcomes.conflicts:
        assert isinstance(conflict.current, Entitlement)
        assert conflict.current.version > conflict.expected


def _pages(store: EntitlementStore) -> list[list[AuditRecord]]:
    pages: list[list[AuditRecord]] = []
    cursor: str | None = None
    while True:
        page, cursor = store.list_audit("racer", 100, cursor)
        pages.append(page)
        if cursor is None:
            return pages


def test_twenty_racing_toggles_leave_one_audit_record_per_winning_write(
    ddb_target: DdbTarget,
) -> None:
    store = _setup(ddb_target)

    outcomes = _race(store, "racer", read_together=False)

    _check(ddb_target, store, outcomes, start_version=0)


def test_twenty_writers_that_read_the_same_version_have_exactly_one_winner(
    ddb_target: DdbTarget,
) -> None:
    store = _setup(ddb_target)
    store.set_premium("racer", True, None, actor="setup")

    outcomes = _race(store, "racer", read_together=True)

    _check(ddb_target, store, outcomes, start_version=1)
    assert len(outcomes.successes) == 1
    assert len(outcomes.conflicts) == THREADS - 1
    assert store.get("racer").premium is False
