"""Query benchmark: every dashboard query function and typical `ragtrail sql` questions on 1M / 10M spans.

Stores are built with bench/dashboard.py's generator (10-span RAG traces over 24 h, 3 documents
per retrieval), written in 1M-span chunks through the collector's Parquet writer
(collector.flush.publish: split by date, zstd, synced temp file + rename, the spans' trace parts),
one segment file per chunk, then the trace-split index is refreshed as the store's maintainer
would; build time and size on disk are reported. Then, per query:

  cold  a fresh reader connection (db.connect: views over the Parquet files) and its first run,
        connection set-up included (what one `ragtrail sql` call or a new dashboard session pays;
        the OS page cache is not dropped: the machine is shared)
  warm  p50 / p95 of --repeat further runs on that connection

    python bench/query.py [--sizes 1000000,10000000] [--repeat 5] [--keep DIR] [--range all|1h]
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import psutil

from dashboard import generate
from ragtrail.collector.flush import max_published_segment
from ragtrail.store import db, layout, queries, trace_index
from ragtrail.store.fs import open_store
from ragtrail.store.queries import Filters

CHUNK = 1_000_000
SQL_QUESTIONS = {
    "sql: per-stage p95": "SELECT stage, count(*) AS n, quantile_cont(duration_ms, 0.95) AS p95_ms "
    "FROM spans GROUP BY stage ORDER BY p95_ms DESC",
    "sql: cache hit rate/layer": "SELECT cache_layer, avg(CASE WHEN cache_hit THEN 1 ELSE 0 END) AS hit_rate, "
    "count(*) AS lookups FROM spans WHERE cache_layer IS NOT NULL GROUP BY 1",
    "sql: answers per document": "SELECT doc_id, count(DISTINCT trace_id) AS answers FROM documents "
    "GROUP BY 1 ORDER BY answers DESC LIMIT 20",
    "sql: slowest traces": "SELECT trace_id, time, duration_ms, root_name FROM traces "
    "ORDER BY duration_ms DESC LIMIT 10",
    # the same lookup over traces + documents, where a store has no `audit` view (see sql_calls)
    "sql: audit by trace id": "SELECT t.trace_id, t.time, t.user_id, t.model, t.variant, t.status, "
    "list(d.doc_id ORDER BY d.rank) AS docs FROM traces t LEFT JOIN documents d USING (trace_id) "
    "WHERE t.trace_id = '{trace_id}' GROUP BY ALL",
    "sql: spans of a trace": "SELECT * FROM spans WHERE trace_id = '{trace_id}' ORDER BY time",
}


def build(data_dir: Path, n_spans: int) -> tuple[float, int]:
    """Grow the store in ``data_dir`` to ``n_spans`` spans; returns (seconds spent, spans added)."""
    have = 0
    if layout.has_files(data_dir, "spans"):
        have = db.query(data_dir, "SELECT count(*) FROM spans").rows[0][0]
    t = time.perf_counter()
    added = 0
    while have + added < n_spans:
        segment = max_published_segment(open_store(data_dir), "bench") + 1  # generate() writes as "bench"
        n = min(CHUNK, n_spans - have - added)
        added += generate(data_dir, n, seed=segment, segment=segment, gpu=segment == 1)
    # What the store's maintainer does after each compaction pass: the traces view's split index.
    started = time.perf_counter()
    trace_index.refresh(open_store(data_dir))
    print(f"trace index refreshed in {time.perf_counter() - started:.2f} s")
    return time.perf_counter() - t, added


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def dashboard_calls(f: Filters, bucket: int, trace_id: str, doc_id: str, user_id: str) -> dict:
    """Every store/queries.py function a dashboard page calls, with the arguments the pages pass."""
    q = queries
    return {
        "services": lambda con: q.services(con),
        "filter_values": lambda con: q.filter_values(con),
        "time_extent": lambda con: q.time_extent(con),
        "overview": lambda con: q.overview(con, f),
        "overview_over_time": lambda con: q.overview_over_time(con, f, bucket),
        "window_error_rates": lambda con: q.window_error_rates(con, f),
        "slo_by_service": lambda con: q.slo_by_service(con, f),
        "tokens_by_model": lambda con: q.tokens_by_model(con, f),
        "stage_summary": lambda con: q.stage_summary(con, f),
        "stage_latency_over_time": lambda con: q.stage_latency_over_time(con, f, bucket),
        "slowest_traces": lambda con: q.slowest_traces(con, f, 20),
        "trace_spans": lambda con: q.trace_spans(con, trace_id),
        "cache_summary": lambda con: q.cache_summary(con, f),
        "cache_hit_rate_over_time": lambda con: q.cache_hit_rate_over_time(con, f, bucket),
        "gpu_over_time": lambda con: q.gpu_over_time(con, f),
        "gpu_utilization_over_time": lambda con: q.gpu_utilization_over_time(con, f, bucket),
        "serving_over_time": lambda con: q.serving_over_time(con, f, bucket),
        "cache_misses_by_reason": lambda con: q.cache_misses_by_reason(con, f),
        "cache_misses_over_time": lambda con: q.cache_misses_over_time(con, f, bucket),
        "cache_savings": lambda con: q.cache_savings(con, f),
        "cached_tokens": lambda con: q.cached_tokens(con, f),
        "guardrail_outcomes": lambda con: q.guardrail_outcomes(con, f),
        "safety_over_time": lambda con: q.safety_over_time(con, f, bucket),
        "quality_summary": lambda con: q.quality_summary(con, f),
        "quality_over_time": lambda con: q.quality_over_time(con, f, bucket),
        "pii_counts": lambda con: q.pii_counts(con, f),
        "quality_by_variant": lambda con: q.quality_by_variant(con, f),
        "requests_per_user": lambda con: q.requests_per_user(con, f),
        "variants": lambda con: q.variants(con, f),
        "search_traces(trace)": lambda con: q.search_traces(con, f, trace_id=trace_id),
        "search_traces(user)": lambda con: q.search_traces(con, f, user_id=user_id),
        "search_traces(doc)": lambda con: q.search_traces(con, f, doc_id=doc_id),
        "trace_content": lambda con: q.trace_content(con, trace_id),
        "trace_documents": lambda con: q.trace_documents(con, trace_id),
        "trace_guardrails": lambda con: q.trace_guardrails(con, trace_id),
    }


def _run_sql(sql: str, con) -> db.Result:
    return db.run_query(con, sql)


def sql_calls(trace_id: str, has_audit_view: bool) -> dict:
    """`ragtrail sql` questions, run the way the CLI runs them (check_statement, row cap, time limit)."""
    questions = dict(SQL_QUESTIONS)
    if has_audit_view:
        questions["sql: audit by trace id"] = "SELECT * FROM audit WHERE trace_id = '{trace_id}'"
    return {
        name: functools.partial(_run_sql, sql.format(trace_id=trace_id)) for name, sql in questions.items()
    }


def time_calls(data_dir: Path, calls: dict, repeat: int) -> list[tuple[str, float, float, float, float]]:
    """(name, connect s, cold s, warm p50 s, warm p95 s) per call, each on its own fresh connection."""
    out = []
    for name, call in calls.items():
        t = time.perf_counter()
        con = db.connect(data_dir)
        connect = time.perf_counter() - t
        call(con)
        cold = time.perf_counter() - t
        warm = []
        for _ in range(repeat):
            t = time.perf_counter()
            call(con)
            warm.append(time.perf_counter() - t)
        con.close()
        p95 = statistics.quantiles(warm, n=20, method="inclusive")[-1] if len(warm) > 1 else warm[0]
        out.append((name, connect, cold, statistics.median(warm), p95))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000,10000000", help="store sizes in spans, built incrementally")
    ap.add_argument("--repeat", type=int, default=5, help="warm runs per query")
    ap.add_argument("--range", choices=["all", "1h"], default="all", help="dashboard time range")
    ap.add_argument("--keep", type=Path, help="build into (or reuse) this directory")
    args = ap.parse_args()
    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="ragtrail-bench-query-"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")  # fmt: skip
    print(f"machine: {os.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          "shared with other jobs (figures are noisy); DuckDB reader: db.connect() defaults")  # fmt: skip
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            seconds, added = build(data_dir, size)
            total = db.query(data_dir, "SELECT count(*) FROM spans").rows[0][0]
            print(f"\n== {total:,} spans: built {added:,} spans in {seconds:.1f} s "
                  f"({added / max(seconds, 1e-9):,.0f} spans/s), {disk_bytes(data_dir) / 2**20:,.0f} MiB on disk")  # fmt: skip
            con = db.connect(data_dir)
            newest = con.execute("SELECT max(time) FROM spans").fetchone()[0]
            trace_id, user_id = con.execute(
                "SELECT trace_id, user_id FROM spans WHERE time > ? LIMIT 1", [newest - timedelta(minutes=5)]
            ).fetchone()
            doc_id = con.execute("SELECT doc_id FROM documents LIMIT 1").fetchone()[0]
            has_audit = con.execute(
                "SELECT count(*) FROM duckdb_views() WHERE view_name = 'audit'"
            ).fetchone()[0]
            con.close()
            f, bucket = (
                (Filters(), 1800) if args.range == "all" else (Filters(newest - timedelta(hours=1)), 60)
            )
            calls = {
                **dashboard_calls(f, bucket, trace_id, doc_id, user_id),
                **sql_calls(trace_id, bool(has_audit)),
            }
            rows = time_calls(data_dir, calls, args.repeat)
            print(
                f"{'query (range ' + args.range + ')':32} {'connect s':>9} {'cold s':>7} {'warm p50 s':>10} {'warm p95 s':>10}"
            )
            for name, connect, cold, p50, p95 in rows:
                flag = "  > 1 s" if max(p95, cold) > 1 else ""
                print(f"{name:32} {connect:>9.3f} {cold:>7.3f} {p50:>10.3f} {p95:>10.3f}{flag}", flush=True)
            worst = max(rows, key=lambda r: r[4])
            print(f"slowest warm p95: {worst[0]} {worst[4]:.3f} s; "
                  f"median cold {statistics.median(r[2] for r in rows):.3f} s")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
