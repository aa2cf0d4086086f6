"""store.fs on a local directory and on s3:// (moto on loopback): what erasure, retention and
compaction build on, over files of several writers, under the store's maintenance lease."""

from __future__ import annotations

import datetime as dt
import time

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ragtrail.store import db, layout, locks
from ragtrail.store.fs import open_store
from ragtrail.store.schema import SPANS

DATES = ["2026-01-01", "2026-01-02", "2026-01-03"]
WRITERS = ["wa", "wb", "wc"]
USERS = ["u_alice", "u_bob", "u_carol"]


def spans(date: str, writer: str, n: int = 30) -> pa.Table:
    rows = {name: [None] * n for name in SPANS.names}
    day = int(time.mktime(time.strptime(date, "%Y-%m-%d")) - time.timezone) * 1_000_000
    rows.update(
        time=[day + i for i in range(n)],
        trace_id=[f"{writer}-{date}-{i // 3}" for i in range(n)],
        span_id=[f"{writer}-{date}-{i}" for i in range(n)],
        user_id=[USERS[i % len(USERS)] for i in range(n)],
    )
    return pa.Table.from_pydict(rows, schema=SPANS)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    uri = request.getfixturevalue("s3").new_store("fs") if request.param == "s3" else str(tmp_path)
    store = open_store(uri)
    for date in DATES:
        for seg, writer in enumerate(WRITERS, start=1):
            path = f"{store.partition_dir('spans', date)}/{layout.segment_file_name(seg, writer)}"
            store.write_parquet(spans(date, writer), path, 1000)
    return store


def count(store, where: str = "true") -> int:
    return db.query(store, f"SELECT count(*) FROM spans WHERE {where}").rows[0][0]


def test_listing_is_the_union_of_writers_and_prunes_by_date(store):
    assert store.tables() == ["spans"]
    assert [p.rsplit("/", 1)[1] for p in store.partitions("spans")] == [f"date={d}" for d in DATES]
    since = store.partitions("spans", since=dt.date(2026, 1, 2))
    assert len(since) == 2
    assert {layout.file_writer(p.rsplit("/", 1)[1]) for p in store.published("spans")} == set(WRITERS)
    assert count(store) == 30 * len(DATES) * len(WRITERS)
    con = db.connect(store, since=dt.date(2026, 1, 3))
    assert con.execute("SELECT count(*) FROM spans").fetchone()[0] == 30 * len(WRITERS)


def test_erasure_style_rewrite_across_writers(store):
    """Every writer's files holding a user's rows are rewritten in place without them."""
    before = count(store)
    with locks.maintenance_lease(store, "eraser") as held:
        assert held
        for path in store.published("spans"):
            table = store.read_table(path)
            doomed = pc.equal(table["user_id"], "u_bob")
            kept = table.filter(pc.invert(doomed))
            if kept.num_rows == 0:
                store.delete(path)
            elif kept.num_rows < table.num_rows:
                store.write_parquet(kept, path, 1000)  # same name: readers see old or new, whole
    assert count(store, "user_id = 'u_bob'") == 0
    assert count(store) == before - before // 3
    assert len(store.published("spans")) == len(DATES) * len(WRITERS)


def test_retention_style_partition_drop_across_writers(store):
    with locks.maintenance_lease(store, "retention") as held:
        assert held
        dropped = [store.delete_partition(p) for p in store.partitions("spans", until=dt.date(2026, 1, 2))]
    assert dropped == [len(WRITERS), len(WRITERS)]
    assert [p.rsplit("=", 1)[1] for p in store.partitions("spans")] == ["2026-01-03"]
    assert count(store) == 30 * len(WRITERS)


def test_maintenance_lease_admits_one_owner(store, monkeypatch):
    monkeypatch.setattr(locks, "LEASE_SETTLE_S", 0.0)
    with locks.maintenance_lease(store, "one") as first:
        assert first
        with locks.maintenance_lease(store, "two") as second:
            assert not second  # busy: maintenance is skipped, never run twice at once
    with locks.maintenance_lease(store, "two") as again:
        assert again  # released on exit


def test_expired_lease_of_a_crashed_maintainer_is_taken_over(s3, monkeypatch):
    monkeypatch.setattr(locks, "LEASE_SETTLE_S", 0.0)
    store = open_store(s3.new_store("lease"))
    path = f"{store.root}/{locks.LEASE_KEY}"
    with store.fs.open_output_stream(path) as out:  # a maintainer that died holding the lease
        out.write(b'{"owner": "dead", "expires": 1}')
    with locks.maintenance_lease(store, "alive") as held:
        assert held
