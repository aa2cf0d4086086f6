"""Bearer-token auth on both transports; no token off loopback means no start; TLS with the SDK."""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
import sys
import urllib.error
import urllib.request

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.collector.test_bad_input import json_request, post, span_json
from tests.collector.test_durability import request_bytes
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


def test_refused_requests_store_nothing(secured):
    """401 / UNAUTHENTICATED bodies are never decoded, let alone written."""
    for name, headers in [("no-token", {}), ("bad-token", {"Authorization": "Bearer nope"}),
                          ("bad-scheme", {"Authorization": f"Basic {TOKEN}"})]:  # fmt: skip
        body = json_request(span_json("dddddddddddddd02", name))
        assert post(secured, "/v1/traces", body, "application/json", **headers)[0] == 401
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(request_bytes(5, 1))
    with grpc.insecure_channel(secured.grpc_endpoint) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        for metadata in ([], [("authorization", "Bearer nope")]):
            with pytest.raises(grpc.RpcError) as err:
                stub.Export(request, timeout=10, metadata=metadata)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    body = json_request(span_json("dddddddddddddd03", "the-only-one"))
    assert post(secured, "/v1/traces", body, "application/json", Authorization=f"Bearer {TOKEN}")[0] == 200
    secured.wait_for("SELECT count(*) FROM spans", 1)
    assert secured.sql("SELECT name FROM spans") == [("the-only-one",)]


def self_signed(tmp_path):
    """A self-signed certificate for 127.0.0.1 (IP SAN) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ragtrail-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_tls_and_token_with_the_otel_sdk_exporters(collector_factory, tmp_path, monkeypatch):
    # requests lets these variables override the exporter's certificate_file (psf/requests#3829)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    cert, key = self_signed(tmp_path)
    c = collector_factory(
        None, "--token", TOKEN, "--tls-cert", str(cert), "--tls-key", str(key), ca_file=cert
    )
    auth = {"authorization": f"Bearer {TOKEN}"}
    exporters = {
        "http": HttpSpanExporter(
            endpoint=f"{c.http_endpoint}/v1/traces", certificate_file=str(cert), headers=auth, timeout=10
        ),
        "grpc": GrpcSpanExporter(
            endpoint=c.grpc_endpoint,
            credentials=grpc.ssl_channel_credentials(cert.read_bytes()),
            headers=auth,
            timeout=10,
        ),
    }
    for transport, exporter in exporters.items():
        provider = TracerProvider(resource=Resource.create({"service.name": f"tls-{transport}"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("tls").start_as_current_span(f"over-{transport}"):
            pass
        provider.shutdown()
    c.wait_for("SELECT count(*) FROM spans", 2)
    assert sorted(c.sql("SELECT name FROM spans")) == [("over-grpc",), ("over-http",)]
    # Plain text is not served on the TLS ports, and TLS without the token is still refused.
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{c.http_port}/healthz", timeout=5)
    body = json_request(span_json("dddddddddddddd04", "tls-no-token"))
    req = urllib.request.Request(
        f"{c.http_endpoint}/v1/traces", data=body, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5, context=c.ssl_context)
    assert err.value.code == 401
