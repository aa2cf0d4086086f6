"""Erasure: remove one user's data from every table, the compacted files and the write-ahead log.

What goes: every row of every trace in which the user appears (spans with their pseudonym — or the
raw id, if redaction was off — and all documents, content, logs and quality rows of those traces),
and any other row in any table whose text holds the pseudonym or the raw id (raw ids shorter than
four characters are only matched as whole user ids). Each Parquet file holding such rows is rewritten
without them (temp file + fsync + atomic rename, same name) or deleted when nothing is left; the
traces view's split index (store.trace_index) is cleared.

The WAL: with no collector running, erasure rewrites every WAL segment without the user's rows
(same framing, new CRCs, atomic rename). With a collector running (it holds
``locks.collector_presence``), erasure waits until the segments that existed when it started are
flushed to Parquet, then rewrites Parquet; rows the collector receives after erasure started are not
covered — run it again, or stop the collector first, if the user may still be sending.

Everything happens under ``maintenance_lock``, so compaction and retention never see a half-erased
store. Afterwards an ``erasure`` entry goes to the admin audit log with counts and ``user_ref``
(store.audit.subject_ref: a keyed hash of the pseudonym, the same one export entries use) — whoever
holds the raw id and the key can show the erasure happened; the log holds neither the raw id nor the
pseudonym.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ragtrail.collector import rows, wal
from ragtrail.collector.flush import recover_partition
from ragtrail.store import admin_log, layout, trace_index
from ragtrail.store.audit import pseudonym_for, subject_ref
from ragtrail.store.fs import open_store
from ragtrail.store.locks import collector_running, maintenance_lock

MIN_RAW_SUBSTRING = 4


class ErasureError(RuntimeError):
    pass


class _Target:
    """Which rows belong to the user."""

    def __init__(self, ids: set[str], needles: set[str]):
        self.ids = ids  # exact user_id values
        self.needles = needles  # substrings searched in every text column
        self.traces: set[str] = set()

    def add_traces(self, table: pa.Table) -> None:
        """Collect trace ids of the user's spans (and of any spans row naming them)."""
        hit = self._mentions(table)
        if "user_id" in table.column_names:
            hit = pc.or_(hit, pc.fill_null(pc.is_in(table["user_id"], pa.array(sorted(self.ids))), False))
        self.traces.update(t for t in table.filter(hit)["trace_id"].to_pylist() if t)

    def _mentions(self, table: pa.Table) -> pa.Array:
        hit = pa.array([False] * table.num_rows)
        for field in table.schema:
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                for needle in self.needles:
                    hit = pc.or_(hit, pc.fill_null(pc.match_substring(table[field.name], needle), False))
        return hit

    def doomed(self, table: pa.Table) -> pa.Array:
        hit = self._mentions(table)
        if "user_id" in table.column_names:
            hit = pc.or_(hit, pc.fill_null(pc.is_in(table["user_id"], pa.array(sorted(self.ids))), False))
        if "trace_id" in table.column_names and self.traces:
            in_trace = pc.is_in(table["trace_id"], pa.array(sorted(self.traces)))
            hit = pc.or_(hit, pc.fill_null(in_trace, False))
        return hit


def _parquet_files(store) -> list[tuple[str, str]]:
    """(table, path) of every published Parquet file, every writer's, wherever the store lives."""
    return [(table, path) for table in store.tables() for path in store.published(table)]


def _wait_for_flush(data_dir: Path, timeout_s: float) -> int:
    """A live collector owns the WAL: wait until the segments there now are in Parquet."""
    wal_dir = data_dir / "wal"
    waiting = [p for _, p in wal.list_segments(wal_dir)] if wal_dir.is_dir() else []
    deadline = time.monotonic() + timeout_s
    while any(p.exists() and wal.read_segment(p)[0] for p in waiting):
        if time.monotonic() > deadline:
            raise ErasureError(
                f"the running collector did not flush its write-ahead log within {timeout_s:g}s; "
                "nothing was erased — retry, or stop the collector and erase again"
            )
        time.sleep(0.1)
    return len(waiting)


