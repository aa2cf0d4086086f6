"""Audit benchmark: quality scoring, export, verify, impact and erasure over a demo store.

Fills a store with the seeded demo through a real collector (OTLP, redaction on with patterns only,
its own scoring off), stops it, then times each operation on the stopped store (median of --repeat
runs; erasure once, last):

    python bench/audit.py [--rate 20] [--duration 600] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ragtrail.collector.flush import max_published_segment, split_by_date, write_parquet_atomic  # noqa: E402
from ragtrail.sample_data.demo import DemoOptions, run_demo  # noqa: E402
from ragtrail.store import audit, db, erase, layout, quality  # noqa: E402
from ragtrail.store.fs import open_store  # noqa: E402
from tests.conftest import Collector  # noqa: E402


def fill(data_dir: Path, rate: float, duration: float) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    # Scoring off in the collector: the benchmark times it on the stopped store.
    (data_dir / "ragtrail.toml").write_text("[redaction]\nner = false\n\n[quality]\nenabled = false\n")
    collector = Collector(data_dir, env={"RAGTRAIL_REDACTION": "on"}).start()
    try:
        summary = run_demo(DemoOptions(endpoint=collector.grpc_endpoint, rate=rate, duration=duration, seed=3,
                                       realtime=False, gpu=False))  # fmt: skip
        collector.wait_for("SELECT count(DISTINCT trace_id) FROM spans", summary.requests, timeout=300)
    finally:
        collector.stop()


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="fill (or reuse) this directory")
    args = ap.parse_args()
    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="ragtrail-bench-")) / "data"
    try:
        if not (data_dir / "tables" / "spans").is_dir():
            fill(data_dir, args.rate, args.duration)
        spans, traces = db.query(data_dir, "SELECT count(*), count(DISTINCT trace_id) FROM spans").rows[0]
        print(f"store: {spans:,} spans, {traces:,} traces in {data_dir}")
        work = Path(tempfile.mkdtemp(prefix="ragtrail-bench-out-"))
        user = db.query(data_dir, "SELECT user_id FROM spans WHERE user_id IS NOT NULL "
                        "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").rows[0][0]  # fmt: skip

        rows = []
        t, table = timed(lambda: quality.Scorer(data_dir).run_once(), args.repeat)
        rows.append(("score every trace (first pass)", t, f"{table.num_rows:,} rows"))
        scorer = quality.Scorer(data_dir)
        scorer.run_once()
        t, _ = timed(scorer.run_once, args.repeat)
        rows.append(("scoring pass, nothing new", t, ""))
        for date, part in split_by_date(table):  # store the scores so exports carry them
            name = layout.segment_file_name(max_published_segment(open_store(data_dir), "bench") + 1, "bench")
            write_parquet_atomic(part, layout.partition_dir(data_dir, "quality", date) / name, 122_880)
        t, m = timed(
            lambda: audit.export(data_dir, work / "all.jsonl", audit.Filters(), actor="bench"), args.repeat
        )
        rows.append(("audit export, everything (jsonl)", t, f"{m['records']:,} records"))
        t, m = timed(
            lambda: audit.export(data_dir, work / "all.parquet", audit.Filters(), actor="bench"), args.repeat
        )
        rows.append(("audit export, everything (parquet)", t, f"{m['records']:,} records"))
        t, v = timed(lambda: audit.verify(work / "all.jsonl"), args.repeat)
        rows.append(("audit verify (jsonl)", t, "ok" if v.ok else "FAILED"))
        t, m = timed(
            lambda: audit.export(data_dir, work / "u.jsonl", audit.Filters(user=user), actor="bench"),
            args.repeat,
        )
        rows.append(("audit export, one user", t, f"{m['records']:,} records"))
        t, r = timed(lambda: audit.impact(data_dir, "kb-007"), args.repeat)
        rows.append(("audit impact kb-007", t, f"{len(r.rows):,} traces"))
        t, r = timed(lambda: erase.erase_user(data_dir, user, actor="bench"), 1)
        rows.append(
            (
                "erase the busiest user",
                t,
                f"{sum(r['rows_removed'].values()):,} rows, {r['files_rewritten']} files",
            )
        )
        print(f"{'operation':<40} {'median s':>9}  result")
        for name, seconds, note in rows:
            print(f"{name:<40} {seconds:>9.3f}  {note}")
        shutil.rmtree(work, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(data_dir.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
