"""Ingest benchmark: RAG-shaped OTLP traces into a real `ragtrail collector`, durable acknowledgement.

Each trace has 6 spans (chain -> embed -> retrieve -> rerank -> generate -> guardrail) with
OpenInference attributes and ~1 KB of prompt/response text. Requests are pre-encoded (510 spans
each, like the SDK's default batch) so the load generator costs little; senders are separate
processes. Reports spans/s acknowledged (every 200/OK was fsynced) and spans/s queryable (until
`SELECT count(*) FROM spans` sees them all), per transport and concurrency.

    python bench/ingest.py [--seconds 10] [--concurrency 2,4,8] [--transports http,grpc] [--redaction]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

REPO = Path(__file__).resolve().parent.parent
TRACES_PER_REQUEST = 85
STAGES = [
    ("rag.request", "CHAIN"),
    ("embed", "EMBEDDING"),
    ("retrieve", "RETRIEVER"),
    ("rerank", "RERANKER"),
    ("generate", "LLM"),
    ("guardrail", "GUARDRAIL"),
]
WORDS = [
    "the",
    "refund",
    "policy",
    "allows",
    "returns",
    "within",
    "thirty",
    "days",
    "of",
    "purchase",
    "for",
    "unused",
    "items",
    "with",
    "receipt",
]


def kv(key, value):
    if isinstance(value, str):
        return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))
    if isinstance(value, float):
        return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(double_value=value))
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(int_value=value))


def text(rng: random.Random, chars: int) -> str:
    out = []
    while sum(len(w) + 1 for w in out) < chars:
        out.append(rng.choice(WORDS))
    return " ".join(out)


def make_request(seed: int) -> bytes:
    rng = random.Random(seed)
    spans = []
    now = time.time_ns()
    for t in range(TRACES_PER_REQUEST):
        trace_id = rng.randbytes(16)
        root = rng.randbytes(8)
        start = now + t * 1_000_000
        for i, (name, kind) in enumerate(STAGES):
            attrs = [kv("openinference.span.kind", kind), kv("session.id", f"s{rng.randrange(1000)}")]
            if kind == "LLM":
                attrs += [
                    kv("llm.model_name", "llama-3.1-8b-instruct"),
                    kv("llm.token_count.prompt", rng.randrange(300, 1500)),
                    kv("llm.token_count.completion", rng.randrange(20, 300)),
                    kv("llm.input_messages.0.message.role", "user"),
                    kv("llm.input_messages.0.message.content", text(rng, 500)),
                    kv("llm.output_messages.0.message.content", text(rng, 500)),
                ]
            elif kind == "RETRIEVER":
                attrs += [kv("input.value", text(rng, 80))]
                for d in range(3):
                    attrs += [
                        kv(f"retrieval.documents.{d}.document.id", f"doc-{rng.randrange(500)}"),
                        kv(f"retrieval.documents.{d}.document.score", rng.random()),
                    ]
            spans.append(
                trace_pb2.Span(
                    trace_id=trace_id,
                    span_id=root if i == 0 else rng.randbytes(8),
                    parent_span_id=b"" if i == 0 else root,
                    name=name,
                    kind=1,
                    start_time_unix_nano=start + i * 1000,
                    end_time_unix_nano=start + i * 1000 + rng.randrange(1_000_000, 90_000_000),
                    attributes=attrs,
                )
            )
    resource = resource_pb2.Resource(attributes=[kv("service.name", "bench-rag")])
    req = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            trace_pb2.ResourceSpans(resource=resource, scope_spans=[trace_pb2.ScopeSpans(spans=spans)])
        ]
    )
    return req.SerializeToString()


SPANS_PER_REQUEST = TRACES_PER_REQUEST * len(STAGES)


def sender(transport: str, port: int, bodies: list[bytes], seconds: float, out: mp.Queue) -> None:
    ok = errors = 0
    deadline = time.monotonic() + seconds
    latencies = []
    if transport == "http":
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = 0
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            conn.request(
                "POST", "/v1/traces", bodies[i % len(bodies)], {"Content-Type": "application/x-protobuf"}
            )
            resp = conn.getresponse()
            resp.read()
            latencies.append(time.perf_counter() - t0)
            ok, errors = (ok + 1, errors) if resp.status == 200 else (ok, errors + 1)
            i += 1
    else:
        import grpc

        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        i = 0
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                export(bodies[i % len(bodies)], timeout=30)
                ok += 1
            except grpc.RpcError:
                errors += 1
            latencies.append(time.perf_counter() - t0)
            i += 1
    out.put((ok, errors, latencies))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count_spans(data_dir: Path) -> int:
    from ragtrail.store import db

    return db.query(data_dir, "SELECT count(*) FROM spans").rows[0][0]


def _tree_cpu(ps: psutil.Process) -> float:
    procs = [ps, *ps.children(recursive=True)]
    return sum(sum(p.cpu_times()[:2]) for p in procs)


def run_case(transport: str, concurrency: int, seconds: float, redaction: bool, workers: int) -> dict:
    data = Path(tempfile.mkdtemp(prefix="ragtrail-bench-"))
    gport, hport = free_port(), free_port()
    env = {**os.environ, "RAGTRAIL_REDACTION": "on" if redaction else "off"}
    cmd = [sys.executable, "-m", "ragtrail.cli", "collector", "--data", str(data), "--grpc-port", str(gport),
           "--http-port", str(hport), "--workers", str(workers)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{hport}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        bodies = [make_request(seed) for seed in range(8)]
        ps = psutil.Process(proc.pid)
        out: mp.Queue = mp.Queue()
        port = hport if transport == "http" else gport
        procs = [
            mp.Process(target=sender, args=(transport, port, bodies, seconds, out))
            for _ in range(concurrency)
        ]
        t0 = time.monotonic()
        for p in procs:
            p.start()
        peak_rss = 0
        cpu0 = _tree_cpu(ps)
        while any(p.is_alive() for p in procs) and out.qsize() < concurrency:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak_rss = max(peak_rss, rss)
            time.sleep(0.2)
        results = [out.get() for _ in procs]
        send_seconds = time.monotonic() - t0
        for p in procs:
            p.join()
        acked = sum(r[0] for r in results) * SPANS_PER_REQUEST
        errors = sum(r[1] for r in results)
        latencies = [lat for r in results for lat in r[2]]
        while count_spans(data) < acked and time.monotonic() - t0 < send_seconds + 60:
            time.sleep(0.1)
        queryable_seconds = time.monotonic() - t0
        cpu = _tree_cpu(ps) - cpu0
        stored = count_spans(data)
        return {
            "transport": transport,
            "conc": concurrency,
            "redaction": "on" if redaction else "off",
            "acked_spans_s": acked / send_seconds,
            "queryable_spans_s": stored / queryable_seconds,
            "lag_s": queryable_seconds - send_seconds,
            "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
            "peak_rss_mb": peak_rss / 2**20,
            "errors": errors,
            "lost": max(0, acked - stored),
            # CPU the collector (and its pool workers) spent per stored span: what bounds the
            # rate on a machine whose cores the load generator shares.
            "cpu_us_span": cpu / max(stored, 1) * 1e6,
        }
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", default="2,4,8")
    parser.add_argument("--transports", default="http,grpc")
    parser.add_argument("--redaction", action="store_true")
    parser.add_argument("--workers", type=int, default=0, help="collector pipeline worker processes")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
          f"{SPANS_PER_REQUEST} spans/request, {len(make_request(0)) / 1024:.0f} KiB/request")  # fmt: skip
    header = f"{'transport':9} {'conc':>4} {'redact':>6} {'acked spans/s':>14} {'queryable spans/s':>18} {'lag s':>6} {'p50 ms':>7} {'peak RSS MB':>11} {'errors':>6} {'lost':>5} {'CPU us/span':>11}"
    print(header)
    print("-" * len(header))
    for transport in args.transports.split(","):
        for conc in [int(c) for c in args.concurrency.split(",")]:
            r = run_case(transport, conc, args.seconds, args.redaction, args.workers)
            print(f"{r['transport']:9} {r['conc']:>4} {r['redaction']:>6} {r['acked_spans_s']:>14,.0f} {r['queryable_spans_s']:>18,.0f} "
                  f"{r['lag_s']:>6.1f} {r['p50_ms']:>7.1f} {r['peak_rss_mb']:>11.0f} {r['errors']:>6} {r['lost']:>5} {r['cpu_us_span']:>11.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
