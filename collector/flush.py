"""flush: sealed WAL segments -> Parquet (zstd, Hive partitions by date), and compaction.

Exactly-once without a catalog: a segment's rows go to ``seg<segment>-<writer>.parquet`` in each
table/date partition, written to a temp name and renamed, and the WAL file is deleted only after
every rename is synced. Replaying a segment after a crash rewrites the same names with the same
rows, so nothing is duplicated. Compaction merges a partition's small files into
``cmp<first>-<last>-<writer>-<nonce>.parquet`` in four steps, each crash-safe:

  1. write ``.<name>.tmp`` and fsync                         (crash: the .tmp is deleted at start-up)
  2. rename to ``<name>.pending`` (inputs listed in its metadata)   (crash: finish steps 3-4)
  3. delete the inputs
  4. rename ``<name>.pending`` -> ``<name>``

Readers never see a row twice; for the instant between 3 and 4 they miss the compacted rows.
Only WAL segments already deleted are ever compacted, so replay and compaction never overlap.

Damaged files are never fatal: a WAL segment with a torn or corrupt record (its complete records are
replayed first) and a Parquet file whose footer or pages do not decode are moved to
``quarantine/`` (same relative path), logged, and counted on /healthz. Nothing is deleted.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ragtrail.collector import rows
from ragtrail.collector.wal import Segment, fsync_dir
from ragtrail.config import FlushConfig
from ragtrail.store import layout
from ragtrail.store.locks import maintenance_lock
from ragtrail.store.schema import TABLES

log = logging.getLogger("ragtrail.flush")

INPUTS_KEY = b"ragtrail.compacted_inputs"


def write_parquet_atomic(
    table: pa.Table, path: Path, row_group_rows: int, metadata: dict | None = None
) -> None:
    """Write ``table`` to ``path`` via a synced temp file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}{layout.TMP}"
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    try:
        with tmp.open("wb") as fh:
            pq.write_table(table, fh, compression="zstd", row_group_size=row_group_rows)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a disk-full write must not leave its partial file taking space
        raise


def quarantine(data_dir: Path, path: Path, reason: str) -> Path:
    """Move a damaged file to ``quarantine/`` under its path relative to the data dir; never delete."""
    data_dir, path = Path(data_dir).resolve(), Path(path).resolve()
    rel = path.relative_to(data_dir) if path.is_relative_to(data_dir) else Path(path.name)
    target = layout.quarantine_dir(data_dir) / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target = target.with_name(f"{target.name}.{secrets.token_hex(4)}")
    os.replace(path, target)
    fsync_dir(path.parent)
    fsync_dir(target.parent)
    log.error("quarantined %s (%s); moved to %s", rel, reason, target)
    return target


def damaged(exc: Exception) -> str | None:
    """Why ``exc`` means the file is damaged, or None when it is a system error (disk, permissions)
    that says nothing about the file. pyarrow reports a bad page as an OSError without an errno."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return None
    if isinstance(exc, pa.ArrowException | OSError):
        return f"unreadable Parquet: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    return None


def readable(path: Path) -> str | None:
    """None if the Parquet footer decodes, else why not. System errors are raised, not judged."""
    try:
        pq.read_metadata(path)
    except Exception as exc:
        if why := damaged(exc):
            return why
        raise
    return None


def split_by_date(table: pa.Table) -> list[tuple[str, pa.Table]]:
    dates = pc.cast(table["time"], pa.date32())
    out = []
    for date in pc.unique(dates).to_pylist():
        if date is None:
            continue
        out.append((date.isoformat(), table.filter(pc.equal(dates, pa.scalar(date, pa.date32())))))
    nulls = pc.is_null(dates)
    if pc.any(nulls).as_py():  # rows without a time go to the epoch partition rather than vanish
        out.append(("1970-01-01", table.filter(nulls)))
    return out


def flush_segment(data_dir: Path, writer: str, segment: Segment, row_group_rows: int) -> int:
    """Publish a segment's rows as Parquet; returns the number of rows written."""
    per_table: dict[str, list[pa.Table]] = {}
    for payload in segment.payloads:
        for name, table in rows.decode_payload(payload).items():
            per_table.setdefault(name, []).append(table)
    written = 0
    partitions: set[Path] = set()
    for name, tables in per_table.items():
        table = pa.concat_tables(tables, promote_options="permissive")
        if name in TABLES:
            table = table.select([c for c in TABLES[name].names if c in table.column_names])
        for date, part in split_by_date(table):
            directory = layout.partition_dir(data_dir, name, date)
            write_parquet_atomic(
                part, directory / layout.segment_file_name(segment.id, writer), row_group_rows
            )
            partitions.add(directory)
            written += part.num_rows
    for directory in partitions:
        fsync_dir(directory)
    return written


