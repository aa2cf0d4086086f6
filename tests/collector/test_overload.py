"""Overload is explicit: past the WAL's memory bound the collector answers 503 + Retry-After /
UNAVAILABLE (which OTel exporters retry) and stores nothing of the refused request."""

from __future__ import annotations

import collections
import logging
import threading
import time

import grpc
import psutil
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
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
from tests.collector.test_bad_input import json_request, post, span_json
from tests.collector.test_durability import request_bytes
from tests.conftest import wait_until


@pytest.fixture
def tight(collector_factory, tmp_path):
    config = tmp_path / "tight.toml"
    config.write_text(
        "[wal]\nmax_pending_bytes = 20000\n"
    )  # one 50-span request (~30 KB of rows) is too much
    return collector_factory(None, "--config", str(config))


def test_http_overload_is_503_with_retry_after_and_nothing_stored(tight):
    status, reply, headers = post(tight, "/v1/traces", request_bytes(0, 1))
    assert status == 503
    assert {k.lower(): v for k, v in headers.items()}.get("retry-after") in {"1", "2", "3"}  # jittered
    assert b"retry later" in reply
    assert (
        post(tight, "/v1/traces", json_request(span_json("eeeeeeeeeeeeee01", "small")), "application/json")[0]
        == 200
    )
    tight.wait_for("SELECT count(*) FROM spans", 1)
    assert tight.sql("SELECT name FROM spans") == [("small",)]


def test_grpc_overload_is_unavailable(tight):
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(request_bytes(0, 2))
    with grpc.insecure_channel(tight.grpc_endpoint) as channel, pytest.raises(grpc.RpcError) as err:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


# --- the real OTel SDK exporters (retry on) against a collector held to a small sustainable rate ---

OVERLOAD_TOML = "[wal]\nmax_pending_bytes = 60000\nsegment_seconds = 0.25\n"  # <=240 KB/s admitted
OVERLOAD_FACTOR = 5
BURST_SECONDS = 1.5


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


def bytes_per_span() -> float:
    """WAL bytes one test span costs, so the offered rate can be set against the admitted rate."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    exported: list = []
    provider = TracerProvider(resource=Resource.create({"service.name": "overload"}))
    provider.add_span_processor(SimpleSpanProcessor(_ListExporter(exported)))
    tracer = provider.get_tracer("overload")
    for i in range(100):
        make_span(tracer, i)
    body = encode_spans(exported).SerializeToString()
    return len(process_export("traces", body, Format.PROTOBUF, None, time.time_ns(), 1 << 26).payload) / 100


class _ListExporter(SpanExporter):
    def __init__(self, out: list):
        self.out = out

    def export(self, spans):
        self.out.extend(spans)
        return SpanExportResult.SUCCESS


def make_span(tracer, i: int) -> None:
    with tracer.start_as_current_span(
        "generate", attributes={"gen_ai.operation.name": "chat", "seq": i, "input.value": "q" * 160}
    ):
        pass


def test_sdk_exporters_under_5x_overload_deliver_every_span_exactly_once(collector_factory, tmp_path):
    config = tmp_path / "overload.toml"
    config.write_text(OVERLOAD_TOML)
    c = collector_factory(None, "--config", str(config))
    sustainable = 60_000 / 0.25 / bytes_per_span()  # spans/s: the WAL admits at most this
    offered_rate = OVERLOAD_FACTOR * sustainable

    transient = TransientErrors()
    for name in (
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "opentelemetry.exporter.otlp.proto.grpc.exporter",
    ):
        logging.getLogger(name).addHandler(transient)
    exported: list[str] = []
    failed: list[str] = []
    providers = []
    for k in range(6):  # 3 OTLP/HTTP + 3 OTLP/gRPC exporters, each with its own batch processor
        inner = (
            HttpSpanExporter(endpoint=f"{c.http_endpoint}/v1/traces", timeout=120)
            if k < 3
            else GrpcSpanExporter(endpoint=c.grpc_endpoint, insecure=True, timeout=120)
        )
        provider = TracerProvider(resource=Resource.create({"service.name": f"overload-{k}"}))
        provider.add_span_processor(
            BatchSpanProcessor(
                RecordingExporter(inner, exported, failed),
                max_queue_size=1_000_000,  # the SDK itself must not drop: we test the collector
                max_export_batch_size=32,  # ~25 KB requests: two fit under the WAL bound
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
    sampler.start()
    baseline = proc.memory_info().rss
    created, t0 = 0, time.monotonic()
    while (elapsed := time.monotonic() - t0) < BURST_SECONDS:
        due = int(offered_rate * elapsed)  # paced to the offered rate, never above it
        while created < due:
            make_span(tracers[created % len(tracers)], created)
            created += 1
    achieved = created / (time.monotonic() - t0)
    for p in providers:
        assert p.force_flush(180_000)
        p.shutdown()
    stop.set()
    sampler.join()
    for name in (
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "opentelemetry.exporter.otlp.proto.grpc.exporter",
    ):
        logging.getLogger(name).removeHandler(transient)

    wait_until(lambda: c.scalar("SELECT count(*) FROM spans") >= len(exported), timeout=30)
    stored = c.scalar("SELECT count(*) FROM spans")
    distinct = c.scalar("SELECT count(DISTINCT span_id) FROM spans")
    health = c.health()
    peak = max(rss)
    print(
        f"\noverload: sustainable<={sustainable:.0f} spans/s offered={achieved:.0f} spans/s "
        f"({achieved / sustainable:.1f}x) spans={created} stored={distinct} gave_up={len(failed)} "
        f"refusals={health['refused']} exporter retries={dict(transient.counts)} "
        f"rss baseline={baseline >> 20} MiB peak={peak >> 20} MiB "
        f"by quarter={[max(rss[i * len(rss) // 4 : (i + 1) * len(rss) // 4]) >> 20 for i in range(4)]}"
    )
    assert achieved >= 3 * sustainable, "the load generator could not overload the collector"
    assert not failed, f"the SDK gave up on {len(failed)} spans"
    assert sorted(exported) == sorted(set(exported)) and len(exported) == created
    assert stored == distinct == created  # every span the SDK sent is stored, none twice
    # The collector did refuse (503 + Retry-After / UNAVAILABLE + RetryInfo), and the exporters retried.
    assert int(health["refused"]) > 0 and sum(transient.counts.values()) > 0
    quarters = [rss[i * len(rss) // 4 : (i + 1) * len(rss) // 4] for i in range(4)]
    assert peak - baseline < 200 * 1024 * 1024, "collector memory grew too much"
    # Warm-up (first batches, the quality pass's first read) may step RSS up early; bounded means
    # flat afterwards: the second half of the storm adds no more than noise.
    assert max(quarters[3]) <= max(quarters[1]) + 16 * 1024 * 1024, "memory still growing: not bounded"
