"""The demo through the real OTLP exporter into a real collector; assertions are SQL over the views.

One accelerated, seeded run (two simulated minutes) feeds every check in this module.
"""

from __future__ import annotations

import contextlib

import pytest

from ragtrail.sample_data.demo import DemoOptions, run_demo
from ragtrail.sample_data.service import ServiceConfig
from tests.conftest import Collector

DURATION_S = 120
OUTAGE = (40, 20)  # vector DB down from second 40 for 20 s
CACHE_COLD_S = 85
CONFIG = ServiceConfig(canary_share=0.2, bad_citation_share=0.08)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo") / "data"
    data.mkdir()
    collector = Collector(data).start()
    try:
        summary = run_demo(
            DemoOptions(
                endpoint=collector.grpc_endpoint, rate=15, duration=DURATION_S, seed=7, realtime=False,
                chaos=f"vector_db_down@{OUTAGE[0]}s+{OUTAGE[1]}s,cache_cold@{CACHE_COLD_S}s", service=CONFIG,
            )
        )  # fmt: skip
        collector.wait_for("SELECT count(DISTINCT trace_id) FROM spans", summary.requests, timeout=60)
        yield collector, summary
    finally:
        with contextlib.suppress(Exception):
            collector.stop()


def run_second(summary, column: str = "time") -> str:
    """SQL for seconds since the run started."""
    return f"(epoch_us({column}) - {summary.start_ns // 1000}) / 1e6"


def test_every_stage_and_convention(run):
    collector, summary = run
    assert summary.requests > 1000
    stages = {r[0] for r in collector.sql("SELECT DISTINCT stage FROM spans")}
    assert {"chain", "guardrail", "cache", "embed", "retrieve", "rerank", "generate"} <= stages
    services = dict(collector.sql("SELECT service_name, count(DISTINCT trace_id) FROM spans GROUP BY 1"))
    assert set(services) == {"support-rag", "search-rag"}  # OpenInference and GenAI instrumented
    # Both conventions land in the same columns: model and tokens on every generate span.
    assert collector.scalar(
        "SELECT count(*) FROM spans WHERE stage = 'generate' AND status <> 'ERROR' "
        "AND (model IS NULL OR input_tokens IS NULL OR output_tokens IS NULL OR ttft_ms IS NULL)"
    ) == 0  # fmt: skip


def test_cache_layers_have_partial_hit_rates(run):
    collector, _ = run
    rates = dict(collector.sql(
        "SELECT cache_layer, avg(cache_hit::INT) FROM spans WHERE cache_layer IS NOT NULL GROUP BY 1"
    ))  # fmt: skip
    assert set(rates) == {"response", "context", "embedding"}
    assert all(0.05 < rate < 0.95 for rate in rates.values()), rates
    assert (
        collector.scalar("SELECT sum(cache_read_tokens) FROM spans WHERE stage = 'generate'") > 0
    )  # KV prefix


def test_models_router_and_canary(run):
    collector, _ = run
    quantizations = {
        r[0] for r in collector.sql("SELECT DISTINCT quantization FROM spans WHERE stage = 'generate'")
    }
    assert {"int4-awq", "fp16", "int4-gptq"} <= quantizations
    escalated = collector.scalar(
        "SELECT avg((route LIKE 'escalated%')::INT) FROM traces WHERE route IS NOT NULL"
    )
    assert 0.06 < escalated < 0.2
    canary = collector.scalar("SELECT avg((variant = 'canary')::INT) FROM traces WHERE variant IS NOT NULL")
    assert abs(canary - CONFIG.canary_share) < 0.03
    versions = dict(
        collector.sql(
            "SELECT variant, any_value(prompt_version) FROM traces WHERE variant IS NOT NULL GROUP BY 1"
        )
    )
    assert versions["canary"] != versions["stable"]


def test_safety_pii_refusals_rate_limits(run):
    collector, _ = run
    pii = collector.scalar(
        "SELECT count(*) FROM content WHERE role = 'prompt' AND regexp_matches(text, '[\\w.+-]+@[\\w-]+\\.[\\w.]+')"
    )
    assert pii > 50
    refused = collector.scalar(
        "SELECT count(*) FROM spans WHERE stage = 'guardrail' "
        "AND json_extract_string(attributes, '$.\"ragtrail.guardrail.outcome\"') = 'refused'"
    )
    assert refused > 10
    assert collector.scalar("SELECT count(*) FROM spans WHERE error_type = 'rate_limited'") > 10
    feedback = collector.scalar("SELECT count(*) FROM logs WHERE event_name = 'gen_ai.evaluation.result'")
    assert feedback > 20


def test_citations_to_non_retrieved_documents_at_the_configured_rate(run):
    collector, _ = run
    share = collector.scalar("""
        WITH cited AS (
            SELECT d.trace_id, d.doc_id FROM documents d JOIN spans s USING (trace_id, span_id)
            WHERE d.stage = 'cite' AND s.stage = 'generate'),
        retrieved AS (SELECT DISTINCT trace_id, doc_id FROM documents WHERE stage = 'retrieve')
        SELECT avg(outside::INT) FROM (
            SELECT c.trace_id, bool_or(r.doc_id IS NULL) AS outside
            FROM cited c LEFT JOIN retrieved r USING (trace_id, doc_id) GROUP BY 1)
    """)
    assert abs(share - CONFIG.bad_citation_share) < 0.03, share
    versions = {
        r[0] for r in collector.sql("SELECT DISTINCT doc_version FROM documents WHERE stage = 'retrieve'")
    }
    assert versions == {"v1"}


def test_vector_db_outage_shows_exactly_in_its_window(run):
    collector, summary = run
    t = run_second(summary)
    start, length = OUTAGE
    rows = collector.sql(
        f"SELECT min({t}), max({t}), count(*) FROM spans WHERE stage = 'retrieve' AND status = 'ERROR'"
    )
    first, last, errors = rows[0]
    assert errors > 20
    assert start <= first < start + 1 and start + length - 1 < last < start + length
    fallbacks_outside = collector.scalar(
        f"SELECT count(*) FROM traces WHERE fallback AND NOT ({run_second(summary)} BETWEEN {start} AND {start + length})"
    )
    assert fallbacks_outside == 0
    assert (
        collector.scalar(
            f"SELECT count(*) FROM traces WHERE fallback AND {t} BETWEEN {start} AND {start + length}"
        )
        > 20
    )


def test_cache_cold_drops_the_hit_rate(run):
    collector, summary = run
    t = run_second(summary)

    def hit_rate(a: float, b: float) -> float:
        return collector.scalar(
            f"SELECT avg(cache_hit::INT) FROM spans WHERE cache_layer IS NOT NULL AND {t} >= {a} AND {t} < {b}"
        )

    before, after = hit_rate(CACHE_COLD_S - 20, CACHE_COLD_S), hit_rate(CACHE_COLD_S, CACHE_COLD_S + 5)
    assert after < before / 2, (before, after)


def test_simulated_gpu_follows_the_load(run):
    collector, summary = run
    rows = collector.sql(
        "SELECT count(*), bool_and(simulated), min(utilization), max(utilization), max(memory_total_bytes), "
        "max(power_w) FROM gpu"
    )
    samples, simulated, lo, hi, total, power = rows[0]
    assert samples >= DURATION_S // 5 and simulated
    assert 0 <= lo < hi <= 1 and total == 80 * 1024**3 and power > 100
