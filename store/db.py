"""Reader connections: an in-memory DuckDB per reader, with the views over the Parquet files.

Base views (one per table of store/schema.py) select the schema's columns from the table's
Parquet files; derived views (traces, audit, ...) come from ``store/sql/*.sql``, applied in file
name order. The collector is the only writer, so readers never contend for a lock.

The store is a local directory or ``s3://bucket/prefix`` (store.fs), written by one collector or
many: readers see the union of every writer's files. A local store is read by DuckDB's own Parquet
reader; an object store is listed through pyarrow (one LIST per table and per date partition,
pruned to ``since``..``until`` when given) and its files scanned as pyarrow datasets registered
with DuckDB, which pushes projections and filters down. That needs no DuckDB extension (httpfs is
downloaded at run time, which these machines cannot do) and reuses the writer's S3 settings.

In a local store, a Parquet file whose footer does not decode (a torn copy, bit rot) is left out of
the views with a warning, so one damaged file never makes a table unqueryable; the collector moves such files to
``quarantine/`` at start-up. Readers never move or delete anything. Footers are checked once per
file (path, size, mtime) per process.

Locked connections (``ragtrail sql``, the dashboard console) can read only the tables directory
(``allowed_directories``), have external access off and the configuration locked, and accept only
a single SELECT statement; each query has a time limit and a row cap.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ragtrail.store import layout, trace_index
from ragtrail.store.fs import Store, open_store
from ragtrail.store.schema import TABLES

_DUCKDB_TYPES = {
    pa.timestamp("us"): "TIMESTAMP",
    pa.string(): "VARCHAR",
    pa.float64(): "DOUBLE",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.bool_(): "BOOLEAN",
}
ALLOWED_STATEMENTS = {duckdb.StatementType.SELECT}
READ_ATTEMPTS = 3
VANISHED = ("Path does not exist", "No files found", "No such file")  # a file compacted away mid-query
# Physical tables whose public view is derived: the gpu table holds one reading per row, and the
# `gpu` view (sql/20_gpu.sql) folds the readings of one instant into one sample.
BASE_VIEW_NAMES = {"gpu": "gpu_readings"}
log = logging.getLogger("ragtrail.store")
_footer_ok: dict[tuple[str, int, int], bool] = {}  # (path, size, mtime_ns) -> footer decodes


class SqlError(ValueError):
    """A query the SQL surface refuses or that failed; the message is safe to show a user."""


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple]
    truncated: bool = False

    def to_arrow(self) -> pa.Table:
        return pa.table({c: [r[i] for r in self.rows] for i, c in enumerate(self.columns)})


def _readable(path: Path) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:  # compacted away since the listing: the glob will not see it either
        return True
    key = (str(path), st.st_size, st.st_mtime_ns)
    if len(_footer_ok) > 100_000:  # compaction keeps renaming files: forget the old ones now and then
        _footer_ok.clear()
    if key not in _footer_ok:
        try:
            pq.read_metadata(path)
            _footer_ok[key] = True
        except (pa.ArrowException, OSError) as exc:
            log.warning("skipping unreadable Parquet file %s: %s", path, str(exc).splitlines()[0])
            _footer_ok[key] = False
    return _footer_ok[key]


def unreadable_files(data_dir: Path, table: str) -> list[Path]:
    """The table's published files whose footer does not decode (left out of its view)."""
    root = layout.table_dir(data_dir, table)
    files = sorted(root.glob(f"*/*{layout.PARQUET}")) if root.is_dir() else []
    return [p for p in files if not _readable(p)]


def _columns(table: str, source: str | None) -> str:
    schema = TABLES[table]
    if source is None:
        cols = ", ".join(f'CAST(NULL AS {_DUCKDB_TYPES[f.type]}) AS "{f.name}"' for f in schema)
        return f"SELECT {cols} WHERE false"
    cols = ", ".join(f'CAST("{f.name}" AS {_DUCKDB_TYPES[f.type]}) AS "{f.name}"' for f in schema)
    return f"SELECT {cols} FROM {source}"


def _base_view(con, store: Store, table: str, since: dt.date | None, until: dt.date | None) -> None:
    view = BASE_VIEW_NAMES.get(table, table)
    source = None
    if store.is_local:
        partitions = store.partitions(table, since, until)
        files = [i.path for p in partitions for i in store.files(p)]
        bad = {p for p in files if not _readable(Path(p))}
        if bad:  # an explicit list of the good files instead of the globs
            paths = [p for p in files if p not in bad]
        elif since is None and until is None:
            # DuckDB expands the glob per query, so files compacted since connecting are seen.
            paths = [f"{store.table_dir(table)}/*/*.parquet"] if files else []
        else:
            paths = [f"{p}/*.parquet" for p in partitions if store.files(p)]
        if paths:
            listed = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
            source = f"read_parquet([{listed}], hive_partitioning = true, union_by_name = true)"
    else:
        files = store.published(table, since, until)
        if files:
            # The canonical schema: files written before a column existed read it as null.
            dataset = ds.dataset(files, schema=TABLES[table], format="parquet", filesystem=store.fs)
            con.register(f"_arrow_{table}", dataset)
            source = f"_arrow_{table}"
    con.execute(f"CREATE OR REPLACE VIEW {view} AS {_columns(table, source)}")


