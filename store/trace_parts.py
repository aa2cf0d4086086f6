"""trace_parts: each written spans file folded into one partial row per trace.

The ``traces`` view (store/sql/10_traces.sql) is one row per trace. Folding every span at query
time cost a hash aggregation over all spans on every trace-level dashboard query (3 s of a 3.5 s
query at 10M spans, docs/PERFORMANCE.md). Instead, whoever writes a spans file writes its partial
fold beside it, in the ``trace_parts`` table under the same file name: one row per trace of that
file, holding aggregates that merge (min, max, sums, counts, any value, latest-by-time). The view
folds the parts: about one row per trace, since a trace's spans usually arrive in one WAL segment,
so a tenth of the rows at the demo's 10 spans per trace.

A part row is dated by its first span, like the trace; it lives and dies with the spans (flush,
compaction, retention and erasure treat it as any table, and erasure removes whole traces).
"""

from __future__ import annotations

import threading

import duckdb
import pyarrow as pa

from ragtrail.store.schema import TRACE_PARTS

TABLE = "trace_parts"

# Per trace, over the spans of one file. Each column is an aggregate the view can merge again:
# min/max/sum/count/bool_or merge with themselves, any_value keeps any non-null value, and the
# generate span's model/quantization merge by the time of the span they came from (arg_max skips
# null values, so each time is that of the latest span with a non-null value).
FOLD_SQL = """
SELECT
    trace_id,
    min(time) AS time,
    max(end_time) AS end_time,
    any_value(name) FILTER (WHERE parent_span_id IS NULL) AS root_name,
    any_value(service_name) FILTER (WHERE parent_span_id IS NULL) AS root_service,
    any_value(service_name) AS any_service,
    any_value(status) FILTER (WHERE parent_span_id IS NULL) AS root_status,
    max(duration_ms) FILTER (WHERE parent_span_id IS NULL) AS root_duration_ms,
    count(*) FILTER (WHERE status = 'ERROR') AS error_spans,
    count(*) AS spans,
    any_value(environment) AS environment,
    any_value(session_id) AS session_id,
    any_value(user_id) AS user_id,
    any_value(variant) AS variant,
    any_value(route) AS route,
    any_value(prompt_version) AS prompt_version,
    arg_max(model, time) FILTER (WHERE stage = 'generate') AS model,
    max(time) FILTER (WHERE stage = 'generate' AND model IS NOT NULL) AS model_time,
    arg_max(quantization, time) FILTER (WHERE stage = 'generate') AS quantization,
    max(time) FILTER (WHERE stage = 'generate' AND quantization IS NOT NULL) AS quantization_time,
    sum(duration_ms) FILTER (WHERE stage = 'embed') AS embed_ms,
    sum(duration_ms) FILTER (WHERE stage = 'retrieve') AS retrieve_ms,
    sum(duration_ms) FILTER (WHERE stage = 'rerank') AS rerank_ms,
    sum(duration_ms) FILTER (WHERE stage = 'generate') AS generate_ms,
    sum(duration_ms) FILTER (WHERE stage = 'guardrail') AS guardrail_ms,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    bool_or(cache_hit) FILTER (WHERE cache_layer = 'response') AS cache_hit,
    bool_or(fallback) AS fallback
FROM spans
GROUP BY trace_id
"""


_local = threading.local()  # one DuckDB connection per thread: connecting costs ~30 ms, a fold ~10 ms


def _connection() -> duckdb.DuckDBPyConnection:
    if getattr(_local, "con", None) is None:
        # One thread: this runs in the collector's flusher, beside ingest, on a segment's spans.
        _local.con = duckdb.connect(":memory:", config={"threads": 1})
    return _local.con


def fold(spans: pa.Table, writer: str, segment: int) -> pa.Table:
    """The partial rows of ``spans`` (a table with the spans schema's columns), written by
    ``writer`` as its WAL ``segment``."""
    con = _connection()
    con.register("spans", spans)
    try:
        parts = con.sql(FOLD_SQL).to_arrow_table()
    finally:
        con.unregister("spans")
    parts = parts.append_column("writer", pa.array([writer] * parts.num_rows, pa.string()))
    parts = parts.append_column("segment", pa.array([segment] * parts.num_rows, pa.int64()))
    return parts.select(TRACE_PARTS.names).cast(TRACE_PARTS)


def with_parts(tables: dict[str, pa.Table], writer: str, segment: int) -> dict[str, pa.Table]:
    """``tables`` (name -> rows of one segment about to be written) plus the spans' parts."""
    spans = tables.get("spans")
    if spans is None or spans.num_rows == 0:
        return tables
    return {**tables, TABLE: fold(spans, writer, segment)}
