"""Bearer-token auth on both transports; no token off loopback means no start."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.collector.test_bad_input import json_request, post, span_json
from tests.conftest import REPO

TOKEN = "s3cret-token"


@pytest.fixture
def secured(collector_factory):
    return collector_factory(None, "--token", TOKEN)


def test_http_requires_the_bearer_token(secured):
    body = json_request(span_json("dddddddddddddd01", "authed"))
    assert post(secured, "/v1/traces", body, "application/json")[0] == 401
    assert post(secured, "/v1/traces", body, "application/json", Authorization="Bearer wrong")[0] == 401
    assert post(secured, "/v1/traces", body, "application/json", Authorization=f"Bearer {TOKEN}")[0] == 200
    secured.wait_for("SELECT count(*) FROM spans", 1)


def test_grpc_requires_the_bearer_token(secured):
    request = trace_service_pb2.ExportTraceServiceRequest()
    with grpc.insecure_channel(secured.grpc_endpoint) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Export(request, timeout=10, metadata=[("authorization", "Bearer nope")])
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stub.Export(request, timeout=10, metadata=[("authorization", f"Bearer {TOKEN}")])


def test_refuses_to_listen_off_loopback_without_a_token(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ragtrail.cli", "collector", "--data", str(tmp_path), "--host", "0.0.0.0"],
        capture_output=True, text=True, cwd=REPO, timeout=60, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode != 0
    assert "needs a bearer token" in proc.stderr
