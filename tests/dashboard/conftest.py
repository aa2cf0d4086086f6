"""A store filled once per session by a seeded, accelerated demo run through a real collector."""

from __future__ import annotations

import contextlib

import pytest

from ragtrail.sample_data.demo import DemoOptions, run_demo
from tests.conftest import Collector

# What the overview reads from ragtrail.toml: SLO targets and token prices.
SETTINGS = """
[slo]
availability = 0.98
latency_p95_ms = { search-rag = 1000, default = 3000 }

[prices.default]
input_per_1m = 0.5
output_per_1m = 1.5

[redaction]
ner = false  # patterns only: PII counts and user pseudonyms to show, without the NER model's cost
"""
# Cache flush, re-index and prompt change inside the run: cache misses of every cause.
CHAOS = "cache_cold@20s,corpus_update@35s,prompt_change@45s"


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    data = tmp_path_factory.mktemp("dash") / "data"
    data.mkdir()
    (data / "ragtrail.toml").write_text(SETTINGS)
    collector = Collector(data, env={"RAGTRAIL_REDACTION": "on"}).start()
    try:
        summary = run_demo(
            DemoOptions(
                endpoint=collector.grpc_endpoint, rate=10, duration=60, seed=11, realtime=False, chaos=CHAOS
            )
        )
        collector.wait_for("SELECT count(DISTINCT trace_id) FROM spans", summary.requests, timeout=60)
        collector.wait_for("SELECT count(*) > 0 FROM gpu", True, timeout=30)
        yield collector
    finally:
        with contextlib.suppress(Exception):
            collector.stop()
