"""The SQL surface is read-only: files, settings and writes are refused; runaway queries are cut.

Both surfaces are driven: `ragtrail sql` (the click command, in-process) and the dashboard console's
query path (``db.connect(locked=True)`` + ``db.run_query``, what dashboard/pages/sql.py runs).
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from click.testing import CliRunner

from ragtrail.cli import main as cli
from ragtrail.collector.flush import publish
from ragtrail.store import db, layout
from ragtrail.store.fs import open_store
from ragtrail.store.schema import SPANS


@pytest.fixture
def store(data_dir):
    rows = {name: [None] * 3 for name in SPANS.names}
    rows.update(
        time=[1_764_050_000_000_000 + i for i in range(3)], trace_id=["a", "b", "c"], name=["x", "y", "z"]
    )
    table = pa.Table.from_pydict(rows, schema=SPANS)
    publish(open_store(data_dir), "w1", 1, {"spans": table}, 1000)  # the spans and their trace parts
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


ATTACKS = {
    "read_csv('/etc/passwd')": ("SELECT * FROM read_csv('/etc/passwd')", "never files or URLs"),
    "read_text traversal": (
        "SELECT * FROM read_text('{tables}/../../../../etc/passwd')",
        "never files or URLs",
    ),
    "glob": ("SELECT * FROM glob('/etc/*')", "never files or URLs"),
    "url": ("SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')", "never files or URLs"),
    "COPY TO": ("COPY (SELECT * FROM spans) TO '{out}/leak.csv'", "COPY statements are refused"),
    "EXPORT": ("EXPORT DATABASE '{out}/leak'", "EXPORT statements are refused"),
    "ATTACH": ("ATTACH '{out}/leak.db' AS o", "ATTACH statements are refused"),
    "INSTALL": ("INSTALL httpfs", "LOAD statements are refused"),  # DuckDB types INSTALL as LOAD
    "LOAD": ("LOAD httpfs", "LOAD statements are refused"),
    "SET": ("SET enable_external_access = true", "SET statements are refused"),
    "RESET": ("RESET lock_configuration", "statements are refused"),
    "PRAGMA": ("PRAGMA enable_profiling", "statements are refused"),
    "CREATE": ("CREATE TABLE t AS SELECT 1", "CREATE statements are refused"),
    "CREATE MACRO": ("CREATE MACRO f(x) AS x", "CREATE statements are refused"),
    "DELETE": ("DELETE FROM spans", "DELETE statements are refused"),
    "DROP": ("DROP VIEW spans", "DROP statements are refused"),
    "INSERT": ("INSERT INTO spans SELECT * FROM spans", "INSERT statements are refused"),
    "two statements": ("SELECT 1; DROP VIEW spans", "exactly one statement"),
}


def via_cli(store, sql: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["sql", sql, "--data", str(store), *args])
    return result.exit_code, result.output


def via_console(store, sql: str, **limits) -> db.Result:
    con = db.connect(store, locked=True)
    try:
        return db.run_query(con, sql, **limits)
    finally:
        con.close()


@pytest.mark.parametrize("name", ATTACKS)
def test_attacks_are_refused_with_a_clear_message_on_both_surfaces(store, name):
    sql, message = ATTACKS[name]
    sql = sql.format(tables=layout.tables_dir(store).resolve(), out=store.parent)
    code, output = via_cli(store, sql)
    assert code != 0 and message in output, output
    with pytest.raises(db.SqlError, match=message):
        via_console(store, sql)
    assert db.query(store, "SELECT count(*) FROM spans").rows == [(3,)]  # the views are intact
    assert not list(store.parent.glob("leak*"))  # nothing was written


def test_cli_and_console_cut_runaway_queries_and_cap_rows(store):
    runaway = "SELECT count(*) FROM range(100000000000) a"
    code, output = via_cli(store, runaway, "--time-limit", "0.5")
    assert code != 0 and "time limit" in output
    with pytest.raises(db.SqlError, match="time limit"):
        via_console(store, runaway, time_limit_s=0.5)
    code, output = via_cli(store, "SELECT * FROM range(1000)", "--max-rows", "7", "--format", "csv")
    assert code == 0 and output.count("\n") == 1 + 7 + 1  # header, 7 rows, the truncation notice
    assert "(truncated at 7 rows)" in output
    result = via_console(store, "SELECT * FROM range(1000)", max_rows=7)
    assert len(result.rows) == 7 and result.truncated
