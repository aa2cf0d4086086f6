"""Shared load generator for the ingest and overload benchmarks: RAG-shaped OTLP requests and senders.

Each trace has 6 spans (chain -> embed -> retrieve -> rerank -> generate -> guardrail) with
OpenInference attributes and ~1 KB of prompt/response text; a request holds 85 traces (510 spans,
like the SDK's default batch). Requests are encoded once; every send stamps fresh ids into a copy
(the first 4 bytes of each trace/span/parent id become a per-send tag), so no two sends share a
span id: a peer that upserts on span_id (Phoenix) or a duplicate check sees every span as new, at
a cost of microseconds instead of re-encoding protobuf.

Senders are processes (the GIL stays out of the measurement); each runs ``threads`` connections
and reports reply codes, acknowledged spans and latencies.
"""

from __future__ import annotations

import contextlib
import http.client
import multiprocessing as mp
import random
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import psutil
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

TRACES_PER_REQUEST = 85
STAGES = [
    ("rag.request", "CHAIN"),
    ("embed", "EMBEDDING"),
    ("retrieve", "RETRIEVER"),
    ("rerank", "RERANKER"),
    ("generate", "LLM"),
    ("guardrail", "GUARDRAIL"),
]
SPANS_PER_REQUEST = TRACES_PER_REQUEST * len(STAGES)
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
GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
RETRYABLE_HTTP = {"429", "502", "503", "504"}
RETRYABLE_GRPC = {"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "ABORTED"}


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


def make_request(seed: int) -> tuple[bytes, list[bytes]]:
    """One encoded ExportTraceServiceRequest and the ids it contains (for stamping)."""
    rng = random.Random(seed)
    spans, ids = [], []
    now = time.time_ns()
    for t in range(TRACES_PER_REQUEST):
        trace_id = rng.randbytes(16)
        root = rng.randbytes(8)
        ids += [trace_id, root]
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
            span_id = root if i == 0 else rng.randbytes(8)
            if i:
                ids.append(span_id)
            spans.append(
                trace_pb2.Span(
                    trace_id=trace_id,
                    span_id=span_id,
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
    return req.SerializeToString(), ids


@dataclass(frozen=True)
class Template:
    """An encoded request and the offsets of every id byte string in it."""

    body: bytes
    offsets: tuple[int, ...]

    @classmethod
    def build(cls, seed: int) -> Template:
        body, ids = make_request(seed)
        offsets = sorted({m.start() for i in ids for m in re.finditer(re.escape(i), body)})
        return cls(body, tuple(offsets))

    def stamp(self, tag: int) -> bytes:
        """A copy whose ids all start with ``tag`` (4 bytes): unique per send, parents kept."""
        out = bytearray(self.body)
        prefix = tag.to_bytes(4, "big")
        for off in self.offsets:
            out[off : off + 4] = prefix
        return bytes(out)


def templates(n: int = 8) -> list[Template]:
    return [Template.build(seed) for seed in range(n)]


@dataclass
class SenderResult:
    codes: Counter = field(default_factory=Counter)  # every reply: HTTP status or gRPC code name
    acked_spans: int = 0  # spans in 2xx/OK replies, minus partial-success rejections
    acked_requests: int = 0
    latencies: list[float] = field(default_factory=list)  # per acknowledged request, retries included
    gave_up: int = 0  # requests not acknowledged before the deadline

    def merge(self, other: SenderResult) -> None:
        self.codes.update(other.codes)
        self.acked_spans += other.acked_spans
        self.acked_requests += other.acked_requests
        self.latencies += other.latencies
        self.gave_up += other.gave_up


def _rejected(reply: bytes) -> int:
    if not reply:
        return 0
    resp = trace_service_pb2.ExportTraceServiceResponse.FromString(reply)
    return resp.partial_success.rejected_spans


class _Conn:
    """One client connection; ``send`` returns (code, retry_after seconds or None, reply bytes)."""

    def __init__(self, transport: str, port: int, path: str, timeout: float):
        self.transport, self.port, self.path, self.timeout = transport, port, path, timeout
        self._open()

    def _open(self):
        if self.transport == "http":
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        else:
            import grpc

            self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
            self.export = self.channel.unary_unary(GRPC_METHOD)

    def send(self, body: bytes) -> tuple[str, float | None, bytes]:
        if self.transport == "http":
            try:
                self.conn.request("POST", self.path, body, {"Content-Type": "application/x-protobuf"})
                resp = self.conn.getresponse()
                reply = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                self.conn.close()
                self._open()
                return type(exc).__name__, None, b""
            retry_after = resp.getheader("Retry-After")
            return str(resp.status), float(retry_after) if retry_after else None, reply
        import grpc

        try:
            return "OK", None, self.export(body, timeout=self.timeout)
        except grpc.RpcError as exc:
            return exc.code().name, None, b""


def _send_loop(transport, port, path, tmpl, seconds, rate, retry, timeout, tag0, result, lock):
    conn = _Conn(transport, port, path, timeout)
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    n = 0
    while time.monotonic() < deadline:
        if rate:
            next_at += 1 / rate
            time.sleep(max(0.0, next_at - time.monotonic()))
        body = tmpl[n % len(tmpl)].stamp(tag0 + n)
        n += 1
        t0 = time.perf_counter()
        backoff = 0.1
        while True:
            code, retry_after, reply = conn.send(body)
            with lock:
                result.codes[code] += 1
            if code in ("200", "OK"):
                with lock:
                    result.acked_requests += 1
                    result.acked_spans += SPANS_PER_REQUEST - _rejected(reply)
                    result.latencies.append(time.perf_counter() - t0)
                break
            # HTTP transport errors (timeouts, resets) come back as exception names: retried too
            retryable = (
                code in RETRYABLE_HTTP or code in RETRYABLE_GRPC or not (code.isdigit() or code.isupper())
            )
            if not (retry and retryable) or time.monotonic() >= deadline:
                with lock:
                    result.gave_up += 1
                break
            # OTel exporters: honour Retry-After, else exponential backoff (capped here to keep the storm up)
            time.sleep(min(retry_after if retry_after is not None else backoff, 5.0))
            backoff = min(backoff * 2, 5.0)


def sender(
    transport: str,
    port: int,
    seconds: float,
    out: mp.Queue,
    index: int,
    *,
    threads: int = 1,
    rate: float = 0.0,
    retry: bool = False,
    timeout: float = 30.0,
    path: str = "/v1/traces",
) -> None:
    """A load process: ``threads`` connections, each closed-loop or paced at ``rate`` requests/s."""
    tmpl = templates()
    result, lock = SenderResult(), threading.Lock()
    workers = [
        threading.Thread(
            target=_send_loop,
            args=(
                transport,
                port,
                path,
                tmpl,
                seconds,
                rate,
                retry,
                timeout,
                ((index << 6) | t) << 20,
                result,
                lock,
            ),
        )
        for t in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put(result)


def run_senders(
    n: int, transport: str, port: int, seconds: float, sample, *, first: int = 0, **kw
) -> tuple[SenderResult, float]:
    """Start ``n`` sender processes, call ``sample()`` every 0.2 s while they run; merged result, wall s.

    Ids are tagged by sender index (``first`` .. ``first + n - 1``, < 64), connection (< 64) and
    send count (< 2**20): phases of one run against one store must not share sender indices."""
    out: mp.Queue = mp.Queue()
    procs = [
        mp.Process(target=sender, args=(transport, port, seconds, out, first + i), kwargs=kw)
        for i in range(n)
    ]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = []
    while len(results) < n:
        sample()
        try:
            results.append(out.get(timeout=0.2))
        except Exception:  # queue.Empty
            if not any(p.is_alive() for p in procs) and out.empty():
                break
    wall = time.monotonic() - t0
    for p in procs:
        p.join()
    merged = SenderResult()
    for r in results:
        merged.merge(r)
    return merged, wall


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss(ps: psutil.Process) -> int:
    """Resident bytes of a process and all its children (pool workers, uvicorn, ...)."""
    total = 0
    for p in [ps, *ps.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def tree_cpu(ps: psutil.Process) -> float:
    total = 0.0
    for p in [ps, *ps.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += sum(p.cpu_times()[:2])
    return total


def wait_http(url: str, seconds: float = 120) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
