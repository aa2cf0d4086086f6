"""Retention: drop date partitions older than each table's retention period.

``[retention]`` in ragtrail.toml: ``days`` is the default for every table; a key per view that has a
table of its own (spans, documents, content, metrics, gpu, logs, quality) overrides it. The derived
views (traces, audit) follow spans/content/documents. Nothing is dropped without a ``[retention]``
section. A partition ``date=D`` of a table kept N days is dropped once D < today (UTC) - N, i.e. a
day's rows live at least N full days. Runs under ``maintenance_lock`` (no compaction or erasure at
the same time); each run that drops something, and every run asked for from the CLI, is written to
the admin audit log. ``ragtrail retention apply`` runs it; the collector runs it every
``interval_hours`` (default 1).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from ragtrail.store import admin_log, layout
from ragtrail.store.locks import maintenance_lock
from ragtrail.store.schema import TABLES

SETTINGS = {"days", "interval_hours"}


def policy(section: dict[str, Any] | None) -> dict[str, int]:
    """table -> days to keep, from the ``[retention]`` table; tables without a period are kept."""
    section = section or {}
    unknown = set(section) - SETTINGS - set(TABLES)
    if unknown:
        raise ValueError(
            f"[retention]: unknown key(s) {', '.join(sorted(unknown))}; use days or one of {', '.join(TABLES)}"
        )
    out = {}
    for table in TABLES:
        days = section.get(table, section.get("days"))
        if days is not None:
            if int(days) < 1:
                raise ValueError(f"[retention] {table}: days must be at least 1, got {days}")
            out[table] = int(days)
    return out


def expired(data_dir: str | Path, keep: dict[str, int], today: dt.date) -> list[tuple[str, Path]]:
    out = []
    for table, days in keep.items():
        root = layout.table_dir(Path(data_dir), table)
        if not root.is_dir():
            continue
        cutoff = today - dt.timedelta(days=days)
        for partition in sorted(root.glob("date=*")):
            date = layout.partition_date(partition)
            if date is not None and date < cutoff:
                out.append((table, partition))
    return out


def apply(
    data_dir: str | Path, section: dict[str, Any] | None, *, today: dt.date | None = None, actor: str = "cli"
) -> dict[str, Any]:
    """Drop expired partitions; returns what was dropped (also written to the admin audit log)."""
    keep = policy(section)
    today = today or dt.datetime.now(dt.UTC).date()
    dropped: dict[str, list[str]] = {}
    files = 0
    with maintenance_lock(Path(data_dir)):
        for table, partition in expired(data_dir, keep, today):
            files += sum(1 for _ in partition.glob(f"*{layout.PARQUET}"))
            shutil.rmtree(partition)
            dropped.setdefault(table, []).append(partition.name.removeprefix("date="))
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
