"""The kill -9 crash loop shared by tests/collector/test_durability.py (short, in CI) and
bench/crash_loop.py (long soak): senders track every acknowledged request client-side; the collector
is killed at seeded random moments (after a random number of acknowledgements, which lands kills in
commit, seal, flush and compaction alike), restarted, and the store is checked at the end.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from ragtrail.collector import flush, wal
from ragtrail.config import FlushConfig
from ragtrail.store import db, layout
from ragtrail.store.fs import open_store
from tests.collector.test_durability import SPANS_PER_REQUEST, sender_loop
from tests.conftest import Collector, wait_until

# Seal segments and compact often, so kills land in flush and compaction, not only in commit.
CHURN_TOML = """
[wal]
segment_seconds = 0.05
[flush]
compact_min_files = 4
compact_interval_seconds = 0.3
"""


@dataclass
class Report:
    kills: int = 0
    acked_requests: int = 0
    stored_requests: int = 0
    lost: int = 0
    duplicated_spans: int = 0
    parquet_files: int = 0
    unreadable_parquet: int = 0
    quarantined_wal: int = 0
    seconds: float = 0.0
    acked: list[str] = field(default_factory=list, repr=False)

    @property
    def acked_spans(self) -> int:
        return self.acked_requests * SPANS_PER_REQUEST


def crash_loop(
    start: Callable[[], Collector], data_dir: Path, *, kills: int, seed: int, senders: int, max_acks: int
) -> Report:
    """``kills`` rounds of start -> load -> kill -9, then a double recovery and a final check."""
    rng = random.Random(seed)
    report, t0 = Report(), time.monotonic()
    for round_no in range(kills):
        c = start()
        acked: list[str] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=sender_loop, args=(c.http_endpoint, round_no * senders + k, acked, stop))
            for k in range(senders)
        ]
        for t in threads:
            t.start()
        target = rng.randint(0, max_acks)
        wait_until(lambda acked=acked, n=target: len(acked) >= n, timeout=60, what=f"{target} acks")
        c.kill()
        stop.set()
        for t in threads:
            t.join(15)
        report.kills += 1
        report.acked += acked
    check_replay_is_idempotent(data_dir)
    final = start()
    verify(final, data_dir, report)
    final.stop()
    report.seconds = time.monotonic() - t0
    return report


def check_replay_is_idempotent(data_dir: Path) -> None:
    """Recover the WAL the last kill left, put the same segments back, recover again: same rows."""
    wal_dir = data_dir / "wal"
    snapshot = data_dir.parent / "wal-snapshot"
    shutil.copytree(wal_dir, snapshot)
    writer = layout.writer_id(data_dir)
    flush.recover(open_store(data_dir), wal_dir, writer, FlushConfig(), wal.replay)
    once = db.query(data_dir, "SELECT count(*), count(DISTINCT trace_id || span_id) FROM spans").rows
    for path in snapshot.iterdir():
        shutil.copy2(path, wal_dir / path.name)
    flush.recover(open_store(data_dir), wal_dir, writer, FlushConfig(), wal.replay)
    twice = db.query(data_dir, "SELECT count(*), count(DISTINCT trace_id || span_id) FROM spans").rows
    assert once == twice, f"replaying the same WAL twice changed the store: {once} -> {twice}"
    shutil.rmtree(snapshot)


def verify(c: Collector, data_dir: Path, report: Report) -> None:
    per_trace = dict(c.sql("SELECT trace_id, count(*) FROM spans GROUP BY trace_id"))
    expected = set(report.acked)
    assert len(expected) == len(report.acked), "a request id was acknowledged twice"
    report.acked_requests = len(expected)
    report.stored_requests = len(per_trace)
    report.lost = len(expected - per_trace.keys())
    report.duplicated_spans = sum(n - SPANS_PER_REQUEST for n in per_trace.values() if n > SPANS_PER_REQUEST)
    files = sorted(layout.tables_dir(data_dir).rglob(f"*{layout.PARQUET}"))
    report.parquet_files = len(files)
    for path in files:
        try:
            pq.read_table(path)
        except FileNotFoundError:
            pass  # compacted away since the listing: its rows are in the cmp file that replaced it
        except Exception:
            report.unreadable_parquet += 1
    quarantined = layout.quarantined_files(data_dir)
    report.quarantined_wal = sum(1 for p in quarantined if p.suffix == wal.SUFFIX)  # torn tails
    assert not [p for p in quarantined if "tables" in p.parts], "a published Parquet file was damaged"