# --- compaction --------------------------------------------------------------------------------------


def recover_partition(partition: Path) -> int:
    """Finish or undo a compaction a crash interrupted (see the module docstring), then quarantine
    published files that do not decode; returns how many were quarantined."""
    for tmp in partition.glob(f".*{layout.TMP}"):
        tmp.unlink(missing_ok=True)
    data_dir = layout.data_dir_of(partition)
    quarantined = 0
    for pending in partition.glob(f"*{layout.PENDING}"):
        if why := readable(pending):  # written and synced before step 2, so only bit rot gets here
            quarantine(data_dir, pending, why)
            quarantined += 1
            continue
        meta = pq.read_schema(pending).metadata or {}
        for name in orjson.loads(meta.get(INPUTS_KEY, b"[]")):
            (partition / name).unlink(missing_ok=True)
        pending.rename(partition / pending.name[: -len(layout.PENDING)])
        fsync_dir(partition)
    for path in layout.published_files(partition):
        if why := readable(path):
            quarantine(data_dir, path, why)
            quarantined += 1
    return quarantined


def compact_partition(partition: Path, writer: str, config: FlushConfig, max_segment: int | None) -> int:
    """Merge the partition's small files into one; returns how many files were merged."""
    candidates = []
    for path in layout.published_files(partition):
        seg_range = layout.segment_range(path.name)
        if seg_range is None or (max_segment is not None and seg_range[1] >= max_segment):
            continue
        if path.stat().st_size < config.compact_target_bytes // 2:
            candidates.append((seg_range, path))
    if len(candidates) < config.compact_min_files:
        return 0
    candidates.sort()
    chosen, total = [], 0
    for seg_range, path in candidates:
        if chosen and total + path.stat().st_size > config.compact_target_bytes:
            break
        chosen.append((seg_range, path))
        total += path.stat().st_size
    if len(chosen) < 2:
        return 0
    tables = []
    for _, path in chosen:
        try:
            tables.append(pq.read_table(path))
        except Exception as exc:  # a damaged input: set it aside, compact the rest next round
            if not (why := damaged(exc)):
                raise
            quarantine(layout.data_dir_of(partition), path, why)
            return 0
    table = pa.concat_tables(tables, promote_options="permissive")
    table = table.sort_by("time")
    first = min(r[0] for r, _ in chosen)
    last = max(r[1] for r, _ in chosen)
    final = partition / layout.compacted_file_name(first, last, writer)
    pending = partition / f"{final.name}{layout.PENDING}"
    inputs = orjson.dumps([p.name for _, p in chosen])
    write_parquet_atomic(table, pending, config.row_group_rows, {INPUTS_KEY: inputs})
    fsync_dir(partition)
    for _, path in chosen:
        path.unlink(missing_ok=True)
    fsync_dir(partition)
    pending.rename(final)
    fsync_dir(partition)
    return len(chosen)


