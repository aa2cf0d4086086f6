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
# Cache flush, re-index and prompt change inside the run (cache misses of every cause), a vector DB
# outage and a GPU OOM storm (errors and fallbacks).
CHAOS = "vector_db_down@12s+4s,cache_cold@20s,corpus_update@35s,prompt_change@45s,oom@50s+4s"


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


def write_table(data_dir, name: str, table) -> None:
    """Write ``table`` into the store's layout through the collector's writer (spans get their
    trace parts)."""
    from ragtrail.collector.flush import publish
    from ragtrail.store.fs import open_store

    publish(open_store(data_dir), "test", 1, {name: table.sort_by("time")}, 122_880)


@pytest.fixture(scope="session")
def scored_store(demo_store, tmp_path_factory):
    """A copy of the demo store (read through its views) plus evaluator scores for its answers:
    groundedness in [0, 1] and citation_accuracy 0/1, seeded, lower on the canary arm."""
    import numpy as np
    import pyarrow as pa

    from ragtrail.store import db
    from ragtrail.store.schema import DERIVED, QUALITY, TABLES

    data = tmp_path_factory.mktemp("scored") / "data"
    data.mkdir()
    (data / "ragtrail.toml").write_text(SETTINGS)
    con = db.connect(demo_store.data_dir)
    try:
        for name in set(TABLES) - set(DERIVED):  # derived tables are written with their source
            view = db.BASE_VIEW_NAMES.get(name, name)
            table = con.sql(f"SELECT * FROM {view}").to_arrow_table().cast(TABLES[name])
            if table.num_rows:
                write_table(data, name, table)
        answers = con.execute(
            "SELECT trace_id, span_id, end_time, service_name, variant = 'canary' FROM spans "
            "WHERE stage = 'generate' AND status != 'ERROR' ORDER BY trace_id"
        ).fetchall()
    finally:
        con.close()
    rng = np.random.default_rng(7)
    rows = {name: [] for name in QUALITY.names}
    for trace_id, span_id, end_time, service, canary in answers:
        for metric, score in (
            ("groundedness", float(np.clip(rng.normal(0.78 if canary else 0.86, 0.1), 0, 1))),
            ("citation_accuracy", float(rng.random() < (0.9 if canary else 0.95))),
        ):
            row = dict(time=end_time, trace_id=trace_id, span_id=span_id, metric=metric, score=score,
                       label=None, evaluator="test", explanation=None, service_name=service)  # fmt: skip
            for key, value in row.items():
                rows[key].append(value)
    write_table(data, "quality", pa.table(rows, schema=QUALITY))
    return data
