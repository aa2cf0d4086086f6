"""WAL torn tails and compaction crash recovery, on real files."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from ragtrail.collector import flush, wal
from ragtrail.config import FlushConfig, WalConfig
from ragtrail.store import layout
from ragtrail.store.fs import open_store
from ragtrail.store.schema import SPANS


def spans_table(start: int, n: int) -> pa.Table:
    rows = {name: [None] * n for name in SPANS.names}
    rows.update(
        time=[1_764_050_000_000_000 + i for i in range(start, start + n)],
        span_id=[f"{i:016x}" for i in range(start, start + n)],
    )
    return pa.Table.from_pydict(rows, schema=SPANS)


def test_group_commit_then_torn_tail_replays_complete_records(tmp_path):
    sealed = []
    log = wal.WriteAheadLog(tmp_path, WalConfig(segment_seconds=60), first_segment=7, on_seal=sealed.append)
    futures = [log.append(f"record-{i}".encode()) for i in range(100)]
    assert {f.result(10) for f in futures} == {7}
    log.close()
    path = wal.segment_path(tmp_path, 7)
    with path.open("ab") as fh:  # a kill -9 in the middle of the next write
        fh.write(b"\x10\x00\x00\x00\xde\xad")
    (segment,) = list(wal.replay(tmp_path))
    assert segment.id == 7 and segment.payloads == [f"record-{i}".encode() for i in range(100)]


def test_wal_refuses_beyond_its_memory_bound(tmp_path):
    import pytest

    from ragtrail.collector.errors import Overloaded

    log = wal.WriteAheadLog(
        tmp_path, WalConfig(segment_seconds=60, max_pending_bytes=1000), 1, on_seal=lambda s: None
    )
    log.append(b"x" * 600).result(10)
    with pytest.raises(Overloaded) as refused:
        log.append(b"x" * 600)
    assert refused.value.retry_after in (1, 2, 3) and log.overloaded == 1
    log.close()


def test_a_full_wal_lets_a_request_wait_for_the_flusher_then_refuses(tmp_path):
    """Admission wait: space freed by the flusher within ``wait`` admits the request; none, a 503."""
    import threading

    import pytest

    from ragtrail.collector.errors import Overloaded

    log = wal.WriteAheadLog(
        tmp_path, WalConfig(segment_seconds=60, max_pending_bytes=1000), 1, on_seal=lambda s: None
    )
    log.append(b"x" * 600).result(10)
    with pytest.raises(Overloaded):
        log.append(b"y" * 600, wait=0.05)  # nobody frees space: refused once the wait is over
    held = log.unflushed_bytes
    flusher = threading.Timer(0.1, log.release, args=(wal.Segment(1, tmp_path / "x", size=held),))
    flusher.start()
    assert log.append(b"y" * 600, wait=5).result(10) == 1  # admitted once the flusher released bytes
    flusher.join()
    log.close()


def _partition_with_files(data_dir, n_files):
    part = layout.partition_dir(data_dir, "spans", "2025-11-25")
    for seg in range(1, n_files + 1):
        flush.write_parquet_atomic(
            spans_table(seg * 10, 10), part / layout.segment_file_name(seg, "w1"), 1000
        )
    return part


def _rows(part):
    return sorted(
        pa.concat_tables([pq.read_table(p) for p in layout.published_files(part)])["span_id"].to_pylist()
    )


def test_compaction_merges_small_files_without_changing_rows(tmp_path):
    part = _partition_with_files(tmp_path, 20)
    before = _rows(part)
    merged = flush.compact_partition(open_store(tmp_path), str(part), FlushConfig(compact_min_files=16))
    assert merged == 20
    files = layout.published_files(part)
    assert len(files) == 1 and layout.segment_range(files[0].name) == (1, 20)
    assert _rows(part) == before


def test_compaction_streams_inputs_of_evolving_schemas_into_full_row_groups(tmp_path):
    """Inputs are streamed one at a time: their schemas are unified up front (a column added
    later reads as null in older rows), and small inputs are
    gathered into full row groups rather than one small group each. Rows keep their order: input
    by input (segment order), each as it was written."""
    part = layout.partition_dir(tmp_path, "spans", "2025-11-25")
    written = {}
    for seg in range(1, 21):
        table = pa.table({"time": pa.array([seg * 100 + i for i in range(99, -1, -1)], pa.timestamp("us")),
                          "span_id": [f"s{seg}-{i}" for i in range(100)]})  # fmt: skip
        if seg > 10:  # a column that newer writers add
            table = table.append_column("route", pa.array(["fast"] * 100))
        flush.write_parquet_atomic(table, part / layout.segment_file_name(seg, "w1"), 1000)
        written[seg] = table["time"].to_pylist()
    config = FlushConfig(compact_min_files=16, row_group_rows=256)
    assert flush.compact_partition(open_store(tmp_path), str(part), config) == 20
    (merged,) = layout.published_files(part)
    meta = pq.read_metadata(merged)
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [256] * 7 + [208]
    table = pq.read_table(merged)
    assert table.column_names == ["time", "span_id", "route"]
    assert table["route"].to_pylist() == [None] * 1000 + ["fast"] * 1000
    assert table["span_id"].to_pylist() == [f"s{g}-{i}" for g in range(1, 21) for i in range(100)]
    assert table["time"].to_pylist() == [t for g in range(1, 21) for t in written[g]]


def test_crash_after_pending_rename_is_finished_at_startup(tmp_path):
    part = _partition_with_files(tmp_path, 4)
    before = _rows(part)
    inputs = layout.published_files(part)
    table = pa.concat_tables([pq.read_table(p) for p in inputs])
    final = part / layout.compacted_file_name(1, 4, "w1")
    pending = part / layout.pending_name(final.name)
    import orjson

    flush.write_parquet_atomic(
        table, pending, 1000, {flush.INPUTS_KEY: orjson.dumps([p.name for p in inputs])}
    )
    inputs[0].unlink()  # crashed half-way through deleting the inputs
    (part / ".seg000000000005-w1.parquet.tmp").write_bytes(b"partial")  # and a flush never finished
    (part / ".seg000000000005-w2.parquet.tmp").write_bytes(b"partial")  # another writer's, in flight
    store = open_store(tmp_path)
    flush.remove_own_temp_files(store, "w1")
    flush.recover_partition(store, str(part))
    (part / ".seg000000000005-w2.parquet.tmp").unlink()
    assert [p.name for p in part.iterdir()] == [final.name]
    assert _rows(part) == before  # each row exactly once
