"""Overload is explicit: past the WAL's memory bound the collector answers 503 + Retry-After /
UNAVAILABLE (which OTel exporters retry) and stores nothing of the refused request."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.collector.overload_run import overload_toml, sdk_overload
from tests.collector.test_bad_input import json_request, post, span_json
from tests.collector.test_durability import request_bytes


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


# --- the real OTel SDK exporters (retry on) at 5x the rate the collector admits --------------------

MAX_PENDING, SEGMENT_S = 60_000, 0.25  # the WAL admits at most ~300 spans/s of the test's spans


def test_sdk_exporters_under_5x_overload_deliver_every_span_exactly_once(collector_factory, tmp_path):
    """bench/overload_sdk.py is the long variant."""
    config = tmp_path / "overload.toml"
    config.write_text(overload_toml(MAX_PENDING, SEGMENT_S))
    c = collector_factory(None, "--config", str(config))
    r = sdk_overload(c, seconds=1.5, factor=5, max_pending_bytes=MAX_PENDING, segment_seconds=SEGMENT_S)
    print(f"\noverload: {r.line()}")
    assert r.factor >= 3, "the load generator could not overload the collector"
    assert r.gave_up == 0, f"the SDK gave up on {r.gave_up} spans"
    assert r.exported == r.created == r.stored == r.distinct  # every span sent is stored, none twice
    # The collector did refuse (503 + Retry-After / UNAVAILABLE + RetryInfo), and the exporters retried.
    assert r.refused > 0 and sum(r.retries.values()) > 0
    # Bounded: the WAL holds <= 60 KB and admission bounds bytes in flight; what RSS gains is warm-up
    # (allocator arenas, Arrow pools). bench/overload_sdk.py shows it flat over a minute.
    assert max(r.rss_quarters) - r.rss_baseline < 150 * 1024 * 1024, "collector memory grew too much"
