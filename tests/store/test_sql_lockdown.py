"""The SQL surface is read-only: files, settings and writes are refused; runaway queries are cut."""

from __future__ import annotations

import pyarrow as pa
import pytest

from ragtrail.collector.flush import write_parquet_atomic
from ragtrail.store import db, layout
from ragtrail.store.schema import SPANS


@pytest.fixture
def store(data_dir):
    rows = {name: [None] * 3 for name in SPANS.names}
    rows.update(
        time=[1_764_050_000_000_000 + i for i in range(3)], trace_id=["a", "b", "c"], name=["x", "y", "z"]
    )
    table = pa.Table.from_pydict(rows, schema=SPANS)
    write_parquet_atomic(
        table, layout.partition_dir(data_dir, "spans", "2025-11-25") / "seg000000000001-w1.parquet", 1000
    )
    return data_dir


def test_views_answer_and_empty_tables_are_queryable(store):
    assert db.query(store, "SELECT count(*) FROM spans").rows == [(3,)]
    assert db.query(store, "SELECT count(*) FROM logs").rows == [(0,)]  # no files yet: an empty view
    assert db.query(store, "SELECT count(*) FROM traces").rows == [(3,)]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY (SELECT 1) TO 'out.csv'",
        "ATTACH '/tmp/other.db'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET threads = 1",
        "PRAGMA version",
        "CREATE TABLE t (x INT)",
        "DELETE FROM spans",
        "SELECT 1; SELECT 2",
    ],
)
def test_dangerous_statements_are_refused(store, statement):
    with pytest.raises(db.SqlError) as err:
        db.query(store, statement)
    assert any(
        word in str(err.value) for word in ("only read-only SELECT", "exactly one statement", "Permission")
    )


def test_copy_into_the_tables_dir_is_refused(store):
    target = layout.partition_dir(store, "spans", "2025-11-25") / "evil.parquet"
    with pytest.raises(db.SqlError):
        db.query(store, f"COPY (SELECT * FROM spans) TO '{target}'")
    assert not target.exists()


def test_runaway_query_is_cut_and_rows_capped(store):
    with pytest.raises(db.SqlError, match="time limit"):
        db.query(store, "SELECT count(*) FROM range(100000000000) a", time_limit_s=0.5)
    result = db.query(store, "SELECT * FROM range(1000)", max_rows=10)
    assert len(result.rows) == 10 and result.truncated