def _read_wal(data_dir: Path) -> list[tuple[Path, list[dict[str, pa.Table]]]]:
    wal_dir = data_dir / "wal"
    if not wal_dir.is_dir():
        return []
    return [
        (path, [rows.decode_payload(p) for p in wal.read_segment(path)[0]])
        for _, path in wal.list_segments(wal_dir)
    ]


def _rewrite_wal(decoded: list[tuple[Path, list[dict[str, pa.Table]]]], target: _Target) -> dict[str, int]:
    """No collector: drop the user's rows from every WAL segment in place (atomic rename)."""
    counts = {"wal_segments_rewritten": 0, "wal_rows_removed": 0}
    for path, payloads in decoded:
        removed, frames = 0, [wal.MAGIC]
        for tables in payloads:
            kept = {}
            for name, table in tables.items():
                doomed = target.doomed(table)
                removed += pc.sum(doomed).as_py() or 0
                kept[name] = table.filter(pc.invert(doomed))
            payload = rows.encode_arrow(kept)
            if payload:
                frames += [wal.frame_header(payload), payload]
        if not removed:
            continue
        tmp = path.with_name(f".{path.name}{layout.TMP}")
        with tmp.open("wb") as fh:
            fh.write(b"".join(frames))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        wal.fsync_dir(path.parent)
        counts["wal_segments_rewritten"] += 1
        counts["wal_rows_removed"] += removed
    return counts


def erase_user(
    data_dir: str | Path,
    user: str,
    *,
    storage: str | None = None,
    wait_s: float = 30.0,
    row_group_rows: int = 122_880,
    actor: str = "cli",
) -> dict[str, Any]:
    """Erase ``user`` (raw id or pseudonym); returns the counts written to the admin audit log.

    ``storage``: the Parquet store when it is not the data directory (a shared directory or
    s3://…, written by several collectors): every writer's files are rewritten there. The WAL is
    this data directory's; erase on each collector's host for the rows still in its WAL."""
    data_dir = Path(data_dir).resolve()
    store = open_store(storage or data_dir)
    pseudonym = pseudonym_for(data_dir, user)
    ids = {pseudonym, user}
    needles = {pseudonym} | ({user} if len(user) >= MIN_RAW_SUBSTRING else set())
    target = _Target(ids, needles)
    report: dict[str, Any] = {"actor": actor, "user_ref": subject_ref(data_dir, pseudonym)}
    with maintenance_lock(data_dir):
        live = collector_running(data_dir)
        report["collector_running"] = live
        decoded = []
        if live:
            report["wal_segments_waited_for"] = _wait_for_flush(data_dir, wait_s)
        else:
            for partition in store.partitions():
                recover_partition(store, partition)  # finish crashed compactions: no stray inputs stay behind
            decoded = _read_wal(data_dir)
        # The user's traces first, from every span wherever it lies: a trace's root (with the user
        # id) may be in Parquet while its other spans' rows are still in the WAL, or the reverse.
        files = _parquet_files(store)
        for table, path in files:
            if table == "spans":
                target.add_traces(store.read_table(path))
        for _, payloads in decoded:
            for tables in payloads:
                if "spans" in tables:
                    target.add_traces(tables["spans"])
        if not live:
            report.update(_rewrite_wal(decoded, target))
        removed: dict[str, int] = {}
        rewritten = deleted = 0
        for table, path in files:
            data = store.read_table(path)
            doomed = target.doomed(data)
            n = pc.sum(doomed).as_py() or 0
            if not n:
                continue
            removed[table] = removed.get(table, 0) + n
            kept = data.filter(pc.invert(doomed))
            if kept.num_rows:
                store.write_parquet(kept, path, row_group_rows)
                rewritten += 1
            else:
                store.delete(path)
                deleted += 1
            store.sync_dir(path.rsplit("/", 1)[0])
        trace_index.clear(store)  # it may list the user's trace ids; the maintainer rebuilds it
    report.update(traces=len(target.traces), rows_removed=removed, files_rewritten=rewritten,
                  files_deleted=deleted)  # fmt: skip
    admin_log.append(data_dir, "erasure", report)
    return report
