"""The worker's progress reports: every 5 %, never backwards, stopped by a takeover."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import StaleAttemptError
from app.local.transcoder import _Abandon, _ProgressReporter


class RecordingPublishing:
    """Records the progress written; refuses once another attempt has taken over."""

    def __init__(self) -> None:
        self.written: list[int] = []
        self.taken_over = False

    def report_progress(self, video_id: str, *, attempt: int, percent: float) -> Any:
        if self.taken_over:
            raise StaleAttemptError(
                "taken over", video_id=video_id, expected="processing, attempt 1"
            )
        self.written.append(int(percent))


def test_progress_is_written_at_each_5_percent_step_and_never_backwards() -> None:
    publishing = RecordingPublishing()
    report = _ProgressReporter(publishing, "clip", 1)  # type: ignore[arg-type]

    for percent in (0.5, 3, 4.99, 5, 7, 9.9, 10.1, 8, 33, 32, 99.9):
        report(percent)

    assert publishing.written == [5, 10, 30, 95]


def test_a_report_refused_because_another_attempt_took_over_abandons_this_one() -> None:
    publishing = RecordingPublishing()
    report = _ProgressReporter(publishing, "clip", 1)  # type: ignore[arg-type]
    report(10)
    publishing.taken_over = True

    with pytest.raises(_Abandon) as abandoned:
        report(20)
    assert abandoned.value.why == "superseded"
