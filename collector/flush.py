"""flush: sealed WAL segments -> Parquet (zstd, Hive partitions by date), and compaction.

Everything here goes through a ``store.fs.Store``: a local directory or ``s3://bucket/prefix``
that several collectors may share, each naming its files with its writer id.

Exactly-once without a catalog: a segment's rows go to ``seg<segment>-<writer>.parquet`` in each
table/date partition, each file published atomically (store.fs), and the WAL file is deleted only
after every file is published. Replaying a segment after a crash skips each partition where the
segment is already published (its seg file, or a compaction of this writer's files whose range
covers it), so nothing is duplicated, even while another collector compacts. That rule is exact
because a writer flushes its segments in order: a file of a later segment in a partition means the
earlier ones there are complete.

Compaction merges one writer's small files of a partition into
``cmp<first>-<last>-<writer>-<nonce>.parquet`` (the writer of the rows, whoever compacts), in four
steps, each crash-safe:

  1. write ``_<name>.pending`` (inputs listed in its metadata), atomically
  2. delete the inputs                                          (crash: finish steps 2-3)
  3. move ``_<name>.pending`` -> ``<name>``  (S3: copy + delete; crash: finish it)

Readers never see a row twice; for the instant between 2 and 3 they miss the compacted rows.
Compaction, and finishing compactions a crash interrupted, run only in the one maintainer of the
store (``[storage] maintenance``) under its maintenance lease (store.locks).

Damaged files are never fatal: a WAL segment with a torn or corrupt record (its complete records are
replayed first) and, on a local store, a Parquet file whose footer or pages do not decode are moved to
``quarantine/`` (same relative path), logged, and counted on /healthz. Nothing is deleted. (Objects
on S3 are published by a single PUT, so torn files do not arise there.)
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
from ragtrail.store import layout, trace_index, trace_parts
from ragtrail.store.fs import Store, open_store
from ragtrail.store.locks import maintenance_lease
from ragtrail.store.schema import DERIVED, TABLES

log = logging.getLogger("ragtrail.flush")

INPUTS_KEY = b"ragtrail.compacted_inputs"


def write_parquet_atomic(
    table: pa.Table, path: Path, row_group_rows: int, metadata: dict | None = None
) -> None:
    """Write ``table`` to a local ``path`` via a synced temp file and an atomic rename."""
    path = Path(path).resolve()
    open_store(path.parent).write_parquet(table, str(path), row_group_rows, metadata)


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


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def published_in(store: Store, partition: str, writer: str, segment: int) -> bool:
    """Whether ``writer``'s ``segment`` is already in ``partition`` (as itself or compacted)."""
    for info in store.files(partition, suffix=""):
        name = layout.published_name(info.base_name)
        seg_range = layout.segment_range(name)
        if seg_range and layout.file_writer(name) == writer and seg_range[0] <= segment <= seg_range[1]:
            return True
    return False


def flush_segment(
    store: Store, writer: str, segment: Segment, row_group_rows: int, *, replay: bool = False
) -> int:
    """Publish a segment's rows as Parquet; returns the number of rows written.

    ``replay``: the segment may have been (partly) published before a crash; skip where it was.
    """
    per_table: dict[str, list[pa.Table]] = {}
    for payload in segment.payloads:
        for name, table in rows.decode_payload(payload).items():
            per_table.setdefault(name, []).append(table)
    merged = {}
    for name, tables in per_table.items():
        table = pa.concat_tables(tables, promote_options="permissive")
        if name in TABLES:
            table = table.select([c for c in TABLES[name].names if c in table.column_names])
        merged[name] = table
    return publish(store, writer, segment.id, merged, row_group_rows, replay=replay)


def publish(
    store: Store,
    writer: str,
    segment_id: int,
    tables: dict[str, pa.Table],
    row_group_rows: int,
    *,
    replay: bool = False,
) -> int:
    """Write one segment's ``tables`` (name -> rows), and the trace parts of its spans, as
    ``seg<segment_id>-<writer>`` files in their date partitions; returns the ingested rows written."""
    written = 0
    partitions: set[str] = set()
    for name, table in trace_parts.with_parts(tables, writer, segment_id).items():
        for date, part in split_by_date(table):
            directory = store.partition_dir(name, date)
            if replay and published_in(store, directory, writer, segment_id):
                continue
            path = f"{directory}/{layout.segment_file_name(segment_id, writer)}"
            store.write_parquet(part, path, row_group_rows)
            partitions.add(directory)
            written += 0 if name in DERIVED else part.num_rows
    for directory in partitions:
        store.sync_dir(directory)
    return written


