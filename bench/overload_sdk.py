"""Overload soak: real OTel SDK exporters (retry on) offered a multiple of what the collector admits,
for a long time, then every span accounted for. CI runs a 1.5 s burst of the same
(tests/collector/test_overload.py); here, by default, 60 s at 5x:

    python bench/overload_sdk.py [--seconds 60] [--factor 5] [--exporters 6] [--max-pending 60000]

Prints one table row; exits non-zero if a span the SDK exported is missing or stored twice. The
backlog (factor - 1 of every span offered) drains at the exporters' retry pace, so a 60 s run takes
several minutes in all.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.collector.overload_run import overload_toml, sdk_overload  # noqa: E402
from tests.conftest import Collector  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--factor", type=float, default=5)
    ap.add_argument("--exporters", type=int, default=6, help="SDK pipelines, half HTTP, half gRPC")
    ap.add_argument("--max-pending", type=int, default=60_000, help="[wal] max_pending_bytes")
    ap.add_argument("--segment-seconds", type=float, default=0.25)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragtrail-overload-") as tmp:
        data, config = Path(tmp) / "data", Path(tmp) / "overload.toml"
        data.mkdir()
        config.write_text(overload_toml(args.max_pending, args.segment_seconds))
        c = Collector(data, extra_args=["--config", str(config)], env={"RAGTRAIL_REDACTION": "off"}).start()
        try:
            r = sdk_overload(
                c,
                seconds=args.seconds,
                factor=args.factor,
                max_pending_bytes=args.max_pending,
                segment_seconds=args.segment_seconds,
                exporters=args.exporters,
            )
        finally:
            c.stop()
    mib = "/".join(str(q >> 20) for q in r.rss_quarters)
    print("| seconds | admitted ≤ spans/s | offered spans/s | × | spans | stored | distinct | SDK gave up | "
          "refusals | exporter retries | RSS MiB (start, peak per quarter) |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    print(f"| {args.seconds:g} | {r.sustainable:.0f} | {r.offered:.0f} | {r.factor:.1f} | {r.created} | {r.stored} | "
          f"{r.distinct} | {r.gave_up} | {r.refused} | {r.retries} | {r.rss_baseline >> 20}, {mib} |")  # fmt: skip
    return 0 if r.stored == r.distinct == r.exported else 1


if __name__ == "__main__":
    sys.exit(main())
