"""Overload benchmark: a storm at N x the collector's sustainable rate, retrying clients, then a count.

1. Sustainable rate: --rate spans/s, or measured first (closed loop, --measure-seconds, 4 senders).
2. Storm: --factor x that rate for --seconds, offered by --procs x --threads paced connections
   (open loop: each connection keeps its schedule while others wait), retrying like OTel exporters
   (503/429/UNAVAILABLE/RESOURCE_EXHAUSTED and transport errors: honour Retry-After, else exponential
   backoff from 0.1 s, capped at 5 s; a request not acknowledged by the deadline is abandoned).
   Every reply code is counted; the collector's process-tree RSS is sampled every 0.2 s.
3. After the storm: wait until the store counts every acknowledged span, then check
   stored == acknowledged and count(DISTINCT span_id) == count(*) (every send has fresh span ids,
   so a duplicate can only come from a retry of a request that was in fact stored).

    python bench/overload.py [--factor 5] [--seconds 60] [--transport http|grpc] [--rate SPANS_PER_S]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import psutil
from _load import SPANS_PER_REQUEST, run_senders, tree_rss
from ingest import Ragtrail

from ragtrail.store import db


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--factor", type=float, default=5)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--transport", choices=["http", "grpc"], default="http")
    ap.add_argument("--rate", type=float, default=0, help="sustainable spans/s (0: measure it first)")
    ap.add_argument("--measure-seconds", type=float, default=10)
    ap.add_argument("--procs", type=int, default=4, help="sender processes (at most 60)")
    ap.add_argument("--threads", type=int, default=64, help="connections per sender process (at most 64)")
    ap.add_argument("--redaction", action="store_true")
    ap.add_argument("--workers", type=int, default=0, help="collector pipeline worker processes")
    ap.add_argument("--drain-timeout", type=float, default=180)
    ap.add_argument("--client-timeout", type=float, default=10, help="per request (OTel exporters: 10 s)")
    args = ap.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")  # fmt: skip
    print(f"machine: {os.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          "shared with other jobs; the load generator runs on the same cores")  # fmt: skip

    server = Ragtrail(args.redaction, args.workers)
    server.start()
    try:
        ps = psutil.Process(server.proc.pid)
        port = server.http_port if args.transport == "http" else server.grpc_port
        rate = args.rate
        if not rate:
            result, wall = run_senders(4, args.transport, port, args.measure_seconds, lambda: None)
            rate = result.acked_spans / wall
            print(f"sustainable (closed loop, 4 senders, {args.measure_seconds:.0f} s): {rate:,.0f} spans/s")
            _wait_stored(server, result.acked_spans, args.drain_timeout)
        base_acked = server.count()
        target = args.factor * rate
        connections = args.procs * args.threads
        per_conn = target / SPANS_PER_REQUEST / connections
        print(f"storm: {args.factor:g} x {rate:,.0f} = {target:,.0f} spans/s offered for {args.seconds:.0f} s "
              f"over {args.transport}, {connections} connections at {per_conn:.2f} requests/s each, retrying")  # fmt: skip

        samples: list[tuple[float, int]] = []
        t0 = time.monotonic()

        def sample():
            if not samples or time.monotonic() - t0 - samples[-1][0] >= 0.2:
                samples.append((time.monotonic() - t0, tree_rss(ps)))

        result, wall = run_senders(args.procs, args.transport, port, args.seconds, sample,
                                   first=4, threads=args.threads, rate=per_conn, retry=True,
                                   timeout=args.client_timeout)  # fmt: skip
        sent_done = time.monotonic() - t0
        expected = base_acked + result.acked_spans
        waited = _wait_stored(server, expected, args.drain_timeout, sample)
        total, distinct = db.query(server.data, "SELECT count(*), count(DISTINCT span_id) FROM spans").rows[0]

        print(f"\nacknowledged {result.acked_spans:,} spans in {wall:.1f} s ({result.acked_spans / wall:,.0f} spans/s, "
              f"{result.acked_requests:,} requests); abandoned at the deadline: {result.gave_up:,} requests")  # fmt: skip
        lat = sorted(result.latencies)
        if lat:
            print(f"acknowledgement latency (first send to 200/OK, retries included): "
                  f"p50 {lat[len(lat) // 2]:.2f} s, p99 {lat[int(len(lat) * 0.99)]:.2f} s, max {lat[-1]:.2f} s")  # fmt: skip
        print("reply codes: " + ", ".join(f"{code} x{n:,}" for code, n in result.codes.most_common()))
        print(f"\n{'t (s)':>6} {'RSS max MiB':>12}   (collector process tree, per 5 s window)")
        for start in range(0, int(samples[-1][0]) + 1, 5):
            window = [rss for t, rss in samples if start <= t < start + 5]
            if window:
                mark = "  <- storm ends" if start <= sent_done < start + 5 else ""
                print(f"{start:>6} {max(window) / 2**20:>12,.0f}{mark}")
        peak = max(rss for _, rss in samples)
        print(f"peak RSS {peak / 2**20:,.0f} MiB ({'< 1 GiB' if peak < 2**30 else 'OVER 1 GiB'})")
        print(f"\nstored {total:,} spans ({distinct:,} distinct span ids), acknowledged {expected:,} "
              f"(measurement phase included), store caught up {waited:.1f} s after the storm")  # fmt: skip
        if server.read_races:
            print(
                f"count queries that failed with 'Cannot open file' (reader vs compaction): {server.read_races}"
            )
        ok = total == expected and distinct == total
        print(
            f"stored == acknowledged and no duplicates: {'YES' if ok else 'NO'}"
            + (
                ""
                if ok
                else f" (acknowledged but not stored {max(0, expected - distinct):,}; stored but never "
                f"acknowledged {max(0, distinct - expected):,}; duplicate rows {total - distinct:,})"
            )
        )
    finally:
        server.stop()


def _wait_stored(server, expected: int, timeout: float, sample=lambda: None) -> float:
    t0 = time.monotonic()
    while server.count() < expected and time.monotonic() - t0 < timeout:
        sample()
        time.sleep(0.25)
    return time.monotonic() - t0


if __name__ == "__main__":
    main()
