"""Dashboard benchmark: every page's queries (store/queries.py) over N synthetic spans.

Generates RAG-shaped traces (chain root + guardrail, 3 cache lookups, embed, retrieve, rerank,
generate, output guardrail: 10 spans each) spread over 24 hours, 3 documents per retrieval and a
GPU sample every 5 s, written as Parquet through the store's writer (collector.flush), then times
each page's full set of queries on a fresh reader connection (what one page load runs, uncached),
for the whole range and for the last hour.

    python bench/dashboard.py [--spans 1000000] [--repeat 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from ragtrail.collector.flush import publish
from ragtrail.store import db, layout, queries, trace_index
from ragtrail.store.fs import open_store
from ragtrail.store.queries import Filters
from ragtrail.store.schema import DOCUMENTS, GPU, QUALITY, SPANS

SPAN_NAMES = [
    ("rag.query", "chain", None),
    ("guardrail.input", "guardrail", None),
    ("cache.response", "cache", "response"),
    ("cache.embedding", "cache", "embedding"),
    ("embed", "embed", None),
    ("cache.context", "cache", "context"),
    ("retrieve", "retrieve", None),
    ("rerank", "rerank", None),
    ("generate", "generate", None),
    ("guardrail.output", "guardrail", None),
]
MEAN_MS = {
    "chain": 0,
    "guardrail": 8,
    "cache": 1,
    "embed": 14,
    "retrieve": 35,
    "rerank": 55,
    "generate": 1000,
}


def _hex(rng, n: int, width: int) -> list[str]:
    return [f"{x:0{width}x}" for x in rng.integers(0, 2**62, size=n, dtype=np.int64)]


def generate(data_dir: Path, n_spans: int, seed: int = 0, *, segment: int = 1, gpu: bool = True) -> int:
    """Write ``n_spans`` spans (their documents and scores, and a day of GPU samples when ``gpu``) as
    one segment's Parquet files; call again with another ``seed``/``segment`` to grow a store in chunks."""
    rng = np.random.default_rng(seed)
    k = len(SPAN_NAMES)
    n_traces = n_spans // k
    end = datetime.utcnow()
    start_us = int((end - timedelta(hours=24)).timestamp() * 1e6)
    t0 = np.sort(rng.integers(start_us, start_us + 24 * 3600 * 10**6, n_traces))
    trace_ids = np.array(
        [f"{a}{b}" for a, b in zip(_hex(rng, n_traces, 16), _hex(rng, n_traces, 16), strict=True)]
    )
    root_ids = np.array(_hex(rng, n_traces, 16))
    services = np.where(rng.random(n_traces) < 0.4, "search-rag", "support-rag")
    variants = np.where(rng.random(n_traces) < 0.2, "canary", "stable")
    quant = np.where(variants == "canary", "int4-gptq", "int4-awq")
    errors = rng.random(n_traces) < 0.01
    routes = np.where(rng.random(n_traces) < 0.12, "escalated", "small")
    users = np.array([f"user-{u:04d}" for u in rng.integers(0, 5000, n_traces)])
    cols = {name: [] for name in SPANS.names}
    offset = np.zeros(n_traces, dtype=np.int64)
    child_durations = []
    for i, (name, stage, layer) in enumerate(SPAN_NAMES[1:], start=1):
        dur = (rng.gamma(2.0, MEAN_MS[stage] / 2.0, n_traces) * 1000).astype(np.int64) + 50
        child_durations.append((i, name, stage, layer, offset.copy(), dur))
        offset += dur + 20
    rows = [(0, "rag.query", "chain", None, np.zeros(n_traces, dtype=np.int64), offset)] + child_durations
    for _, name, stage, layer, off, dur in rows:
        is_root = stage == "chain"
        cols["time"].append(pa.array(t0 + off, pa.timestamp("us")))
        cols["end_time"].append(pa.array(t0 + off + dur, pa.timestamp("us")))
        cols["duration_ms"].append(pa.array(dur / 1000.0))
        cols["trace_id"].append(pa.array(trace_ids))
        cols["span_id"].append(pa.array(root_ids if is_root else _hex(rng, n_traces, 16)))
        cols["parent_span_id"].append(pa.nulls(n_traces, pa.string()) if is_root else pa.array(root_ids))
        cols["name"].append(pa.array([name] * n_traces))
        cols["service_name"].append(pa.array(services))
        cols["stage"].append(pa.array([stage] * n_traces))
        cols["status"].append(pa.array(np.where(errors & (is_root or stage == "generate"), "ERROR", "UNSET")))
        cols["cache_layer"].append(pa.array([layer] * n_traces, pa.string()))
        hits = rng.random(n_traces) < 0.3
        cols["cache_hit"].append(pa.array(hits) if layer else pa.nulls(n_traces, pa.bool_()))
        cols["variant"].append(pa.array(variants))
        cols["user_id"].append(pa.array(users))
        gen = stage == "generate"
        cols["model"].append(
            pa.array(["llama-3.1-8b-instruct"] * n_traces) if gen else pa.nulls(n_traces, pa.string())
        )
        cols["quantization"].append(pa.array(quant) if gen else pa.nulls(n_traces, pa.string()))
        tokens = rng.integers(50, 2000, n_traces)
        cols["input_tokens"].append(pa.array(tokens) if gen else pa.nulls(n_traces, pa.int64()))
        cols["output_tokens"].append(pa.array(tokens // 3) if gen else pa.nulls(n_traces, pa.int64()))
        cols["cache_read_tokens"].append(pa.array(tokens // 5) if gen else pa.nulls(n_traces, pa.int64()))
        cols["queue_ms"].append(
            pa.array(rng.exponential(15.0, n_traces)) if gen else pa.nulls(n_traces, pa.float64())
        )
        cols["route"].append(pa.array(routes) if gen or is_root else pa.nulls(n_traces, pa.string()))
        cols["attributes"].append(pa.array(_attributes(rng, stage, name, hits if layer else None, n_traces)))
    arrays = {}
    for field in SPANS:
        parts = cols[field.name]
        arrays[field.name] = (
            pa.concat_arrays([p.cast(field.type) for p in parts])
            if parts
            else pa.nulls(n_traces * k, field.type)
        )
    spans = pa.table(arrays, schema=SPANS)
    _write(data_dir, "spans", spans, segment)
    docs = pa.table(
        {
            "time": pa.array(np.repeat(t0, 3), pa.timestamp("us")),
            "trace_id": pa.array(np.repeat(trace_ids, 3)),
            "span_id": pa.nulls(3 * n_traces, pa.string()),
            "stage": pa.array(["retrieve"] * (3 * n_traces)),
            "doc_id": pa.array([f"kb-{d:03d}" for d in rng.integers(0, 500, 3 * n_traces)]),
            "doc_version": pa.array(["v1"] * (3 * n_traces)),
            "rank": pa.array(np.tile(np.arange(3, dtype=np.int32), n_traces)),
            "score": pa.array(rng.random(3 * n_traces)),
            "uri": pa.nulls(3 * n_traces, pa.string()),
            "service_name": pa.array(np.repeat(services, 3)),
        },
        schema=DOCUMENTS,
    )
    _write(data_dir, "documents", docs, segment)
    if gpu:
        _write(data_dir, "gpu", _gpu_day(rng, start_us), segment)
    scored = rng.random(n_traces) < 0.5  # half the answers scored, two metrics each
    k_scored = int(scored.sum())
    quality = pa.table(
        {
            "time": pa.array(np.tile(t0[scored] + offset[scored], 2), pa.timestamp("us")),
            "trace_id": pa.array(np.tile(trace_ids[scored], 2)),
            "span_id": pa.nulls(2 * k_scored, pa.string()),
            "metric": pa.array(["groundedness"] * k_scored + ["citation_accuracy"] * k_scored),
            "score": pa.array(np.concatenate([rng.random(k_scored), (rng.random(k_scored) < 0.9) * 1.0])),
            "label": pa.nulls(2 * k_scored, pa.string()),
            "evaluator": pa.array(["bench"] * (2 * k_scored)),
            "explanation": pa.nulls(2 * k_scored, pa.string()),
            "service_name": pa.array(np.tile(services[scored], 2)),
        },
        schema=QUALITY,
    )
    _write(data_dir, "quality", quality, segment)
    return spans.num_rows


def _gpu_day(rng, start_us: int) -> pa.Table:
    """A day of 5-second samples from one GPU."""
    n_gpu = 24 * 3600 // 5
    return pa.table(
        {
            "time": pa.array(start_us + np.arange(n_gpu, dtype=np.int64) * 5 * 10**6, pa.timestamp("us")),
            "host": pa.array(["node-0"] * n_gpu),
            "gpu_id": pa.array(["GPU-0"] * n_gpu),
            "gpu_name": pa.array(["H100"] * n_gpu),
            "utilization": pa.array(rng.random(n_gpu)),
            "memory_used_bytes": pa.array(rng.random(n_gpu) * 8e10),
            "memory_total_bytes": pa.array(np.full(n_gpu, 8e10)),
            "power_w": pa.array(rng.random(n_gpu) * 700),
            "temperature_c": pa.array(40 + rng.random(n_gpu) * 40),
            "ooms": pa.array(np.zeros(n_gpu)),
            "simulated": pa.array([True] * n_gpu),
            "service_name": pa.array(["gpu-agent"] * n_gpu),
        },
        schema=GPU,
    )


def _attributes(rng, stage: str, name: str, hits, n: int) -> list[str | None]:
    """The attributes JSON the pages read: cache miss reasons, batch sizes, guardrail outcomes."""
    if hits is not None:
        reasons = rng.choice(["cold", "ttl", "version"], n, p=[0.6, 0.3, 0.1])
        return [
            None if h else f'{{"ragtrail.cache.miss_reason":"{r}"}}'
            for h, r in zip(hits, reasons, strict=True)
        ]
    if stage == "generate":
        return [f'{{"ragtrail.batch.size":{b}}}' for b in rng.integers(1, 64, n)]
    if stage == "guardrail":
        direction = name.split(".")[-1]
        refused = rng.random(n) < 0.03
        return [
            f'{{"ragtrail.guardrail.direction":"{direction}","ragtrail.guardrail.outcome":"{"refused" if r else "pass"}"}}'
            for r in refused
        ]
    return [None] * n


def _write(data_dir: Path, table_name: str, table: pa.Table, segment: int = 1) -> None:
    """Through the collector's writer (spans get their trace parts), as writer "bench"."""
    publish(open_store(data_dir), "bench", segment, {table_name: table.sort_by("time")}, 122_880)


def page_queries(con, f: Filters, bucket: int) -> dict[str, callable]:
    """What each page runs on one load (same calls as dashboard/screens/*.py)."""
    slow = lambda: queries.slowest_traces(con, f, 20)  # noqa: E731
    return {
        "overview": lambda: (
            queries.overview(con, f), queries.window_error_rates(con, f), queries.slo_by_service(con, f),
            queries.tokens_by_model(con, f), queries.overview_over_time(con, f, bucket),
        ),
        "latency": lambda: (
            queries.stage_summary(con, f), queries.stage_latency_over_time(con, f, bucket),
            queries.trace_spans(con, slow()["trace_id"].iloc[0]),
        ),
        "caches": lambda: (
            queries.cache_summary(con, f), queries.cache_hit_rate_over_time(con, f, bucket),
            queries.cache_misses_by_reason(con, f), queries.cache_misses_over_time(con, f, bucket),
            queries.cache_savings(con, f), queries.cached_tokens(con, f),
        ),
        "gpu": lambda: (
            queries.gpu_over_time(con, f), queries.serving_over_time(con, f, bucket),
            queries.gpu_utilization_over_time(con, f, bucket),
        ),
        "quality": lambda: (
            queries.quality_summary(con, f), queries.quality_over_time(con, f, bucket),
            queries.quality_by_variant(con, f), queries.guardrail_outcomes(con, f),
            queries.safety_over_time(con, f, bucket), queries.pii_counts(con, f),
            queries.requests_per_user(con, f, 20),
        ),
        "variants": lambda: (queries.variants(con, f), queries.quality_by_variant(con, f)),
        "audit": lambda: (queries.search_traces(con, f, doc_id="kb-007", doc_version="v1"),
                          queries.trace_documents(con, "0" * 32), queries.trace_content(con, "0" * 32),
                          queries.trace_guardrails(con, "0" * 32)),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="generate into (or reuse) this directory")
    args = ap.parse_args()
    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="ragtrail-bench-"))
    try:
        if not layout.has_files(data_dir, "spans"):
            t = time.perf_counter()
            n = generate(data_dir, args.spans)
            trace_index.refresh(open_store(data_dir))  # as the store's maintainer would
            print(f"generated {n:,} spans in {time.perf_counter() - t:.1f}s into {data_dir}")
        con = db.connect(data_dir)
        newest = con.execute("SELECT max(time) FROM spans").fetchone()[0]
        ranges = {
            "24h (all)": (Filters(), 1800),
            "last 1h": (Filters(newest - timedelta(hours=1), None), 60),
            # model and route select whole traces (a semi-join on spans)
            "24h, model+route": (Filters(models=("llama-3.1-8b-instruct",), routes=("escalated",)), 1800),
        }
        # cpu s: process CPU time (all DuckDB threads) per load, less sensitive than wall time to
        # other work on a shared machine; on idle cores wall time is about cpu s / threads used.
        print(f"{'page':<10} {'range':<17} {'p50 s':>7} {'p95 s':>7} {'cpu s':>7}")
        for label, (f, bucket) in ranges.items():
            for page, run in page_queries(con, f, bucket).items():
                times, cpu = [], []
                for _ in range(args.repeat):
                    t, c = time.perf_counter(), time.process_time()
                    run()
                    times.append(time.perf_counter() - t)
                    cpu.append(time.process_time() - c)
                p95 = statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0]
                print(
                    f"{page:<10} {label:<17} {statistics.median(times):>7.3f} {p95:>7.3f} "
                    f"{statistics.median(cpu):>7.3f}"
                )
        con.close()
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