# --- compaction --------------------------------------------------------------------------------------


def remove_own_temp_files(store: Store, writer: str) -> None:
    """Start-up, local stores: delete temp files this writer left; other writers' are in flight."""
    if not store.is_local:
        return  # S3 objects appear whole at close: there are no temp files
    for partition in store.partitions():
        for info in store.files(partition, suffix=layout.TMP):
            if layout.file_writer(layout.published_name(info.base_name)) == writer:
                store.delete(info.path)


def recover_partition(store: Store, partition: str, *, scan: bool = True) -> int:
    """Finish a compaction a crash interrupted (see the module docstring), then (``scan``, local
    stores) quarantine published files that do not decode; returns how many were quarantined.
    Maintainer only."""
    local = Path(partition) if store.is_local else None
    quarantined = 0
    for info in store.files(partition, suffix=layout.PENDING):
        if local and (why := readable(Path(info.path))):  # synced before step 2: only bit rot gets here
            quarantine(layout.data_dir_of(local), Path(info.path), why)
            quarantined += 1
            continue
        meta = store.read_metadata(info.path)
        for name in orjson.loads(meta.get(INPUTS_KEY, b"[]")):
            store.delete(f"{partition}/{name}")
        store.sync_dir(partition)
        store.move(info.path, f"{partition}/{layout.published_name(info.base_name)}")
        store.sync_dir(partition)
    for info in store.files(partition) if local and scan else []:
        if why := readable(Path(info.path)):
            quarantine(layout.data_dir_of(local), Path(info.path), why)
            quarantined += 1
    return quarantined


def compact_partition(store: Store, partition: str, config: FlushConfig) -> int:
    """Merge each writer's small files in the partition into one; returns how many were merged."""
    by_writer: dict[str, list[tuple[tuple[int, int], pa.FileInfo]]] = {}
    for info in store.files(partition):
        seg_range = layout.segment_range(info.base_name)
        if seg_range is not None and info.size < config.compact_target_bytes // 2:
            by_writer.setdefault(layout.file_writer(info.base_name), []).append((seg_range, info))
    merged = 0
    for writer, candidates in sorted(by_writer.items()):
        if len(candidates) >= config.compact_min_files:
            merged += _compact_files(store, partition, writer, sorted(candidates, key=lambda c: c[0]), config)
    return merged


def _compact_files(store: Store, partition: str, writer: str, candidates: list, config: FlushConfig) -> int:
    chosen, total = [], 0
    for seg_range, info in candidates:
        if chosen and total + info.size > config.compact_target_bytes:
            break
        chosen.append((seg_range, info))
        total += info.size
    if len(chosen) < 2:
        return 0

    # Streamed a batch at a time: inputs are capped by compressed bytes, and repetitive text
    # compresses 50x or more, so one input alone (an earlier compaction) can be GiBs once decoded.
    # Inputs are consecutive segments, each written in arrival order: the output stays near time order.
    def read(info, what: Callable):
        try:
            yield from what(info.path)
        except Exception as exc:
            if (why := damaged(exc)) and store.is_local:
                raise _DamagedInput(info.path, why) from exc
            raise

    first = min(r[0] for r, _ in chosen)
    last = max(r[1] for r, _ in chosen)
    final = f"{partition}/{layout.compacted_file_name(first, last, writer)}"
    pending = f"{partition}/{layout.pending_name(_name(final))}"
    inputs = orjson.dumps([i.base_name for _, i in chosen])
    try:
        schemas = [s for _, info in chosen for s in read(info, lambda p: [store.read_schema(p)])]
        schema = pa.unify_schemas(schemas, promote_options="permissive").remove_metadata()
        tables = (_conform(t, schema) for _, info in chosen for t in read(info, store.iter_tables))
        store.write_parquet_stream(schema, tables, pending, config.row_group_rows, {INPUTS_KEY: inputs})
    except _DamagedInput as bad:  # set it aside, compact the rest next round
        quarantine(layout.data_dir_of(Path(partition)), Path(bad.path), bad.why)
        return 0
    store.sync_dir(partition)
    for _, info in chosen:
        store.delete(info.path)
    store.sync_dir(partition)
    store.move(pending, final)
    store.sync_dir(partition)
    return len(chosen)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns, order and types (columns it lacks become nulls)."""
    if table.schema.remove_metadata() == schema:
        return table
    return pa.concat_tables([schema.empty_table(), table], promote_options="permissive").cast(schema)


class _DamagedInput(Exception):
    def __init__(self, path: str, why: str):
        super().__init__(why)
        self.path, self.why = path, why


def all_partitions(data_dir: Path) -> list[Path]:
    """A local data directory's partitions (store.erase works on local stores)."""
    return [Path(p) for p in open_store(data_dir).partitions()]


