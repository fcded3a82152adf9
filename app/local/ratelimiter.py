"""Per-client rate limits at the local edge: the web ACL's rules (app.ratelimits), exactly.

:class:`RateLimiter` keeps, for each rule and client address, the times of the
requests it let through in the rule's trailing window (a sliding log, at most
``limit`` entries). A request is refused by the first rule, in priority order,
that already holds ``limit`` requests in its window; ``retry_after`` is when the
oldest of them leaves it. A refused request is not counted, so a client that
keeps trying gets through again as soon as the window has room. Where this
differs from AWS WAF (which checks its counts periodically and acts near the
limit) is in docs/local-edge.md#rate-limits.

Why not the ``limits`` package: its in-memory moving window is the same sliding
log, but it reads the wall clock itself (tests could not step time) and starts
a timer thread every 10 ms while it holds keys; this is the few lines the edge
needs, with the clock passed in.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.ratelimits import RATE_RULES, RateRule, normalized_path

SWEEP_EVERY = 4096
"""Requests between two sweeps that forget clients whose windows are empty."""


@dataclass(frozen=True)
class Limited:
    """A refused request: the rule that refused it and the whole seconds until it has room."""

    rule: RateRule
    retry_after: int
    first: bool
    """True for the first refusal since the client was last let through (log it once)."""


class RateLimiter:
    """The rules' sliding logs, per client address; thread-safe."""

    def __init__(
        self,
        rules: Sequence[RateRule] = RATE_RULES,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rules = tuple(rules)
        self._clock = clock
        self._logs: dict[tuple[str, str], deque[float]] = {}
        self._limited: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._since_sweep = 0

    def check(self, client: str, method: str, raw_path: str) -> Limited | None:
        """Count the request and return None, or refuse it (and count nothing)."""
        path = normalized_path(raw_path)
        verb = method.upper()
        rules = [rule for rule in self._rules if rule.applies(verb, path)]
        if not rules:
            return None
        with self._lock:
            now = self._clock()
            self._maybe_sweep(now)
            logs = []
            for rule in rules:
                key = (rule.name, client)
                log = self._logs.setdefault(key, deque())
                while log and log[0] <= now - rule.window_seconds:
                    log.popleft()
                if len(log) >= rule.limit:
                    first = key not in self._limited
                    self._limited.add(key)
                    wait = log[0] + rule.window_seconds - now
                    return Limited(rule, max(1, math.ceil(wait)), first)
                logs.append((key, log))
            for key, log in logs:
                log.append(now)
                self._limited.discard(key)
        return None

    def _maybe_sweep(self, now: float) -> None:
        # Bounded memory: clients whose windows emptied are forgotten now and then.
        self._since_sweep += 1
        if self._since_sweep < SWEEP_EVERY:
            return
        self._since_sweep = 0
        windows = {rule.name: rule.window_seconds for rule in self._rules}
        idle = [k for k, log in self._logs.items() if not log or log[-1] <= now - windows[k[0]]]
        for key in idle:
            del self._logs[key]
            self._limited.discard(key)

    @property
    def tracked(self) -> int:
        """How many (rule, client) logs are held (for the memory-bound test)."""
        with self._lock:
            return len(self._logs)
