"""The sample service's caches: TTL entries in simulated time, stored with the versions they depend on.

An entry remembers the versions its value was built from (prompt template, corpus), so a version
bump turns every old entry into a miss without an explicit purge — the hit-rate dip a real
deployment shows after a re-index or a prompt change. ``flush`` is the cache-cold chaos.

A miss says why (``ragtrail.cache.miss_reason``): ``cold`` (never stored, flushed or evicted),
``ttl`` (expired) or ``version`` (stored for an older prompt or corpus version).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

LAYERS = ("response", "context", "embedding")
MISS_REASONS = ("cold", "ttl", "version")


class TtlCache:
    """A bounded LRU with a time-to-live measured on the simulation clock (seconds)."""

    def __init__(self, layer: str, ttl_s: float, capacity: int = 4096) -> None:
        self.layer = layer
        self.ttl_s = ttl_s
        self.capacity = capacity
        self._entries: OrderedDict[tuple, tuple[float, tuple, Any]] = OrderedDict()

    def lookup(self, key: tuple, version: tuple, now_s: float) -> tuple[Any | None, str | None]:
        """(value, None) on a hit, (None, miss reason) on a miss."""
        entry = self._entries.get(key)
        if entry is None:
            return None, "cold"
        stored_at, stored_version, value = entry
        if stored_version != version:
            del self._entries[key]
            return None, "version"
        if now_s - stored_at > self.ttl_s:
            del self._entries[key]
            return None, "ttl"
        self._entries.move_to_end(key)
        return value, None

    def put(self, key: tuple, version: tuple, value: Any, now_s: float) -> None:
        self._entries[key] = (now_s, version, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def flush(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