def _trace_index_views(con, store: Store) -> None:
    """``trace_splits`` (trace ids) and ``trace_watermarks`` (writer, segment) from the store's
    trace-split index (store.trace_index), empty when it has not been built yet."""
    index = trace_index.path(store)
    source = "(SELECT * FROM (VALUES (NULL::VARCHAR, NULL::VARCHAR, NULL::BIGINT)) v(trace_id, writer, segment) WHERE false)"
    if store.exists(index):
        if store.is_local:
            source = "read_parquet('" + index.replace("'", "''") + "')"
        else:
            con.register("_arrow_trace_index", ds.dataset([index], format="parquet", filesystem=store.fs))
            source = "_arrow_trace_index"
    con.execute(
        f"CREATE OR REPLACE VIEW trace_splits AS SELECT trace_id FROM {source} WHERE trace_id IS NOT NULL"
    )
    con.execute(
        f"CREATE OR REPLACE VIEW trace_watermarks AS SELECT writer, segment FROM {source} WHERE writer IS NOT NULL"
    )


def derived_view_sql() -> list[tuple[str, str]]:
    """(file name, SQL) of the derived views, in the order they must be created."""
    folder = resources.files("ragtrail.store") / "sql"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name, f.read_text()) for f in files]


def connect(
    location: str | Path | Store,
    *,
    locked: bool = True,
    memory_limit: str = "2GB",
    threads: int | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
):
    """A new DuckDB connection with every ragtrail view; locked down unless ``locked=False``.

    ``location``: a data directory, ``s3://bucket/prefix`` or a Store; ``since``/``until`` prune
    the date partitions read (an object store lists only those).
    """
    store = open_store(location)
    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    for table in TABLES:
        _base_view(con, store, table, since, until)
    _trace_index_views(con, store)
    for _, sql in derived_view_sql():
        con.execute(sql)
    if locked:
        tables_dir = store.tables_dir().replace("'", "''") if store.is_local else "/nonexistent"
        con.execute(f"SET allowed_directories = ['{tables_dir}/']")
        con.execute("SET enable_external_access = false")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute("SET lock_configuration = true")
    return con


def check_statement(con, sql: str) -> str:
    """Refuse anything but one SELECT; returns the statement text without a trailing ';'."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlError(f"could not parse SQL: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise SqlError(f"exactly one statement is allowed, got {len(statements)}")
    kind = statements[0].type
    if kind not in ALLOWED_STATEMENTS:
        name = getattr(kind, "name", str(kind))
        raise SqlError(f"only read-only SELECT queries are allowed here; {name} statements are refused")
    return sql.strip().rstrip(";")


def run_query(con, sql: str, *, max_rows: int = 100_000, time_limit_s: float = 30.0) -> Result:
    """Run a checked SELECT with a time limit (the query is interrupted) and a row cap."""
    text = check_statement(con, sql)
    timer = threading.Timer(time_limit_s, con.interrupt)
    timer.start()
    try:
        cursor = con.execute(text)
        columns = [d[0] for d in cursor.description] if cursor.description else []
        rows = cursor.fetchmany(max_rows + 1)
    except duckdb.InterruptException:
        raise SqlError(f"query cancelled: it ran longer than the {time_limit_s:g}s time limit") from None
    except duckdb.PermissionException as exc:
        raise SqlError(
            f"refused: this SQL surface reads only the ragtrail views, never files or URLs ({_first_line(exc)})"
        ) from None
    except duckdb.Error as exc:
        raise SqlError(_first_line(exc)) from None
    finally:
        timer.cancel()
    truncated = len(rows) > max_rows
    return Result(columns, rows[:max_rows], truncated)


def query(
    location: str | Path | Store, sql: str, *, max_rows: int = 100_000, time_limit_s: float = 30.0
) -> Result:
    """One locked, read-only query over the store (what `ragtrail sql` runs).

    A file listed but gone before it was read was merged by a compaction meanwhile: the query runs
    again over a fresh listing, which holds the merged file instead.
    """
    for attempt in range(READ_ATTEMPTS):
        con = connect(location)
        try:
            return run_query(con, sql, max_rows=max_rows, time_limit_s=time_limit_s)
        except SqlError as exc:
            if attempt == READ_ATTEMPTS - 1 or not any(s in str(exc) for s in VANISHED):
                raise
        finally:
            con.close()
    raise AssertionError("unreachable")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
