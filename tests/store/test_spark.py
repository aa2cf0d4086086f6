"""Spark SQL and `ragtrail sql` give the same answers over one store written by two collectors.

The store is a shared directory (the layout Spark reads on any filesystem); pyspark runs in local
mode, one session for the module. Skipped only when pyspark is not installed (CI installs it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import threading

import pytest

from ragtrail.sample_data.demo import DemoOptions, run_demo
from ragtrail.store import layout
from ragtrail.store.fs import open_store
from tests.conftest import REPO, Collector

pytest.importorskip("pyspark")

_spec = importlib.util.spec_from_file_location("spark_check", REPO / "bench" / "spark_check.py")
spark_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(spark_check)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two collectors, two simulated services' worth of demo traffic, one shared store directory."""
    root = tmp_path_factory.mktemp("spark")
    shared = root / "store"
    collectors = [Collector(root / f"c{i}", extra_args=["--storage", str(shared)]) for i in range(2)]
    for c in collectors:
        c.data_dir.mkdir()
        c.start()
    try:
        summaries = [None, None]

        def send(i: int) -> None:
            options = DemoOptions(endpoint=collectors[i].grpc_endpoint, rate=5, duration=30, seed=i,
                                  realtime=False, gpu=False, progress=False)  # fmt: skip
            summaries[i] = run_demo(options)

        senders = [threading.Thread(target=send, args=(i,)) for i in range(2)]
        for t in senders:
            t.start()
        for t in senders:
            t.join(120)
        requests = sum(s.requests for s in summaries)
        collectors[0].data_dir = shared  # Collector.wait_for reads its data_dir: point it at the store
        collectors[0].wait_for("SELECT count(DISTINCT trace_id) FROM spans", requests, timeout=60)
        yield str(shared)
    finally:
        for c in collectors:
            with contextlib.suppress(Exception):
                c.stop()


@pytest.fixture(scope="module")
def spark():
    session = spark_check.spark_session("ragtrail-test")
    yield session
    session.stop()


def test_spark_and_ragtrail_sql_agree(store, spark):
    writers = {layout.file_writer(p.rsplit("/", 1)[1]) for p in open_store(store).published("spans")}
    assert len(writers) == 2  # the union of both collectors' files
    spark_out = spark_check.run_spark(spark, store)
    duck_out = spark_check.run_duckdb(store)
    for name in spark_check.QUESTIONS:
        spark_rows, duck_rows = spark_out[name][0], duck_out[name][0]
        assert len(duck_rows) >= 3, f"{name}: too little data to compare ({duck_rows})"
        assert spark_check.same(spark_rows, duck_rows), f"{name}: Spark {spark_rows} != DuckDB {duck_rows}"
