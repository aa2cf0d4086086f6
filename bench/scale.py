"""Scale-out benchmark: 1, 2, 3 collectors writing side by side into one shared store.

Each collector gets its own load (bench/ingest.py's RAG-shaped requests, 510 spans each, over
OTLP/HTTP from separate sender processes) and its own local WAL; all publish Parquet into one store:
``s3://`` on a moto server on loopback (default) or a shared local directory. Compaction is off
(``--no-maintenance``) so every file a collector wrote is still there to count: the object-store
PUT rate and file sizes below are the flush path's, before compaction.

Reports per case: spans/s acknowledged (all collectors together), spans/s queryable (until
`SELECT count(*) FROM spans` over the store sees them all), p50 request latency, Parquet files
written per second (= PUTs/s on S3) and their mean size, and collector CPU per span. Then, on the
same store: a fresh reader's `count(*)` time (listing included), one compaction pass (every
writer's files merged per partition, as the maintainer does) in seconds, and the reader time after.

    python bench/scale.py [--collectors 1,2,3] [--seconds 10] [--senders 2] [--store s3|local]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import SPANS_PER_REQUEST, free_port, make_request, sender  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def moto_store(stack: ExitStack) -> tuple[str, dict[str, str]]:
    """A moto S3 server on 127.0.0.1 for the run; returns (store URI, AWS env for the collectors)."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    stack.callback(server.stop)
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}"}  # fmt: skip
    os.environ.update(env)
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket="ragtrail-bench")
    return "s3://ragtrail-bench", env


def start_collector(data: Path, storage: str, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    hport, gport = free_port(), free_port()
    cmd = [sys.executable, "-m", "ragtrail.cli", "collector", "--data", str(data), "--storage", storage,
           "--http-port", str(hport), "--grpc-port", str(gport), "--no-maintenance"]  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, **env, "RAGTRAIL_REDACTION": "off"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)  # fmt: skip
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{hport}/healthz", timeout=1)
            return proc, hport
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("collector not ready")


def tree_cpu(procs: list[subprocess.Popen]) -> float:
    total = 0.0
    for proc in procs:
        ps = psutil.Process(proc.pid)
        total += sum(sum(p.cpu_times()[:2]) for p in [ps, *ps.children(recursive=True)])
    return total


def timed_count(storage: str) -> float:
    """Seconds for `SELECT count(*) FROM spans` on a fresh reader (listing included), best of 3."""
    from ragtrail.store import db

    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        db.query(storage, "SELECT count(*), sum(duration_ms) FROM spans")
        best = min(best, time.perf_counter() - t0)
    return best


def run_case(n: int, storage: str, env: dict[str, str], seconds: float, senders: int) -> dict:
    from ragtrail.collector import flush
    from ragtrail.config import FlushConfig
    from ragtrail.store import db
    from ragtrail.store.fs import open_store

    work = Path(tempfile.mkdtemp(prefix="ragtrail-scale-"))
    procs: list[subprocess.Popen] = []
    try:
        ports = []
        for i in range(n):
            proc, port = start_collector(work / f"c{i}", storage, env)
            procs.append(proc)
            ports.append(port)
        bodies = [make_request(seed) for seed in range(8)]
        out: mp.Queue = mp.Queue()
        senders_p = [mp.Process(target=sender, args=("http", port, bodies, seconds, out))
                     for port in ports for _ in range(senders)]  # fmt: skip
        cpu0 = tree_cpu(procs)
        t0 = time.monotonic()
        for p in senders_p:
            p.start()
        results = [out.get() for _ in senders_p]
        send_s = time.monotonic() - t0
        for p in senders_p:
            p.join()
        acked = sum(r[0] for r in results) * SPANS_PER_REQUEST
        stored = 0
        while time.monotonic() - t0 < send_s + 120:
            stored = db.query(storage, "SELECT count(*) FROM spans").rows[0][0]
            if stored >= acked:
                break
            time.sleep(0.2)
        queryable_s = time.monotonic() - t0
        cpu = tree_cpu(procs) - cpu0
        store = open_store(storage)
        files = [i for p in store.partitions() for i in store.files(p)]
        latencies = [lat for r in results for lat in r[2]]
        read_s = timed_count(storage)
        t1 = time.perf_counter()
        merged = sum(
            flush.compact_partition(store, p, FlushConfig(compact_min_files=2)) for p in store.partitions()
        )
        compact_s = time.perf_counter() - t1
        after = sum(len(store.files(p)) for p in store.partitions())
        return {
            "collectors": n,
            "acked_spans_s": acked / send_s,
            "queryable_spans_s": stored / queryable_s,
            "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
            "files_s": len(files) / queryable_s,
            "kib_file": sum(i.size for i in files) / max(len(files), 1) / 1024,
            "cpu_us_span": cpu / max(stored, 1) * 1e6,
            "lost": max(0, acked - stored),
            "files": len(files),
            "read_ms": read_s * 1000,
            "mib": sum(i.size for i in files) / 2**20,
            "compact_s": compact_s if merged else float("nan"),
            "files_after": after,
            "read_after_ms": timed_count(storage) * 1000,
        }
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collectors", default="1,2,3")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--senders", type=int, default=2, help="sender processes per collector")
    parser.add_argument("--store", choices=["s3", "local"], default="s3")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          f"load average {os.getloadavg()[0]:.1f}; store: {args.store}; {SPANS_PER_REQUEST} spans/request, "
          f"{args.senders} HTTP senders per collector, {args.seconds:g} s")  # fmt: skip
    header = (f"{'collectors':>10} {'acked spans/s':>14} {'queryable spans/s':>18} {'p50 ms':>7} "
              f"{'files/s (PUT/s)':>16} {'KiB/file':>9} {'CPU us/span':>11} {'lost':>5} "
              f"{'files':>6} {'MiB':>5} {'read ms':>8} {'compact s':>9} {'files after':>11} {'read ms after':>13}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for n in [int(c) for c in args.collectors.split(",")]:
        with ExitStack() as stack:
            if args.store == "s3":
                storage, env = moto_store(stack)
                storage += f"/case{n}"
            else:
                storage, env = tempfile.mkdtemp(prefix="ragtrail-shared-"), {}
                stack.callback(shutil.rmtree, storage, True)
            r = run_case(n, storage, env, args.seconds, args.senders)
        print(f"{r['collectors']:>10} {r['acked_spans_s']:>14,.0f} {r['queryable_spans_s']:>18,.0f} "
              f"{r['p50_ms']:>7.1f} {r['files_s']:>16.1f} {r['kib_file']:>9.0f} {r['cpu_us_span']:>11.1f} "
              f"{r['lost']:>5} {r['files']:>6} {r['mib']:>5.1f} {r['read_ms']:>8.0f} {r['compact_s']:>9.2f} "
              f"{r['files_after']:>11} {r['read_after_ms']:>13.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
