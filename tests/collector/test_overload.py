"""Overload is explicit: past the WAL's memory bound the collector answers 503 + Retry-After /
UNAVAILABLE (which OTel exporters retry) and stores nothing of the refused request."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

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
    assert {k.lower(): v for k, v in headers.items()}.get("retry-after") == "1"
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