def all_partitions(data_dir: Path) -> list[Path]:
    root = layout.tables_dir(data_dir)
    return sorted(p for p in root.glob("*/date=*") if p.is_dir()) if root.is_dir() else []


def max_published_segment(data_dir: Path) -> int:
    high = 0
    for partition in all_partitions(data_dir):
        for path in partition.iterdir():
            name = path.name.removesuffix(layout.PENDING)
            seg_range = layout.segment_range(name)
            if seg_range:
                high = max(high, seg_range[1])
    return high


# --- the flusher thread ------------------------------------------------------------------------------


class Flusher:
    """Turns sealed segments into Parquet in the background, then compacts now and then."""

    def __init__(
        self,
        data_dir: Path,
        writer: str,
        config: FlushConfig,
        release: Callable[[Segment], None],
        oldest_live_segment: Callable[[], int | None],
    ):
        self.data_dir = Path(data_dir)
        self.writer = writer
        self.config = config
        self._release = release
        self._oldest_live_segment = oldest_live_segment
        self._queue: queue.Queue[Segment | None] = queue.Queue()
        self._last_compaction = time.monotonic()
        self.flushed_rows = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="flusher", daemon=True)
        self._thread.start()

    def submit(self, segment: Segment) -> None:
        self._queue.put(segment)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(60)

    def _run(self) -> None:
        while True:
            try:
                segment = self._queue.get(timeout=self.config.compact_interval_seconds)
            except queue.Empty:
                segment = False
            if segment is None:
                return
            if segment:
                self._flush_with_retry(segment)
            if time.monotonic() - self._last_compaction >= self.config.compact_interval_seconds:
                try:
                    self.compact()
                except Exception:  # this thread must outlive any one bad partition
                    log.exception("compaction failed")

    def _flush_with_retry(self, segment: Segment) -> None:
        delay = 0.5
        while True:
            try:
                self.flushed_rows += flush_segment(
                    self.data_dir, self.writer, segment, self.config.row_group_rows
                )
                segment.path.unlink(missing_ok=True)
                self._release(segment)
                return
            except Exception as exc:  # disk full / read-only: the WAL still holds the rows; retry
                self.failures += 1
                log.error("flush of WAL segment %d failed (%s); retrying in %.1fs", segment.id, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def compact(self) -> int:
        self._last_compaction = time.monotonic()
        merged = 0
        with maintenance_lock(self.data_dir, blocking=False) as locked:
            if not locked:
                return 0
            oldest = self._oldest_live_segment()
            for partition in all_partitions(self.data_dir):
                try:
                    merged += compact_partition(partition, self.writer, self.config, oldest)
                except OSError as exc:
                    log.error("compaction of %s failed: %s", partition, exc)
        return merged


def recover(data_dir: Path, wal_dir: Path, writer: str, config: FlushConfig, replay) -> tuple[int, int]:
    """Start-up: finish interrupted compactions, quarantine damaged Parquet files, then flush every
    WAL segment left behind (quarantining damaged ones once their complete records are flushed).
    Returns (rows replayed, files quarantined). Running it twice over the same files is harmless."""
    quarantined = 0
    for partition in all_partitions(data_dir):
        quarantined += recover_partition(partition)
    replayed = 0
    Path(wal_dir).mkdir(parents=True, exist_ok=True)
    for segment in replay(wal_dir):
        if segment.payloads:
            try:
                replayed += flush_segment(data_dir, writer, segment, config.row_group_rows)
            except Exception as exc:  # records that pass their CRC but do not decode (a foreign file)
                if isinstance(exc, OSError) and exc.errno is not None:
                    raise  # disk trouble: fail start-up loudly rather than set good data aside
                segment.damage = f"records do not decode ({type(exc).__name__})"
        if segment.damage:
            quarantine(data_dir, segment.path, segment.damage)
            quarantined += 1
        else:
            segment.path.unlink(missing_ok=True)
    fsync_dir(wal_dir)
    return replayed, quarantined
