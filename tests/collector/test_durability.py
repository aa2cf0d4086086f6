"""Acknowledged means durable: kill -9 under load, restart, every acknowledged span exactly once."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.conftest import wait_until

SPANS_PER_REQUEST = 50


def trace_id_of(sender: int, seq: int) -> bytes:
    return (sender + 1).to_bytes(8, "big") + seq.to_bytes(8, "big")  # never all zeros


def request_bytes(sender: int, seq: int) -> bytes:
    trace_id = trace_id_of(sender, seq)
    spans = [
        trace_pb2.Span(
            trace_id=trace_id,
            span_id=(i + 1).to_bytes(8, "big"),
            name=f"s{sender}-{seq}-{i}",
            start_time_unix_nano=1_764_050_000_000_000_000 + seq,
            end_time_unix_nano=1_764_050_000_100_000_000 + seq,
            attributes=[{"key": "input.value", "value": {"string_value": "x" * 200}}],
        )
        for i in range(SPANS_PER_REQUEST)
    ]
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=spans)])]
    )
    return request.SerializeToString()


def sender_loop(endpoint: str, sender: int, acked: list[str], stop: threading.Event) -> None:
    seq = 0
    while not stop.is_set():
        req = urllib.request.Request(
            f"{endpoint}/v1/traces",
            data=request_bytes(sender, seq),
            headers={"Content-Type": "application/x-protobuf"},
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                if resp.status == 200:
                    acked.append(trace_id_of(sender, seq).hex())
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return  # the collector died under us: whatever was not acknowledged may be lost
        seq += 1


def test_kill_9_under_load_loses_nothing_acknowledged(collector_factory, tmp_path):
    data = tmp_path / "data"
    rounds, all_acked = 3, []
    for round_no in range(rounds):
        c = collector_factory(data)
        acked: list[str] = []
        stop = threading.Event()
        senders = [
            threading.Thread(target=sender_loop, args=(c.http_endpoint, round_no * 10 + k, acked, stop))
            for k in range(4)
        ]
        for t in senders:
            t.start()
        wait_until(lambda acked=acked: len(acked) >= 40, timeout=60, what="40 acknowledged requests")
        c.kill()  # mid-load: requests are in flight, the WAL has an open segment
        stop.set()
        for t in senders:
            t.join(10)
        all_acked += acked
    c = collector_factory(data)  # restart: replays the WAL left by the last kill
    expected_traces = set(all_acked)
    assert len(expected_traces) == len(all_acked)
    stored = c.sql("SELECT trace_id, count(*) FROM spans GROUP BY trace_id")
    per_trace = dict(stored)
    missing = expected_traces - per_trace.keys()
    assert not missing, f"{len(missing)} acknowledged requests lost"
    # exactly once: no span appears twice, for acknowledged and unacknowledged-but-stored requests alike
    assert all(n == SPANS_PER_REQUEST for n in per_trace.values())
    assert c.scalar("SELECT count(*) FROM spans") == c.scalar(
        "SELECT count(DISTINCT span_id || trace_id) FROM spans"
    )


def test_crash_loop_20_kills_loses_nothing_and_replays_exactly_once(collector_factory, tmp_path):
    """20 kill -9s at seeded random moments under load (bench/crash_loop.py is the long soak)."""
    from tests.collector.crash_loop import CHURN_TOML, crash_loop

    data, config = tmp_path / "data", tmp_path / "churn.toml"
    config.write_text(CHURN_TOML)
    report = crash_loop(
        lambda: collector_factory(data, "--config", str(config)),
        data,
        kills=20,
        seed=9,
        senders=2,
        max_acks=20,
    )
    print(f"\ncrash loop: {report}")
    assert report.kills == 20 and report.acked_requests > 100
    assert report.lost == 0
    assert report.duplicated_spans == 0
    assert report.unreadable_parquet == 0 and report.parquet_files > 0
