"""A small per-process cache whose answers are at most a fixed number of seconds old.

For answers that may be slightly stale but never for long (who is in the
``admin`` group, when a user's sessions were ended): each entry expires
``ttl_seconds`` after the load that produced it *started*, so a cached answer
is never older than that, however long the load took. Failed loads are not
cached. Bounded: past ``max_entries`` the expired entries go, then the oldest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_MAX_ENTRIES = 4096


class TtlCache(Generic[K, V]):
    """``get_or_load(key, load)``: the cached value while fresh, else ``load()`` (then cached).

    :param ttl_seconds: how old an answer may be; 0 turns caching off.
    :param clock: seconds, monotonic (tests pass a settable one).
    """

    def __init__(
        self,
        ttl_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds must be >= 0")
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        """The value for ``key``: cached if fresh, else ``load()``'s (exceptions pass, uncached)."""
        started = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and started < hit[0]:
                return hit[1]
        value = load()
        self.put(key, value, loaded_at=started)
        return value

    def put(self, key: K, value: V, *, loaded_at: float | None = None) -> None:
        """Cache ``value`` as known at ``loaded_at`` (default: now)."""
        if self.ttl_seconds <= 0:
            return
        expires = (self._clock() if loaded_at is None else loaded_at) + self.ttl_seconds
        with self._lock:
            self._entries.pop(key, None)  # re-inserted last: the dict's order is the age order
            if len(self._entries) >= self._max_entries:
                self._evict(self._clock())
            self._entries[key] = (expires, value)

    def discard(self, key: K) -> None:
        """Forget ``key`` (this process only), so the next read loads it again."""
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _evict(self, now: float) -> None:
        for key in [key for key, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
