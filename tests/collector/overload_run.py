"""Real OTel SDK exporters (retry on) against a collector held to a small admitted rate, offered a
multiple of it. Shared by tests/collector/test_overload.py (a 1.5 s burst in CI) and
bench/overload_sdk.py (a long run). Spans are paced to ``factor`` x the rate the WAL bound admits
(``max_pending_bytes`` per ``segment_seconds``), the SDK's own queue never drops, and every span the
exporters report, give up on and the store holds is counted; collector RSS is sampled throughout.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field

import psutil
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from ragtrail.collector.encoding import Format
from ragtrail.collector.pipeline import process_export
from tests.conftest import Collector, wait_until

EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
)


def overload_toml(max_pending_bytes: int, segment_seconds: float) -> str:
    return f"[wal]\nmax_pending_bytes = {max_pending_bytes}\nsegment_seconds = {segment_seconds}\n"


@dataclass
class OverloadReport:
    sustainable: float = 0.0  # spans/s the WAL bound admits at most
    offered: float = 0.0  # spans/s the application created
    created: int = 0
    exported: int = 0  # the SDK reported success
    gave_up: int = 0  # the SDK reported failure after its retries
    stored: int = 0
    distinct: int = 0
    refused: int = 0  # the collector's own count of 503 / UNAVAILABLE replies
    retries: dict = field(default_factory=dict)  # the exporters' transient-error warnings by code
    rss_baseline: int = 0
    rss_quarters: list[int] = field(default_factory=list)  # peak RSS in each quarter of the run

    @property
    def factor(self) -> float:
        return self.offered / self.sustainable

    def line(self) -> str:
        mib = [q >> 20 for q in self.rss_quarters]
        return (
            f"sustainable<={self.sustainable:.0f} spans/s offered={self.offered:.0f} spans/s "
            f"({self.factor:.1f}x) created={self.created} exported={self.exported} gave_up={self.gave_up} "
            f"stored={self.stored} distinct={self.distinct} refused={self.refused} retries={self.retries} "
            f"rss baseline={self.rss_baseline >> 20} MiB peak by quarter={mib} MiB"
        )


class RecordingExporter(SpanExporter):
    """Wraps an OTLP exporter; records which spans it reported as exported and which it gave up on."""

    def __init__(self, inner: SpanExporter, exported: list[str], failed: list[str]):
        self.inner, self.exported, self.failed = inner, exported, failed

    def export(self, spans):
        result = self.inner.export(spans)
        ids = [format(s.context.span_id, "016x") for s in spans]
        (self.exported if result == SpanExportResult.SUCCESS else self.failed).extend(ids)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class _ListExporter(SpanExporter):
    def __init__(self, out: list):
        self.out = out

    def export(self, spans):
        self.out.extend(spans)
        return SpanExportResult.SUCCESS


class TransientErrors(logging.Handler):
    """Counts the exporters' own retry warnings: HTTP 503 and gRPC UNAVAILABLE / RESOURCE_EXHAUSTED."""

    def __init__(self):
        super().__init__()
        self.counts: collections.Counter = collections.Counter()

    def emit(self, record):
        message = record.getMessage()
        for code in ("Service Unavailable", "UNAVAILABLE", "RESOURCE_EXHAUSTED", "Too Many Requests"):
            if message.startswith("Transient error") and code in message:
                self.counts[code] += 1


def make_span(tracer, i: int) -> None:
    with tracer.start_as_current_span(
        "generate", attributes={"gen_ai.operation.name": "chat", "seq": i, "input.value": "q" * 160}
    ):
        pass


def bytes_per_span() -> float:
    """WAL bytes one such span costs, so the offered rate can be set against the admitted rate."""
    spans: list = []
    provider = TracerProvider(resource=Resource.create({"service.name": "overload"}))
    provider.add_span_processor(SimpleSpanProcessor(_ListExporter(spans)))
    for i in range(100):
        make_span(provider.get_tracer("overload"), i)
    body = encode_spans(spans).SerializeToString()
    return len(process_export("traces", body, Format.PROTOBUF, None, time.time_ns(), 1 << 26).payload) / 100


def sdk_overload(
    c: Collector,
    *,
    seconds: float,
    factor: float,
    max_pending_bytes: int,
    segment_seconds: float,
    exporters: int = 6,
    batch: int = 32,
) -> OverloadReport:
    """Offer ``factor`` x the admitted rate for ``seconds`` through ``exporters`` SDK pipelines (half
    OTLP/HTTP, half OTLP/gRPC), flush them all, and report. ``c`` runs with ``overload_toml(...)``."""
    r = OverloadReport(sustainable=max_pending_bytes / segment_seconds / bytes_per_span())
    transient = TransientErrors()
    for name in EXPORTER_LOGGERS:
        logging.getLogger(name).addHandler(transient)
    exported: list[str] = []
    failed: list[str] = []
    providers = []
    for k in range(exporters):
        inner = (
            HttpSpanExporter(endpoint=f"{c.http_endpoint}/v1/traces", timeout=120)
            if k < exporters // 2
            else GrpcSpanExporter(endpoint=c.grpc_endpoint, insecure=True, timeout=120)
        )
        provider = TracerProvider(resource=Resource.create({"service.name": f"overload-{k}"}))
        provider.add_span_processor(
            BatchSpanProcessor(
                RecordingExporter(inner, exported, failed),
                max_queue_size=10_000_000,  # the SDK itself must not drop: we test the collector
                max_export_batch_size=batch,  # small requests, so several fit under the WAL bound
                schedule_delay_millis=50,
            )
        )
        providers.append(provider)
    tracers = [p.get_tracer("overload") for p in providers]

    rss: list[int] = []
    proc = psutil.Process(c.proc.pid)
    stop = threading.Event()

    def sample_rss():
        while not stop.wait(0.05):
            rss.append(proc.memory_info().rss)

    sampler = threading.Thread(target=sample_rss)
    r.rss_baseline = proc.memory_info().rss
    sampler.start()
    offered_rate = factor * r.sustainable
    t0 = time.monotonic()
    try:
        while (elapsed := time.monotonic() - t0) < seconds:
            due = int(offered_rate * elapsed)  # paced to the offered rate, never above it
            while r.created < due:
                make_span(tracers[r.created % len(tracers)], r.created)
                r.created += 1
        r.offered = r.created / (time.monotonic() - t0)
        for p in providers:
            p.force_flush(600_000)
            p.shutdown()
    finally:
        stop.set()
        sampler.join()
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).removeHandler(transient)
    r.exported, r.gave_up = len(exported), len(failed)
    assert len(set(exported)) == len(exported), "the SDK exported a span twice"
    wait_until(
        lambda: c.scalar("SELECT count(*) FROM spans") >= r.exported, timeout=60, what="exported spans"
    )
    r.stored = c.scalar("SELECT count(*) FROM spans")
    r.distinct = c.scalar("SELECT count(DISTINCT span_id) FROM spans")
    r.refused = int(c.health()["refused"])
    r.retries = dict(transient.counts)
    r.rss_quarters = [max(rss[i * len(rss) // 4 : (i + 1) * len(rss) // 4] or [0]) for i in range(4)]
    return r
