"""Retention: drop date partitions older than each table's retention period.

``[retention]`` in ragtrail.toml: ``days`` is the default for every table; a key per view that has a
table of its own (spans, documents, content, metrics, gpu, logs, quality) overrides it. The derived
views (traces, audit) follow spans/content/documents, and trace_parts (the traces view's partial
folds) is always kept as long as spans. Nothing is dropped without a ``[retention]``
section. A partition ``date=D`` of a table kept N days is dropped once D < today (UTC) - N, i.e. a
day's rows live at least N full days. Runs under ``maintenance_lock`` (no compaction or erasure at
the same time); each run that drops something, and every run asked for from the CLI, is written to
the admin audit log. ``ragtrail retention apply`` runs it; the collector runs it every
``interval_hours`` (default 1).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from ragtrail.store import admin_log
from ragtrail.store.fs import open_store
from ragtrail.store.locks import maintenance_lock
from ragtrail.store.schema import DERIVED, TABLES

SETTINGS = {"days", "interval_hours"}


def policy(section: dict[str, Any] | None) -> dict[str, int]:
    """table -> days to keep, from the ``[retention]`` table; tables without a period are kept."""
    section = section or {}
    own = [t for t in TABLES if t not in DERIVED]
    unknown = set(section) - SETTINGS - set(own)
    if unknown:
        raise ValueError(
            f"[retention]: unknown key(s) {', '.join(sorted(unknown))}; use days or one of {', '.join(own)}"
        )
    out = {}
    for table in TABLES:
        source = DERIVED.get(table, table)
        days = section.get(source, section.get("days"))
        if days is not None:
            if int(days) < 1:
                raise ValueError(f"[retention] {table}: days must be at least 1, got {days}")
            out[table] = int(days)
    return out


def expired(store, keep: dict[str, int], today: dt.date) -> list[tuple[str, str]]:
    """(table, partition path) of every date partition past its table's retention."""
    out = []
    for table, days in keep.items():
        cutoff = today - dt.timedelta(days=days)
        for partition in store.partitions(table, until=cutoff - dt.timedelta(days=1)):
            out.append((table, partition))
    return out


def apply(
    data_dir: str | Path,
    section: dict[str, Any] | None,
    *,
    storage: str | None = None,
    today: dt.date | None = None,
    actor: str = "cli",
) -> dict[str, Any]:
    """Drop expired partitions; returns what was dropped (also written to the admin audit log).

    ``storage``: the Parquet store when it is not the data directory (shared by several
    collectors): partitions are dropped whole, whichever writers' files they hold."""
    keep = policy(section)
    today = today or dt.datetime.now(dt.UTC).date()
    store = open_store(storage or data_dir)
    dropped: dict[str, list[str]] = {}
    files = 0
    with maintenance_lock(Path(data_dir)):
        for table, partition in expired(store, keep, today):
            files += store.delete_partition(partition)
            dropped.setdefault(table, []).append(partition.rsplit("/", 1)[-1].removeprefix("date="))
    report = {
        "actor": actor,
        "today": today.isoformat(),
        "keep_days": keep,
        "dropped": dropped,
        "files": files,
    }
    if dropped or actor == "cli":
        admin_log.append(data_dir, "retention", report)
    return report
