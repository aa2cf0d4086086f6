"""Where things live under the data directory, and how files are named.

    <data>/wal/<segment:012d>.wal                              write-ahead log segments (collector)
    <data>/tables/<table>/date=YYYY-MM-DD/<file>.parquet       the durable store (Hive partitions)
    <data>/writer_id                                            this collector's stable writer id
    <data>/pseudonym.key                                        HMAC key for user ids (0600)
    <data>/audit-signing.key                                    Ed25519 key for exports, admin log (0600)
    <data>/admin-audit.jsonl                                    admin actions, hash-chained (store.admin_log)
    <data>/maintenance.lock, collector.lock                     flock files (store.locks)
    <data>/quarantine/<path relative to data>                   damaged WAL segments / Parquet files

Parquet file names say where the rows came from, so replay and compaction stay idempotent:

    seg<segment:012d>-<writer>.parquet                 rows of one WAL segment (flush output)
    cmp<first:012d>-<last:012d>-<writer>-<nonce>.parquet   a compaction of flushed files

Files in flight carry a suffix DuckDB's ``*.parquet`` glob never matches, and a leading ``.`` or ``_``
that Spark, Hive and Trino skip when they list a partition: ``.<name>.tmp`` while written (local
stores only), ``_<name>.pending`` once complete but not yet published (see collector.flush).
This module owns names and paths only; it never writes.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
from pathlib import Path

PARQUET = ".parquet"
TMP = ".tmp"
PENDING = ".pending"
SEGMENT_FILE = re.compile(r"^seg(\d{12})-([\w-]+)\.parquet$")
COMPACTED_FILE = re.compile(r"^cmp(\d{12})-(\d{12})-([\w-]+?)-([0-9a-f]{8})\.parquet$")


def tables_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "tables"


def table_dir(data_dir: Path, table: str) -> Path:
    return tables_dir(data_dir) / table


def partition_dir(data_dir: Path, table: str, date: dt.date | str) -> Path:
    return table_dir(data_dir, table) / f"date={date}"


def data_dir_of(partition: Path) -> Path:
    """The data dir a ``tables/<table>/date=...`` partition belongs to."""
    return Path(partition).parents[2]


def partition_date(partition: Path) -> dt.date | None:
    name = partition.name
    if not name.startswith("date="):
        return None
    try:
        return dt.date.fromisoformat(name[5:])
    except ValueError:
        return None


def quarantine_dir(data_dir: Path) -> Path:
    """Where damaged files go (outside tables/, so no view ever reads them)."""
    return Path(data_dir) / "quarantine"


def quarantined_files(data_dir: Path) -> list[Path]:
    root = quarantine_dir(data_dir)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def table_glob(data_dir: Path, table: str) -> str:
    """The glob a reader passes to DuckDB's read_parquet for one table."""
    return str(table_dir(data_dir, table).resolve() / "*" / f"*{PARQUET}")


def segment_file_name(segment: int, writer: str) -> str:
    return f"seg{segment:012d}-{writer}{PARQUET}"


def compacted_file_name(first: int, last: int, writer: str) -> str:
    return f"cmp{first:012d}-{last:012d}-{writer}-{secrets.token_hex(4)}{PARQUET}"


def pending_name(final_name: str) -> str:
    return f"_{final_name}{PENDING}"


def published_name(file_name: str) -> str:
    """The published name of a file in flight (``_x.pending``, ``.x.tmp``, ``._x.pending.tmp``)."""
    for prefix, suffix in (("_", PENDING), (".", TMP), ("", PENDING)):
        if file_name.startswith(prefix) and file_name.endswith(suffix):
            return published_name(file_name[len(prefix) : -len(suffix)])
    return file_name


def segment_range(file_name: str) -> tuple[int, int] | None:
    """The WAL segment range a published Parquet file holds, from its name."""
    if m := SEGMENT_FILE.match(file_name):
        seg = int(m.group(1))
        return seg, seg
    if m := COMPACTED_FILE.match(file_name):
        return int(m.group(1)), int(m.group(2))
    return None


def file_writer(file_name: str) -> str | None:
    """The writer id a published Parquet file's name carries."""
    if m := SEGMENT_FILE.match(file_name):
        return m.group(2)
    if m := COMPACTED_FILE.match(file_name):
        return m.group(3)
    return None


def published_files(partition: Path) -> list[Path]:
    return sorted(p for p in partition.glob(f"*{PARQUET}") if p.is_file())


def has_files(data_dir: Path, table: str) -> bool:
    root = table_dir(data_dir, table)
    return root.is_dir() and any(True for _ in root.glob(f"*/*{PARQUET}"))


def writer_id(data_dir: Path, configured: str | None = None) -> str:
    """A stable id naming this collector's files; created once per data directory."""
    if configured:
        if not re.fullmatch(r"[A-Za-z0-9_]+", configured):
            raise ValueError("writer id must be letters, digits and underscores")
        return configured
    path = Path(data_dir) / "writer_id"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    wid = "w" + secrets.token_hex(4)
    tmp = path.with_suffix(TMP)
    tmp.write_text(wid)
    os.replace(tmp, path)
    return wid
