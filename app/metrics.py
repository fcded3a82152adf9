"""Playback figures as CloudWatch metrics in the Embedded Metric Format (EMF).

Each playback request (a grant, a renewal or a refusal) becomes one JSON
line that CloudWatch Logs turns into metrics in the ``vidgate`` namespace:
``Grants``, ``Renewals``, ``Refusals`` (also per ``Reason``, the API's error
code) and ``PlaybackLatency``. No CloudWatch API call is made: the line goes
to the function's log like any other (docs/observability.md). EMF is read
only from a log event that is one JSON object and nothing else, so the lines
are written to stdout, not through :mod:`logging`, whose Lambda handler
prefixes level, time and request id.

The document is written by hand (a dozen lines of JSON) rather than with
``aws-embedded-metrics``: that package adds an import on the playback
function's measured cold start for no feature used here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

NAMESPACE = "vidgate"
SERVICE = "playback"
"""Value of the ``Service`` dimension every playback metric carries."""

GRANTS = "Grants"
RENEWALS = "Renewals"
REFUSALS = "Refusals"
LATENCY = "PlaybackLatency"

Writer = Callable[[str], None]
LAMBDA_RUNTIME_VARIABLE = "AWS_LAMBDA_FUNCTION_NAME"
"""Set by the Lambda runtime in every function's environment."""


def emf_document(
    metrics: Mapping[str, tuple[float, str]],
    dimensions: Mapping[str, str],
    dimension_sets: list[list[str]],
    *,
    timestamp_ms: int,
    properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One EMF document: ``metrics`` maps a name to (value, unit), published under each
    of ``dimension_sets`` (lists of keys of ``dimensions``).

    :raises ValueError: a dimension set names a key ``dimensions`` lacks, or a metric
        shares a name with a dimension or property (EMF reads both from the root).
    """
    for keys in dimension_sets:
        missing = [k for k in keys if k not in dimensions]
        if missing:
            raise ValueError(f"dimension set {keys} names missing dimensions {missing}")
    extra = dict(properties or {})
    clash = set(metrics) & (set(dimensions) | set(extra))
    if clash:
        raise ValueError(f"metric names clash with dimensions or properties: {sorted(clash)}")
    return {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": dimension_sets,
                    "Metrics": [{"Name": n, "Unit": unit} for n, (_, unit) in metrics.items()],
                }
            ],
        },
        **extra,
        **dimensions,
        **{name: value for name, (value, _) in metrics.items()},
    }


def _stdout(line: str) -> None:
    print(line, flush=True)  # one write per line: EMF needs the whole object in one log event


class PlaybackMetrics:
    """Writes one EMF line per playback request; silent until given a writer."""

    def __init__(
        self,
        write: Writer | None = None,
        *,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._write = write
        self._clock_ms = clock_ms

    def enable_stdout(self) -> None:
        """Send the lines to stdout, which the Lambda runtime sends to CloudWatch Logs."""
        self._write = _stdout

    def enable_in_lambda(self, env: Mapping[str, str]) -> bool:
        """:meth:`enable_stdout` when ``env`` is a Lambda runtime's (tests and local runs
        import the entry points too, and their stdout is no metric sink); returns whether."""
        if env.get(LAMBDA_RUNTIME_VARIABLE):
            self.enable_stdout()
            return True
        return False

    @property
    def enabled(self) -> bool:
        return self._write is not None

    def granted(self, latency_ms: float, *, renewal: bool) -> None:
        """A grant (a new stream) or a renewal was signed, ``latency_ms`` after the request came."""
        name = RENEWALS if renewal else GRANTS
        self._emit(
            {name: (1, "Count"), LATENCY: (round(latency_ms, 3), "Milliseconds")},
            {"Service": SERVICE},
            [["Service"]],
            {"outcome": "renewal" if renewal else "grant"},
        )

    def refused(self, reason: str, latency_ms: float) -> None:
        """A request got no URL; ``reason`` is the API's error code (``premium_required``, ...)."""
        self._emit(
            {REFUSALS: (1, "Count"), LATENCY: (round(latency_ms, 3), "Milliseconds")},
            {"Service": SERVICE, "Reason": reason},
            [["Service"], ["Service", "Reason"]],
            {"outcome": "refusal"},
        )

    def _emit(
        self,
        metrics: Mapping[str, tuple[float, str]],
        dimensions: Mapping[str, str],
        dimension_sets: list[list[str]],
        properties: Mapping[str, Any],
    ) -> None:
        if self._write is None:
            return
        document = emf_document(
            metrics,
            dimensions,
            dimension_sets,
            timestamp_ms=self._clock_ms(),
            properties={"event": "playback_metrics", **properties},
        )
        self._write(json.dumps(document, separators=(",", ":")))


PROCESS = PlaybackMetrics()
"""The process's metrics: silent (local runs, tests) until a Lambda entry point enables stdout."""
