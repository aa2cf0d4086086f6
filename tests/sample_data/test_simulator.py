"""The simulator without a collector: the SDK's in-memory exporters, chaos parsing, determinism."""

from __future__ import annotations

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ragtrail.sample_data.chaos import Chaos, ChaosError, parse, parse_seconds
from ragtrail.sample_data.demo import DemoOptions, run_demo
from ragtrail.sample_data.telemetry import Exporters


class MemoryMetrics(MetricExporter):
    def __init__(self) -> None:
        super().__init__()
        self.batches = []

    def export(self, metrics_data, timeout_millis: float = 0, **kwargs):
        self.batches.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 0) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 0, **kwargs) -> None:
        pass


def simulate(seed: int, duration: float = 30, **kwargs):
    spans, metrics, logs = InMemorySpanExporter(), MemoryMetrics(), InMemoryLogRecordExporter()
    summary = run_demo(
        DemoOptions(
            rate=10, duration=duration, seed=seed, realtime=False, start_ns=1_700_000_000 * 10**9, **kwargs
        ),
        exporters=lambda: Exporters(spans, metrics, logs),
    )
    return summary, spans.get_finished_spans(), metrics.batches, logs.get_finished_logs()


def test_seeded_runs_are_identical():
    def fingerprint(seed):
        _, spans, _, _ = simulate(seed)
        # Two services export through their own batch processors, so arrival order interleaves by
        # thread timing; the content, not the order of arrival, must be identical.
        ordered = sorted(spans, key=lambda s: (s.start_time, s.context.span_id))
        return [(s.context.trace_id, s.name, s.start_time, s.end_time, dict(s.attributes)) for s in ordered]

    first = fingerprint(3)
    assert first == fingerprint(3)
    assert first != fingerprint(4)


def test_spans_carry_simulated_time_not_wall_time():
    summary, spans, batches, _ = simulate(5, duration=60)
    start = 1_700_000_000 * 10**9
    assert all(start <= s.start_time <= s.end_time <= start + 70 * 10**9 for s in spans)
    # Metric points are stamped on the simulated ticks, not when the test ran.
    times = {
        p.time_unix_nano
        for batch in batches
        for rm in batch.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
    }
    assert min(times) == start + 5 * 10**9 and max(times) <= summary.end_ns
    # Every child lies inside its root, as a real trace does.
    roots = {s.context.trace_id: s for s in spans if s.parent is None}
    for s in spans:
        root = roots[s.context.trace_id]
        assert root.start_time <= s.start_time and s.end_time <= root.end_time


def test_oom_chaos_fails_generate_and_falls_back_to_a_smaller_model():
    _, spans, batches, logs = simulate(1, duration=20, chaos="oom@5s+10s")
    failed = [s for s in spans if s.attributes.get("error.type") == "out_of_memory"]
    assert failed and all(not s.status.is_ok for s in failed)
    fallbacks = [s for s in spans if s.attributes.get("ragtrail.model.quantization") == "int8"]
    assert fallbacks and all(s.attributes["ragtrail.fallback"] for s in fallbacks)
    ooms = [
        p.value
        for batch in batches
        for rm in batch.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "hw.errors"
        for p in m.data.data_points
    ]
    assert max(ooms) == len(failed)
    assert any("GPU OOM" in str(r.log_record.body) for r in logs)


def test_chaos_schedule_parsing():
    items = parse("vector_db_down@30s+20s,cache_cold@1m30s,oom@2m+15s/10m")
    assert [(i.kind, i.start_s, i.duration_s, i.every_s) for i in items] == [
        ("vector_db_down", 30, 20, None),
        ("cache_cold", 90, 0, None),
        ("oom", 120, 15, 600),
    ]
    chaos = Chaos("oom@2m+15s/10m")
    assert chaos.active("oom", 125) and not chaos.active("oom", 140) and chaos.active("oom", 725)
    assert chaos.events_between(710, 730) == ["oom"]
    chaos.trigger("vector_db_down", 10, 5)
    assert chaos.active_kinds(12) == ["vector_db_down"]
    assert parse_seconds("1h2m3s") == 3723
    for bad in ("nope@1s", "oom@10s", "cache_cold", "oom@1s+5s/3s", "oom@x+1s"):
        with pytest.raises(ChaosError):
            parse(bad)


def test_cache_misses_say_why():
    from ragtrail.sample_data.caches import TtlCache

    cache = TtlCache("context", ttl_s=10, capacity=2)
    assert cache.lookup(("doc-1",), (1,), 0.0) == (None, "cold")
    cache.put(("doc-1",), (1,), "ctx", 0.0)
    assert cache.lookup(("doc-1",), (1,), 5.0) == ("ctx", None)
    assert cache.lookup(("doc-1",), (1,), 16.0) == (None, "ttl")  # 16 s after it was stored
    cache.put(("doc-1",), (1,), "ctx", 20.0)
    assert cache.lookup(("doc-1",), (2,), 21.0) == (None, "version")  # re-indexed corpus
    cache.put(("doc-1",), (2,), "ctx2", 22.0)
    cache.flush()
    assert cache.lookup(("doc-1",), (2,), 23.0) == (None, "cold")
