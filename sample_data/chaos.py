"""Chaos schedules: when the sample service's dependencies fail, on a timetable or on demand.

A schedule is a comma-separated list of ``KIND@START[+DURATION][/EVERY]`` items, times in seconds
from the start of the run (suffix ``s``, ``m`` or ``h``)::

    vector_db_down@30s+20s,cache_cold@60s,oom@90s+15s,corpus_update@2m,prompt_change@150s

Window kinds (``vector_db_down``, ``oom``) are active for DURATION; event kinds (``cache_cold``,
``corpus_update``, ``prompt_change``) happen once at START. ``/EVERY`` repeats an item with that
period, which is what a long-running ``ragtrail up`` wants. ``demo`` names a repeating preset.

``trigger`` adds an item while a run is going (from another thread): chaos on demand.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

WINDOW_KINDS = frozenset({"vector_db_down", "oom"})
EVENT_KINDS = frozenset({"cache_cold", "corpus_update", "prompt_change"})
KINDS = WINDOW_KINDS | EVENT_KINDS

PRESETS = {
    # Every ten minutes: an outage, a cache flush, a GPU OOM storm, then a re-index.
    "demo": "vector_db_down@3m+20s/10m,cache_cold@5m/10m,oom@7m+15s/10m,corpus_update@8m30s/10m",
}

_ITEM = re.compile(
    r"^(?P<kind>[a-z_]+)@(?P<start>[0-9hms.]+)(?:\+(?P<dur>[0-9hms.]+))?(?:/(?P<every>[0-9hms.]+))?$"
)
_DURATION = re.compile(r"(?P<n>[0-9]+(?:\.[0-9]+)?)(?P<unit>[hms]?)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}


class ChaosError(ValueError):
    """A schedule that does not parse; the message names the bad item."""


def parse_seconds(text: str) -> float:
    """``90``, ``90s``, ``1m30s``, ``2h`` -> seconds."""
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m["n"]) * _UNIT_S[m["unit"]]
        pos = m.end()
    if pos != len(text) or not text:
        raise ChaosError(f"bad duration {text!r} (use e.g. 20s, 2m, 1m30s)")
    return total


@dataclass(frozen=True)
class ChaosItem:
    kind: str
    start_s: float
    duration_s: float = 0.0
    every_s: float | None = None

    def occurrence(self, t_s: float) -> float | None:
        """Start (in run seconds) of the occurrence whose window holds ``t_s``, or None."""
        if t_s < self.start_s:
            return None
        start = self.start_s
        if self.every_s:
            start += ((t_s - self.start_s) // self.every_s) * self.every_s
        return start if t_s < start + self.duration_s else None

    def starts_between(self, a_s: float, b_s: float) -> bool:
        """Whether an occurrence starts in [a_s, b_s)."""
        if b_s <= self.start_s:
            return False
        if not self.every_s:
            return a_s <= self.start_s < b_s
        n = max(0.0, -((self.start_s - a_s) // self.every_s))  # first occurrence index >= a_s
        return self.start_s + n * self.every_s < b_s


def parse(spec: str | None) -> list[ChaosItem]:
    if not spec:
        return []
    spec = PRESETS.get(spec.strip(), spec)
    items = []
    for raw in spec.split(","):
        raw = raw.strip()
        m = _ITEM.match(raw)
        if not m:
            raise ChaosError(f"bad chaos item {raw!r}: expected KIND@START[+DURATION][/EVERY]")
        kind = m["kind"]
        if kind not in KINDS:
            raise ChaosError(f"unknown chaos kind {kind!r} in {raw!r}; known: {', '.join(sorted(KINDS))}")
        duration = parse_seconds(m["dur"]) if m["dur"] else 0.0
        if kind in WINDOW_KINDS and duration <= 0:
            raise ChaosError(f"{kind} needs a duration, e.g. {kind}@30s+20s")
        every = parse_seconds(m["every"]) if m["every"] else None
        if every is not None and every <= max(duration, 0.0):
            raise ChaosError(f"{raw!r}: the period must be longer than the duration")
        items.append(ChaosItem(kind, parse_seconds(m["start"]), duration, every))
    return items


class Chaos:
    """The schedule a run follows; thread-safe so chaos can be triggered while it runs."""

    def __init__(self, spec: str | None = None) -> None:
        self._items = parse(spec)
        self._lock = threading.Lock()

    def trigger(self, kind: str, at_s: float, duration_s: float = 0.0) -> None:
        """Chaos on demand: ``kind`` starting at run second ``at_s``."""
        (item,) = parse(f"{kind}@{at_s}s" + (f"+{duration_s}s" if duration_s else ""))
        with self._lock:
            self._items.append(item)

    def active(self, kind: str, t_s: float) -> bool:
        with self._lock:
            return any(i.kind == kind and i.occurrence(t_s) is not None for i in self._items)

    def active_kinds(self, t_s: float) -> list[str]:
        with self._lock:
            return sorted({i.kind for i in self._items if i.occurrence(t_s) is not None})

    def events_between(self, a_s: float, b_s: float) -> list[str]:
        """Event kinds (and window starts) that begin in [a_s, b_s), in schedule order."""
        with self._lock:
            return [i.kind for i in self._items if i.starts_between(a_s, b_s)]