def max_published_segment(store: Store, writer: str) -> int:
    """The highest WAL segment id of ``writer`` in the store (0 if none)."""
    high = 0
    for partition in store.partitions():
        for info in store.files(partition, suffix=""):
            name = layout.published_name(info.base_name)
            seg_range = layout.segment_range(name)
            if seg_range and layout.file_writer(name) == writer:
                high = max(high, seg_range[1])
    return high


# --- the flusher thread ------------------------------------------------------------------------------


class Flusher:
    """Turns sealed segments into Parquet in the background; the maintainer also compacts."""

    def __init__(
        self,
        store: Store,
        writer: str,
        config: FlushConfig,
        release: Callable[[Segment], None],
        maintenance: bool = True,
    ):
        self.store = store
        self.writer = writer
        self.config = config
        self.maintenance = maintenance
        self._release = release
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
                    self.store, self.writer, segment, self.config.row_group_rows
                )
                segment.path.unlink(missing_ok=True)
                self._release(segment)
                return
            except (
                Exception
            ) as exc:  # disk full / read-only / store unreachable: the WAL still holds the rows
                self.failures += 1
                log.error("flush of WAL segment %d failed (%s); retrying in %.1fs", segment.id, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def compact(self) -> int:
        """One compaction pass over every partition, if this collector is the maintainer."""
        self._last_compaction = time.monotonic()
        if not self.maintenance:
            return 0
        merged = 0
        try:
            with maintenance_lease(self.store, self.writer) as held:
                if not held:
                    return 0
                for partition in self.store.partitions():
                    recover_partition(self.store, partition, scan=False)
                    merged += compact_partition(self.store, partition, self.config)
                refresh_trace_index(self.store)
        except OSError as exc:
            log.error("compaction failed: %s", exc)
        return merged


def refresh_trace_index(store: Store) -> None:
    """Rebuild the traces view's split index (store.trace_index); maintainer only, under the lease.
    A failure only leaves the old index, which stays correct (newer parts count as unseen)."""
    try:
        trace_index.refresh(store)
    except Exception as exc:
        log.warning("trace index refresh failed (the traces view stays exact, only slower): %s", exc)


def recover(
    store: Store, wal_dir: Path, writer: str, config: FlushConfig, replay, finish_compactions: bool = True
) -> tuple[int, int]:
    """Start-up: drop this writer's temp files, finish interrupted compactions and quarantine damaged
    Parquet files (``finish_compactions``: the maintainer, holding the lease), then flush every WAL
    segment left behind (quarantining damaged ones once their complete records are flushed).
    Returns (rows replayed, files quarantined). Running it twice over the same files is harmless."""
    wal_dir = Path(wal_dir)
    remove_own_temp_files(store, writer)
    quarantined = 0
    for partition in store.partitions() if finish_compactions else []:
        quarantined += recover_partition(store, partition)
    replayed = 0
    wal_dir.mkdir(parents=True, exist_ok=True)
    for segment in replay(wal_dir):
        if segment.payloads:
            try:
                replayed += flush_segment(store, writer, segment, config.row_group_rows, replay=True)
            except Exception as exc:  # records that pass their CRC but do not decode (a foreign file)
                if isinstance(exc, OSError) and exc.errno is not None:
                    raise  # disk trouble: fail start-up loudly rather than set good data aside
                segment.damage = f"records do not decode ({type(exc).__name__})"
        if segment.damage:
            quarantine(wal_dir.parent, segment.path, segment.damage)
            quarantined += 1
        else:
            segment.path.unlink(missing_ok=True)
    fsync_dir(wal_dir)
    return replayed, quarantined
