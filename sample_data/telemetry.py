"""OpenTelemetry SDK plumbing shared by the demo and the GPU agent: the real SDK providers with the
OTLP exporters (gRPC or HTTP), a simulation clock, seeded ids and a metric reader driven by it.

Why a clock of our own: a seeded demo must be able to produce minutes of traffic in seconds (tests,
benchmarks) as well as run in real time (``ragtrail up``). Spans take explicit start/end times from
the clock; the metric reader below collects when the simulation says so and stamps points with
simulated time, so metrics line up with the spans they describe in both modes.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, replace

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

PROTOCOLS = ("grpc", "http")
DEFAULT_ENDPOINTS = {"grpc": "127.0.0.1:4317", "http": "http://127.0.0.1:4318"}


@dataclass(frozen=True)
class Exporters:
    spans: SpanExporter
    metrics: MetricExporter
    logs: LogRecordExporter


def otlp_exporters(endpoint: str | None, protocol: str = "grpc") -> Exporters:
    """The SDK's OTLP exporters for ``endpoint`` ("host:port" or a URL); headers and TLS settings
    come from the standard OTEL_EXPORTER_OTLP_* environment variables, as with any SDK client."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    endpoint = endpoint or DEFAULT_ENDPOINTS[protocol]
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        insecure = not endpoint.startswith("https://")
        target = endpoint.split("://", 1)[-1]
        return Exporters(
            OTLPSpanExporter(endpoint=target, insecure=insecure),
            OTLPMetricExporter(endpoint=target, insecure=insecure),
            OTLPLogExporter(endpoint=target, insecure=insecure),
        )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    base = endpoint if "://" in endpoint else f"http://{endpoint}"
    base = base.rstrip("/")
    return Exporters(
        OTLPSpanExporter(endpoint=f"{base}/v1/traces"),
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics"),
        OTLPLogExporter(endpoint=f"{base}/v1/logs"),
    )


class SimClock:
    """Simulated time in Unix nanoseconds. Real time: waiting sleeps (interruptibly). Accelerated:
    waiting only moves the clock, so a run of minutes takes as long as the CPU needs."""

    def __init__(self, start_ns: int | None = None, *, realtime: bool = True) -> None:
        self.realtime = realtime
        self.start_ns = time.time_ns() if start_ns is None else start_ns
        self.now_ns = self.start_ns

    def seconds(self, t_ns: int | None = None) -> float:
        """Seconds since the start of the run."""
        return ((self.now_ns if t_ns is None else t_ns) - self.start_ns) / 1e9

    def wait_until(self, t_ns: int, stop: threading.Event) -> bool:
        """Advance to ``t_ns``; False when ``stop`` was set meanwhile."""
        if self.realtime:
            delay = (t_ns - time.time_ns()) / 1e9
            if delay > 0 and stop.wait(delay):
                return False
        self.now_ns = max(self.now_ns, t_ns)
        return not stop.is_set()


class SeededIdGenerator(IdGenerator):
    """Trace and span ids from a seeded generator, so a seeded run is reproducible to the id."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._lock = threading.Lock()

    def generate_span_id(self) -> int:
        with self._lock:
            return self._rng.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        with self._lock:
            return self._rng.getrandbits(128) or 1


class SimTimeMetricReader(MetricReader):
    """Collects when ``collect_at`` is called and stamps every point with that simulated time.

    The SDK stamps points with the wall clock at collection; in an accelerated run that would put
    all metrics of a ten-minute simulation into the few seconds it took. Cumulative points start at
    the simulated start of the run.
    """

    def __init__(self, exporter: MetricExporter, start_ns: int) -> None:
        super().__init__()
        self._exporter = exporter
        self._start_ns = start_ns
        self._stamp_ns = start_ns

    def collect_at(self, sim_ns: int) -> None:
        self._stamp_ns = sim_ns
        self.collect()

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs) -> None:
        self._exporter.export(
            restamp(metrics_data, self._start_ns, self._stamp_ns), timeout_millis=timeout_millis
        )

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        self._exporter.shutdown(timeout_millis=timeout_millis)


def restamp(data: MetricsData, start_ns: int, time_ns: int) -> MetricsData:
    """A copy of ``data`` with every point at ``time_ns`` (cumulative ones starting at ``start_ns``)."""

    def point(p):
        start = None if p.start_time_unix_nano is None else start_ns
        return replace(p, start_time_unix_nano=start, time_unix_nano=time_ns)

    def metric(m):
        return replace(m, data=replace(m.data, data_points=[point(p) for p in m.data.data_points]))

    return replace(
        data,
        resource_metrics=[
            replace(
                rm,
                scope_metrics=[
                    replace(sm, metrics=[metric(m) for m in sm.metrics]) for sm in rm.scope_metrics
                ],
            )
            for rm in data.resource_metrics
        ],
    )


class Signals:
    """One emitting service: tracer, meter and logger providers over one resource and exporter set.

    ``collect_at`` exports metrics at a simulated instant; ``flush`` pushes queued spans and logs so
    an accelerated run keeps its queues short instead of letting the batch processors drop data.
    """

    def __init__(
        self,
        resource_attrs: dict,
        exporters: Exporters,
        clock: SimClock,
        ids: IdGenerator | None = None,
    ) -> None:
        resource = Resource.create(resource_attrs)
        self.tracer_provider = (
            TracerProvider(resource=resource, id_generator=ids) if ids else TracerProvider(resource=resource)
        )
        self.tracer_provider.add_span_processor(
            BatchSpanProcessor(
                exporters.spans, max_queue_size=65536, max_export_batch_size=2048, schedule_delay_millis=500
            )
        )
        self.reader = SimTimeMetricReader(exporters.metrics, clock.start_ns)
        self.meter_provider = MeterProvider(resource=resource, metric_readers=[self.reader])
        self.logger_provider = LoggerProvider(resource=resource)
        self.logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(exporters.logs, max_queue_size=65536, schedule_delay_millis=500)
        )
        name = resource_attrs.get("service.name", "ragtrail.sample")
        self.tracer = self.tracer_provider.get_tracer("ragtrail.sample_data")
        self.meter = self.meter_provider.get_meter("ragtrail.sample_data")
        self.logger = self.logger_provider.get_logger(name)

    def collect_at(self, sim_ns: int) -> None:
        self.reader.collect_at(sim_ns)

    def flush(self) -> None:
        self.tracer_provider.force_flush()
        self.logger_provider.force_flush()

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()
