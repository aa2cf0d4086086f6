"""A seeded demo store for the audit and quality tests: redaction on (patterns only, for speed), so
user ids are pseudonyms, and quality scoring every second."""

from __future__ import annotations

import contextlib

import pytest

from ragtrail.sample_data.demo import DemoOptions, run_demo
from ragtrail.sample_data.service import ServiceConfig
from tests.conftest import Collector

SETTINGS = """
[redaction]
ner = false

[quality]
interval_seconds = 0.5
"""
# More wrong citations and values than the default, so every score label shows up.
SERVICE = ServiceConfig(bad_citation_share=0.1, ungrounded_share=0.1, feedback_share=0.2)
# Traces ragtrail scores: those with an answer (a response text) and a root span.
ANSWERED = "SELECT count(DISTINCT trace_id) FROM content WHERE role = 'response'"
SCORED = "SELECT count(DISTINCT trace_id) FROM quality WHERE evaluator = 'ragtrail'"


def start_demo_collector(data, settings: str = SETTINGS) -> Collector:
    data.mkdir(parents=True, exist_ok=True)
    (data / "ragtrail.toml").write_text(settings)
    return Collector(data, env={"RAGTRAIL_REDACTION": "on"}).start()


def feed(collector: Collector, seed: int, duration: float = 40, rate: float = 10):
    summary = run_demo(
        DemoOptions(endpoint=collector.grpc_endpoint, rate=rate, duration=duration, seed=seed, realtime=False,
                    gpu=False, service=SERVICE)
    )  # fmt: skip
    return summary


@pytest.fixture(scope="session")
def audit_store(tmp_path_factory):
    collector = start_demo_collector(tmp_path_factory.mktemp("audit") / "data")
    try:
        summary = feed(collector, seed=5)
        collector.wait_for("SELECT count(DISTINCT trace_id) FROM spans", summary.requests, timeout=60)
        answered = collector.scalar(ANSWERED)
        collector.wait_for(SCORED, answered, timeout=60)
        yield collector
    finally:
        with contextlib.suppress(Exception):
            collector.stop()
