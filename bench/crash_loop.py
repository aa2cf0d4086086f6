"""Crash-loop soak: kill -9 the collector at seeded random moments under heavier load than CI, restart,
and check that no acknowledged span was lost or duplicated and every Parquet file reads.

CI runs the same loop small (tests/collector/test_durability.py: 20 kills, 3 senders). Here:

    python bench/crash_loop.py [--kills 20] [--senders 8] [--max-acks 300] [--seed 1] [--workers 0]

Prints one table row per run; exits non-zero if anything acknowledged was lost.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.collector.crash_loop import CHURN_TOML, crash_loop  # noqa: E402
from tests.conftest import Collector  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--senders", type=int, default=8)
    ap.add_argument("--max-acks", type=int, default=300, help="a round is killed after 0..N acks")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0, help="collector pipeline worker processes")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="ragtrail-crash-") as tmp:
        root = Path(tmp)
        data, config = root / "data", root / "churn.toml"
        data.mkdir()
        config.write_text(CHURN_TOML)
        started: list[Collector] = []

        def start() -> Collector:
            extra = ["--config", str(config), "--workers", str(args.workers)]
            c = Collector(data, extra_args=extra, env={"RAGTRAIL_REDACTION": "off"})
            started.append(c)
            return c.start()

        try:
            r = crash_loop(
                start, data, kills=args.kills, seed=args.seed, senders=args.senders, max_acks=args.max_acks
            )
        finally:
            for c in started:
                with contextlib.suppress(Exception):
                    c.stop()
    print("| kills | acked requests | acked spans | lost | duplicated spans | parquet files | unreadable | "
          "quarantined WAL (torn tails) | seconds |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {r.kills} | {r.acked_requests} | {r.acked_spans} | {r.lost} | {r.duplicated_spans} | "
          f"{r.parquet_files} | {r.unreadable_parquet} | {r.quarantined_wal} | {r.seconds:.1f} |")  # fmt: skip
    return 1 if r.lost or r.duplicated_spans or r.unreadable_parquet else 0


if __name__ == "__main__":
    sys.exit(main())
