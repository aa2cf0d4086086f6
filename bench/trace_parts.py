"""What the traces view's trace parts cost the writer: CPU per fold of one WAL segment's spans
(store.trace_parts.fold, run by the flusher for every spans file) at several segment sizes, and the
maintainer's trace-split index refresh (store.trace_index.refresh) on the whole store.

Spans come from bench/dashboard.py's generator (10-span RAG traces). CPU time (process_time), median
of --repeat runs, so other jobs on the machine inflate the figures less than wall time would.

    python bench/trace_parts.py [--spans 1000000] [--repeat 15] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from dashboard import generate
from ragtrail.store import trace_index, trace_parts
from ragtrail.store.fs import open_store


def cpu_median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--keep", type=Path, help="generate into (or reuse) this directory")
    args = ap.parse_args()
    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="ragtrail-bench-parts-"))
    try:
        store = open_store(data_dir)
        if not store.published("spans"):
            generate(data_dir, args.spans)
        spans = pa.concat_tables(store.read_table(p) for p in store.published("spans"))
        print(f"{spans.num_rows:,} spans in {data_dir}")
        print(f"{'segment spans':>13} {'fold ms CPU':>11} {'µs CPU/span':>11}")
        for n in (1_000, 10_000, 100_000):
            part = spans.slice(0, n)
            seconds = cpu_median(lambda part=part: trace_parts.fold(part, "bench", 1), args.repeat)
            print(f"{n:>13,} {seconds * 1e3:>11.1f} {seconds / n * 1e6:>11.2f}")
        started = time.perf_counter()
        index = trace_index.refresh(store)
        print(f"trace index refresh over {spans.num_rows:,} spans: {time.perf_counter() - started:.2f} s wall, "
              f"{index.num_rows:,} rows")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
