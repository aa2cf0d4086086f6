"""Disk faults: a full or read-only data dir answers 503 and heals by itself; damaged WAL segments and
Parquet files are quarantined and reported, never fatal to start-up or to queries.

The full / read-only cases mount a small tmpfs (root only); elsewhere they skip and say why.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ragtrail.collector import flush, pipeline, wal
from ragtrail.collector.encoding import Format
from ragtrail.config import FlushConfig
from ragtrail.store import db, layout
from ragtrail.store.fs import open_store
from tests.collector.test_bad_input import post
from tests.collector.test_durability import SPANS_PER_REQUEST, request_bytes, trace_id_of
from tests.conftest import wait_until


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture
def small_fs(tmp_path: Path):
    """A 6 MiB tmpfs to use as the data dir (its parent holds the collector log, off the tmpfs)."""
    if os.geteuid() != 0:
        pytest.skip("disk-full / read-only faults need root to mount a small tmpfs")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    done = _mount("-t", "tmpfs", "-o", "size=6m,mode=0755", "tmpfs", str(mnt))
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)  # lazy: collectors may still hold files


@pytest.fixture
def fast_seal(tmp_path: Path) -> Path:
    config = tmp_path / "fast.toml"
    config.write_text("[wal]\nsegment_seconds = 0.2\n")
    return config


def send(c, sender: int, seq: int) -> tuple[int, dict]:
    status, _, headers = post(c, "/v1/traces", request_bytes(sender, seq))
    return status, {k.lower(): v for k, v in headers.items()}


def stored_traces(c) -> dict[str, int]:
    return dict(c.sql("SELECT trace_id, count(*) FROM spans GROUP BY trace_id"))


def assert_exactly_once(c, acked: list[str]) -> None:
    per_trace = wait_until(
        lambda: (t := stored_traces(c)) and set(acked) <= t.keys() and t,
        timeout=30,
        what="every acknowledged request in the spans view",
    )
    assert all(n == SPANS_PER_REQUEST for n in per_trace.values()), "a span was stored twice"


def fill(directory: Path) -> Path:
    """Write a file until the filesystem is full."""
    filler = directory / "filler"
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * (256 * 1024))
                fh.flush()
        except OSError:
            pass
    return filler


def test_full_disk_answers_503_keeps_acked_data_and_recovers(small_fs, fast_seal, collector_factory):
    c = collector_factory(small_fs, "--config", str(fast_seal))
    acked = []
    for seq in range(5):
        assert send(c, 1, seq)[0] == 200
        acked.append(trace_id_of(1, seq).hex())
    assert_exactly_once(c, acked)

    filler = fill(small_fs)
    statuses = []
    for seq in range(100, 110):
        status, headers = send(c, 1, seq)
        statuses.append(status)
        if status == 200:  # it fitted in the last free pages: acknowledged, so it must survive
            acked.append(trace_id_of(1, seq).hex())
        else:
            assert status == 503 and headers.get("retry-after"), (status, headers)
    assert 503 in statuses
    assert int(c.health()["wal_write_failures"]) > 0
    assert set(acked[:5]) <= stored_traces(c).keys()  # what was acknowledged before is still there

    filler.unlink()  # space returns: no restart, the collector heals by itself
    seq = iter(range(200, 10_000))

    def accepted() -> bool:
        s = next(seq)
        ok = send(c, 1, s)[0] == 200
        if ok:
            acked.append(trace_id_of(1, s).hex())
        return ok

    wait_until(accepted, timeout=30, interval=0.2, what="a 200 once space is back")
    assert_exactly_once(c, acked)
    assert c.ready()


def test_read_only_data_dir_answers_503_and_recovers(small_fs, fast_seal, collector_factory):
    c = collector_factory(small_fs, "--config", str(fast_seal))
    acked = []
    for seq in range(3):
        assert send(c, 2, seq)[0] == 200
        acked.append(trace_id_of(2, seq).hex())
    assert_exactly_once(c, acked)
    # A read-only bind mount stacked on the data dir: files the collector holds open (its lock files)
    # stay as they are, every new open (WAL segment, Parquet file) meets a read-only filesystem.
    wait_until(lambda: not list((small_fs / "wal").glob("*.wal")), what="the WAL flushed and empty")
    assert _mount("--bind", str(small_fs), str(small_fs)).returncode == 0
    try:
        done = _mount("-o", "remount,bind,ro", str(small_fs))
        assert done.returncode == 0, done.stderr
        statuses = []
        for seq in range(50, 60):
            status, headers = send(c, 2, seq)
            statuses.append(status)
            if status == 200:  # a segment opened before the remount took it: acknowledged, must survive
                acked.append(trace_id_of(2, seq).hex())
            else:
                assert status == 503 and headers.get("retry-after"), (status, headers)
        assert 503 in statuses
        assert int(c.health()["wal_write_failures"]) > 0
        assert set(acked[:3]) <= stored_traces(c).keys()  # readers still work on a read-only store
    finally:
        assert _mount("-o", "remount,bind,rw", str(small_fs)).returncode == 0
    seq = iter(range(100, 10_000))

    def accepted() -> bool:
        s = next(seq)
        ok = send(c, 2, s)[0] == 200
        if ok:
            acked.append(trace_id_of(2, s).hex())
        return ok

    wait_until(accepted, timeout=30, interval=0.2, what="a 200 once the dir is writable again")
    assert_exactly_once(c, acked)
    subprocess.run(["umount", "-l", str(small_fs)], check=False)  # the bind mount; the fixture the tmpfs


# --- damaged files --------------------------------------------------------------------------------


def payload(sender: int, seq: int) -> bytes:
    body = request_bytes(sender, seq)
    return pipeline.process_export("traces", body, Format.PROTOBUF, None, time.time_ns(), 1 << 24).payload


def frame(data: bytes) -> bytes:
    return wal.frame_header(data) + data


def write_segment(wal_dir: Path, seg: int, body: bytes) -> None:
    wal_dir.mkdir(parents=True, exist_ok=True)
    wal.segment_path(wal_dir, seg).write_bytes(body)


def test_damaged_wal_segments_and_parquet_files_are_quarantined(collector_factory, data_dir):
    wal_dir = data_dir / "wal"
    good: list[str] = []

    def record(seq: int) -> bytes:
        good.append(trace_id_of(3, seq).hex())
        return frame(payload(3, seq))

    # 1: three records, then a torn one (kill -9 mid-write); 2: a bit flip in its second record;
    # 3: not a WAL at all; 4: clean; 5: a record that passes its CRC but does not decode.
    torn = frame(payload(3, 90))[:-100]
    write_segment(wal_dir, 1, wal.MAGIC + record(0) + record(1) + record(2) + torn)
    flipped = bytearray(frame(payload(3, 91)))
    flipped[-10] ^= 0xFF
    write_segment(wal_dir, 2, wal.MAGIC + record(3) + bytes(flipped) + frame(payload(3, 92)))
    write_segment(wal_dir, 3, b"NOTAWAL!" + b"\x07" * 64)
    write_segment(wal_dir, 4, wal.MAGIC + record(4) + record(5))
    write_segment(wal_dir, 5, wal.MAGIC + frame(b"\x05\x00spans\xff\xff\xff\x7fnot arrow"))  # CRC fine
    part = layout.partition_dir(data_dir, "spans", "2025-11-25")
    part.mkdir(parents=True)
    (part / "seg000000000090-wbad.parquet").write_bytes(b"PAR1 this is not parquet")

    c = collector_factory(data_dir)  # start-up must not fail
    assert c.health()["quarantined"] == "5"
    log = c.log_text()
    assert "CRC mismatch after 1 complete records" in log and "truncated record after 3" in log
    assert "records do not decode" in log and "bad segment header" in log
    assert "quarantined tables/spans/date=2025-11-25/seg000000000090-wbad.parquet" in log
    moved = {
        p.relative_to(layout.quarantine_dir(data_dir)).as_posix() for p in layout.quarantined_files(data_dir)
    }
    assert moved == {
        "wal/000000000001.wal",
        "wal/000000000002.wal",
        "wal/000000000003.wal",
        "wal/000000000005.wal",
        "tables/spans/date=2025-11-25/seg000000000090-wbad.parquet",
    }
    assert not list(wal_dir.glob("*.wal")) or all(
        p.stat().st_size <= len(wal.MAGIC) for p in wal_dir.glob("*.wal")
    )
    per_trace = stored_traces(c)
    assert set(per_trace) == set(good)  # every complete record before the damage, nothing after it
    assert all(n == SPANS_PER_REQUEST for n in per_trace.values())

    # A file damaged while running (or with no collector at all): readers leave it out, with a warning.
    real = next(layout.table_dir(data_dir, "spans").glob("*/*.parquet"))
    truncated = real.parent / "seg000000000091-wcut.parquet"
    truncated.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    assert set(stored_traces(c)) == set(good)
    assert db.unreadable_files(data_dir, "spans") == [truncated]
    assert post(c, "/v1/traces", request_bytes(3, 500))[0] == 200  # and ingest carries on


def test_compaction_quarantines_a_damaged_input_and_compacts_the_rest(tmp_path):
    part = layout.partition_dir(tmp_path, "spans", "2025-11-25")
    for seg in range(1, 7):
        table = pa.table({"time": pa.array([seg], pa.timestamp("us")), "span_id": [f"s{seg}"]})
        flush.write_parquet_atomic(table, part / layout.segment_file_name(seg, "w1"), 1000)
    bad = part / layout.segment_file_name(3, "w1")
    data = bytearray(bad.read_bytes())
    data[8:40] = b"\xff" * 32  # footer intact, pages garbage: only a full read finds it
    bad.write_bytes(bytes(data))
    config = FlushConfig(compact_min_files=4)
    assert flush.compact_partition(open_store(tmp_path), str(part), config) == 0
    assert not bad.exists()
    assert (layout.quarantine_dir(tmp_path) / bad.relative_to(tmp_path)).exists()
    assert flush.compact_partition(open_store(tmp_path), str(part), config) == 5
    (merged,) = layout.published_files(part)
    assert sorted(pq.read_table(merged)["span_id"].to_pylist()) == ["s1", "s2", "s4", "s5", "s6"]
