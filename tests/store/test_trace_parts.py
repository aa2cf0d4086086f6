"""The traces view, merged from per-file trace parts and the trace-split index, equals a fold of
every span (the view's definition before parts existed) whatever the index knows: none, an index
older than the newest files, a fresh one, after compaction and after erasure cleared it."""

from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa

from ragtrail.collector import flush
from ragtrail.config import FlushConfig
from ragtrail.store import db, trace_index
from ragtrail.store.fs import open_store
from ragtrail.store.schema import SPANS

# The traces view as a GROUP BY over every span: the reference the parts must reproduce.
REFERENCE = """
SELECT
    trace_id, min(time) AS time, (epoch_us(max(end_time)) - epoch_us(min(time))) / 1000.0 AS duration_ms,
    any_value(name) FILTER (WHERE parent_span_id IS NULL) AS root_name,
    coalesce(any_value(service_name) FILTER (WHERE parent_span_id IS NULL), any_value(service_name))
        AS service_name,
    coalesce(any_value(status) FILTER (WHERE parent_span_id IS NULL),
             CASE WHEN bool_or(status = 'ERROR') THEN 'ERROR' ELSE 'UNSET' END) AS status,
    count(*) FILTER (WHERE status = 'ERROR') AS error_spans, count(*) AS spans,
    any_value(user_id) AS user_id,
    arg_max(model, time) FILTER (WHERE stage = 'generate') AS model,
    arg_max(quantization, time) FILTER (WHERE stage = 'generate') AS quantization,
    sum(duration_ms) FILTER (WHERE stage = 'retrieve') AS retrieve_ms,
    sum(duration_ms) FILTER (WHERE stage = 'generate') AS generate_ms,
    coalesce(sum(input_tokens), 0) AS input_tokens,
    bool_or(cache_hit) FILTER (WHERE cache_layer = 'response') AS cache_hit,
    coalesce(bool_or(fallback), false) AS fallback
FROM spans GROUP BY trace_id
"""
# Stage sums are rounded: parts add a trace's durations in another order than one GROUP BY does.
COLUMNS = (
    "trace_id, time, duration_ms, root_name, service_name, status, error_spans, spans, user_id, model, "
    "quantization, round(retrieve_ms, 6), round(generate_ms, 6), input_tokens, cache_hit, fallback"
)
MIDNIGHT = dt.datetime(2026, 11, 24)


def _spans(rng: random.Random, trace_ids: list[str], n: int, rooted: set[str]) -> pa.Table:
    """``n`` spans spread over ``trace_ids``, around midnight so some traces cross two dates; at most
    one root span per trace (``rooted``: traces that have theirs), as in real traces, so the view's
    any_value picks are determined."""
    rows = []
    for i in range(n):
        trace = rng.choice(trace_ids)
        root = trace not in rooted and rng.random() < 0.3
        if root:
            rooted.add(trace)
        start = MIDNIGHT + dt.timedelta(seconds=rng.uniform(-30, 30))
        stage = rng.choice(["retrieve", "generate", "generate", "embed", None])
        rows.append(
            {
                "time": start,
                "end_time": start + dt.timedelta(milliseconds=rng.uniform(1, 900)),
                "duration_ms": rng.uniform(1, 900),
                "trace_id": trace,
                "span_id": f"{rng.getrandbits(64):016x}",
                "parent_span_id": None if root else f"{rng.getrandbits(64):016x}",
                "name": f"span-{i}",
                "service_name": f"svc-{trace[0]}" if root else f"svc-{trace[1]}",
                "stage": stage,
                "status": rng.choice(["OK", "UNSET", "ERROR"]),
                "model": rng.choice(["m1", "m2", None]) if stage == "generate" else None,
                "quantization": rng.choice(["awq", None]) if stage == "generate" else None,
                "input_tokens": rng.choice([None, rng.randrange(100)]),
                "cache_layer": rng.choice(["response", "kv", None]),
                "cache_hit": rng.choice([True, False, None]),
                "fallback": rng.choice([True, None]),
                "user_id": f"u{trace[-1]}",
            }
        )
    return pa.Table.from_pylist(rows, schema=SPANS)


def _traces(data) -> list[tuple]:
    con = db.connect(data)
    try:
        view = con.execute(f"SELECT {COLUMNS} FROM traces ORDER BY trace_id").fetchall()
        reference = con.execute(f"SELECT {COLUMNS} FROM ({REFERENCE}) ORDER BY trace_id").fetchall()
    finally:
        con.close()
    return view, reference


def _same(data) -> int:
    view, reference = _traces(data)
    assert len(view) == len({row[0] for row in view}), "a trace listed twice"
    assert view == reference
    return len(view)


def test_traces_view_equals_a_fold_of_every_span_whatever_the_index_knows(tmp_path):
    rng = random.Random(5)
    store = open_store(tmp_path)
    trace_ids = [f"{rng.getrandbits(128):032x}" for _ in range(40)]
    rooted: set[str] = set()
    # Two writers, two segments each: traces 8-15 are split across files and writers, the rest of
    # the first 30 lie in one file (some across two dates).
    for writer, segment, first, last in (
        ("w1", 1, 0, 12),
        ("w2", 1, 12, 24),
        ("w1", 2, 8, 16),
        ("w2", 2, 24, 30),
    ):
        flush.publish(store, writer, segment, {"spans": _spans(rng, trace_ids[first:last], 60, rooted)}, 1000)
    assert _same(tmp_path) == 30  # no index yet: every trace folded

    index = trace_index.refresh(store)
    splits = {t for t in index["trace_id"].to_pylist() if t}
    assert splits == set(trace_ids[8:16]) and _same(tmp_path) == 30

    # Newer files than the index, some with traces it believes whole: still one row per trace.
    flush.publish(store, "w1", 3, {"spans": _spans(rng, trace_ids, 50, rooted)}, 1000)
    flush.publish(store, "w3", 1, {"spans": _spans(rng, trace_ids[25:], 20, rooted)}, 1000)
    assert _same(tmp_path) == 40

    trace_index.refresh(store)
    assert _same(tmp_path) == 40

    # Compaction keeps each part's writer and segment, so the index stays valid across it.
    for partition in store.partitions("trace_parts"):
        flush.compact_partition(store, partition, FlushConfig(compact_min_files=2))
    assert any("cmp" in p for p in store.published("trace_parts"))
    assert _same(tmp_path) == 40

    trace_index.clear(store)
    assert trace_index.build(store).num_rows > 0 and _same(tmp_path) == 40


def test_parts_fold_one_file_per_trace(tmp_path):
    rng = random.Random(9)
    trace_ids = [f"{rng.getrandbits(128):032x}" for _ in range(10)]
    spans = _spans(rng, trace_ids, 80, set())
    store = open_store(tmp_path)
    written = flush.publish(store, "w1", 7, {"spans": spans}, 1000)
    assert written == 80  # ingested rows only; the derived parts are not counted
    parts = pa.concat_tables(store.read_table(p) for p in store.published("trace_parts"))
    # one row per trace of the file (dated by its first span), stamped with the writer and segment
    assert parts.num_rows == len(set(spans["trace_id"].to_pylist()))
    assert set(parts["writer"].to_pylist()) == {"w1"} and set(parts["segment"].to_pylist()) == {7}
    assert sum(parts["spans"].to_pylist()) == 80
