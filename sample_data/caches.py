"""The sample service's caches: TTL entries in simulated time, keyed with the versions they depend on.

A key carries every version its value was built from (prompt template, corpus), so a version bump
turns every old entry into a miss without an explicit purge — the hit-rate dip a real deployment
shows after a re-index or a prompt change. ``flush`` is the cache-cold chaos.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

LAYERS = ("response", "context", "embedding")


class TtlCache:
    """A bounded LRU with a time-to-live measured on the simulation clock (seconds)."""

    def __init__(self, layer: str, ttl_s: float, capacity: int = 4096) -> None:
        self.layer = layer
        self.ttl_s = ttl_s
        self.capacity = capacity
        self._entries: OrderedDict[tuple, tuple[float, Any]] = OrderedDict()

    def get(self, key: tuple, now_s: float) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, value = entry
        if now_s - stored_at > self.ttl_s:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: tuple, value: Any, now_s: float) -> None:
        self._entries[key] = (now_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def flush(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
