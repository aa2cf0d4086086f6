"""Compaction memory: peak RSS of merging one partition's small files, streamed vs loaded at once.

Builds ``--files`` flush-sized files of content-like rows (~1 KB of varied text each, as prompts and
documents are) in one partition, then compacts them in a fresh child process per variant and reports
that process's peak RSS (ru_maxrss) and time, side by side:

  streamed   collector.flush.compact_partition as it is (one input in memory at a time)
  load-all   the previous way: read every input, concat, sort by time, write one table

    python bench/compaction.py [--files 16] [--rows 40000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ragtrail.collector import flush
from ragtrail.config import FlushConfig
from ragtrail.store import layout
from ragtrail.store.fs import open_store

WORDS = [f"w{i}" for i in range(5000)]


def build(data_dir: Path, files: int, rows: int) -> Path:
    rng = random.Random(7)
    part = layout.partition_dir(data_dir, "content", "2026-12-02")
    base = 1_764_633_600_000_000
    for seg in range(1, files + 1):
        texts = [" ".join(rng.choices(WORDS, k=170)) for _ in range(rows)]
        table = pa.table({
            "time": pa.array([base + rng.randrange(10**9) for _ in range(rows)], pa.timestamp("us")),
            "trace_id": [f"{rng.getrandbits(128):032x}" for _ in range(rows)],
            "role": rng.choices(["prompt", "response", "document"], k=rows),
            "text": texts,
        })  # fmt: skip
        flush.write_parquet_atomic(table, part / layout.segment_file_name(seg, "w1"), 122_880)
    return part


def load_all(part: Path, config: FlushConfig) -> None:
    """The pre-streaming compaction: every input in memory, concatenated, sorted, written at once."""
    inputs = layout.published_files(part)
    table = pa.concat_tables([pq.read_table(p) for p in inputs], promote_options="permissive").sort_by("time")
    open_store(part).write_parquet(table, str(part / "_loadall.pending"), config.row_group_rows)
    for p in inputs:
        p.unlink()


def child(variant: str, part: Path) -> None:
    config = FlushConfig(compact_min_files=2, compact_target_bytes=1 << 40)
    t = time.perf_counter()
    if variant == "streamed":
        flush.compact_partition(open_store(part), str(part), config)
    else:
        load_all(part, config)
    seconds = time.perf_counter() - t
    print(f"{seconds:.3f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--rows", type=int, default=40_000, help="rows per input file")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    work = Path(tempfile.mkdtemp(prefix="ragtrail-compaction-"))
    try:
        source = build(work / "source", args.files, args.rows)
        size = sum(p.stat().st_size for p in source.iterdir())
        arrow = sum(pq.read_metadata(p).num_rows for p in source.iterdir())
        print(f"{args.files} input files, {arrow:,} rows, {size / 2**20:.0f} MiB of Parquet; "
              f"peak RSS of a fresh process compacting them (median of {args.repeat})")  # fmt: skip
        print(f"{'variant':10} {'peak RSS MiB':>12} {'seconds':>8}")
        results = {}
        for _ in range(args.repeat):
            for variant in ("streamed", "load-all"):
                copy = work / variant
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(work / "source", copy)
                part = layout.partition_dir(copy, "content", "2026-12-02")
                out = subprocess.run([sys.executable, __file__, "--child", variant, str(part)],
                                     check=True, capture_output=True, text=True).stdout.split()  # fmt: skip
                results.setdefault(variant, []).append((float(out[0]), float(out[1])))
        for variant, runs in results.items():
            rss = statistics.median(r[1] for r in runs)
            secs = statistics.median(r[0] for r in runs)
            print(f"{variant:10} {rss:>12,.0f} {secs:>8.2f}")
        ratio = statistics.median(r[1] for r in results["load-all"]) / statistics.median(
            r[1] for r in results["streamed"]
        )
        print(f"load-all / streamed peak RSS: {ratio:.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
