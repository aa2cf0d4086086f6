"""The trace-split index: which traces have more than one trace_parts row.

Most traces have exactly one part (their spans arrived in one WAL segment), and the ``traces`` view
passes those through without a GROUP BY; only traces that may have several parts are folded
(store/sql/10_traces.sql). Which ones may: the traces this index lists, and every trace with a part
the index has not seen. The index is one small Parquet file, ``tables/_index/trace_splits.parquet``
(a leading ``_``, so it is no table: Spark and Hive skip it, listings of tables ignore it):

    trace_id, NULL, NULL          a trace with more than one part when the index was built
    NULL, writer, max segment     per writer, the last WAL segment whose parts the index saw

A part is "seen" when its writer's watermark is at least its segment. A writer publishes its
segments in order and a segment's parts in one file per date, so every part published after a
build has a higher segment than its writer's watermark (or an unknown writer): it is unseen, and
its trace is folded whole. Hence the view is exact whatever the index's age, and with no index at
all it folds everything (correct, slower). Rows erased or dropped by retention only leave stale ids
here, which cost a fold of a trace that no longer needs it; erasure clears the file anyway.

The store's maintainer rebuilds it after each compaction pass (collector.flush.Flusher), under the
maintenance lease, so no erasure or retention runs meanwhile.
"""

from __future__ import annotations

import pyarrow as pa

from ragtrail.store.fs import Store

INDEX_DIR = "_index"
INDEX_FILE = "trace_splits.parquet"
SCHEMA = pa.schema([("trace_id", pa.string()), ("writer", pa.string()), ("segment", pa.int64())])

# One snapshot of the parts (a temp table), so the split ids and the watermarks describe the same
# set of files even while writers publish new ones.
BUILD_SQL = (
    "CREATE TEMP TABLE snapshot AS SELECT trace_id, writer, segment FROM trace_parts",
    """
    SELECT trace_id, NULL::VARCHAR AS writer, NULL::BIGINT AS segment
    FROM snapshot WHERE trace_id IS NOT NULL GROUP BY trace_id HAVING count(*) > 1
    UNION ALL
    SELECT NULL, writer, max(segment) FROM snapshot WHERE writer IS NOT NULL GROUP BY writer
    """,
)


def path(store: Store) -> str:
    return f"{store.tables_dir()}/{INDEX_DIR}/{INDEX_FILE}"


def build(store: Store) -> pa.Table:
    """Build the index from the store's trace_parts as they are now (an unlocked reader)."""
    from ragtrail.store import db  # db creates views over this module's file

    con = db.connect(store, locked=False, threads=1)
    try:
        con.execute(BUILD_SQL[0])
        return con.sql(BUILD_SQL[1]).to_arrow_table().cast(SCHEMA)
    finally:
        con.close()


def refresh(store: Store) -> pa.Table:
    """Rebuild and publish the index (atomically: readers see the old one or the new one)."""
    index = build(store)
    store.write_parquet(index, path(store), 122_880)
    return index


def clear(store: Store) -> None:
    """Forget what the index knows (an empty index, not a missing file, so readers connected to it
    keep working): every trace is folded until the next refresh."""
    if store.exists(path(store)):
        store.write_parquet(SCHEMA.empty_table(), path(store), 122_880)
