"""Bad input gets the right OTLP/HTTP status and a message; valid items are kept (spine must-show 4)."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request

import grpc
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

TRACE = "5b8efff798038103d269b633813fc60c"


def post(collector, path, body: bytes, content_type="application/x-protobuf", **headers):
    req = urllib.request.Request(
        f"{collector.http_endpoint}{path}",
        data=body,
        method="POST",
        headers={"Content-Type": content_type, **headers},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def span_json(span_id: str, name: str = "op", trace_id: str = TRACE):
    return {"traceId": trace_id, "spanId": span_id, "name": name, "kind": 1,
            "startTimeUnixNano": "1764050000000000000", "endTimeUnixNano": "1764050000250000000"}  # fmt: skip


def json_request(*spans):
    return json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "json-svc"}}]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": list(spans)}]}]}).encode()  # fmt: skip


def test_json_post_with_hex_ids_enum_names_and_gzip(collector):
    body = json_request(
        span_json("eee19b7ec3c1b174", "first"),
        {**span_json("eee19b7ec3c1b175", "second"), "kind": "SPAN_KIND_SERVER"},
    )
    status, reply, _ = post(collector, "/v1/traces", body, "application/json")
    assert status == 200, reply
    status, _, _ = post(collector, "/v1/traces", gzip.compress(json_request(span_json("eee19b7ec3c1b176", "third"))),
                        "application/json", **{"Content-Encoding": "gzip"})  # fmt: skip
    assert status == 200
    collector.wait_for("SELECT count(*) FROM spans", 3)
    assert collector.sql(
        "SELECT name, trace_id, span_id, span_kind, duration_ms FROM spans ORDER BY name"
    ) == [
        ("first", TRACE, "eee19b7ec3c1b174", "INTERNAL", 250.0),
        ("second", TRACE, "eee19b7ec3c1b175", "SERVER", 250.0),
        ("third", TRACE, "eee19b7ec3c1b176", "INTERNAL", 250.0),
    ]


def test_partial_success_keeps_valid_spans(collector):
    body = json_request(
        span_json("aaaaaaaaaaaaaaa1", "good-1"),
        span_json("abcd", "bad-span-id"),  # wrong length
        span_json("aaaaaaaaaaaaaaa2", ""),  # missing name
        span_json("aaaaaaaaaaaaaaa3", "bad-trace", trace_id="zz"),  # not hex
        span_json("aaaaaaaaaaaaaaa4", "good-2"),
    )
    status, reply, _ = post(collector, "/v1/traces", body, "application/json")
    assert status == 200
    partial = json.loads(reply)["partialSuccess"]
    assert partial["rejectedSpans"] == "3"  # int64 is a string in proto3 JSON
    assert "spans[1]: span_id must be 8 non-zero bytes" in partial["errorMessage"]
    assert "spans[2]: name is required" in partial["errorMessage"]
    collector.wait_for("SELECT count(*) FROM spans", 2)
    assert {r[0] for r in collector.sql("SELECT name FROM spans")} == {"good-1", "good-2"}


def test_partial_success_over_protobuf_and_grpc(collector):
    good = trace_pb2.Span(
        trace_id=bytes.fromhex(TRACE), span_id=b"\x01" * 8, name="pb-good", start_time_unix_nano=1
    )
    bad = trace_pb2.Span(trace_id=b"\x01\x02", span_id=b"\x02" * 8, name="pb-bad")
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=[good, bad])])]
    )
    status, reply, _ = post(collector, "/v1/traces", request.SerializeToString())
    assert status == 200
    response = trace_service_pb2.ExportTraceServiceResponse.FromString(reply)
    assert response.partial_success.rejected_spans == 1
    with grpc.insecure_channel(collector.grpc_endpoint) as channel:
        # another good span (the request holds a copy of `good`, so edit the request's own)
        request.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x03" * 8
        request.resource_spans[0].scope_spans[0].spans[0].name = "grpc-good"
        grpc_reply = trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=10)
    assert grpc_reply.partial_success.rejected_spans == 1
    collector.wait_for("SELECT count(*) FROM spans", 2)


@pytest.mark.parametrize(
    ("body", "content_type", "headers", "expected", "message"),
    [
        (b"\xff\xff\xff\x07garbage", "application/x-protobuf", {}, 400, "not a valid protobuf"),
        (b"{not json", "application/json", {}, 400, "not valid JSON"),
        (b"[1, 2]", "application/json", {}, 400, "must be an object"),
        (b'{"resourceSpans": 5}', "application/json", {}, 400, "does not match"),
        (b"hello", "text/plain", {}, 415, "unsupported content type"),
        (
            b"not gzip",
            "application/x-protobuf",
            {"Content-Encoding": "gzip"},
            400,
            "could not be decompressed",
        ),
        (b"x", "application/x-protobuf", {"Content-Encoding": "br"}, 415, "unsupported content encoding"),
    ],
)
def test_bad_requests_get_clear_errors(collector, body, content_type, headers, expected, message):
    status, reply, _ = post(collector, "/v1/traces", body, content_type, **headers)
    assert status == expected
    assert message in reply.decode(errors="replace")
    # and the collector still serves
    ok, _, _ = post(collector, "/v1/traces", json_request(span_json("bbbbbbbbbbbbbbb1")), "application/json")
    assert ok == 200


def test_error_body_is_a_status_message_in_the_request_encoding(collector):
    status, reply, _ = post(collector, "/v1/logs", b"\xff\xff\xff", "application/x-protobuf")
    assert status == 400
    decoded = status_pb2.Status.FromString(reply)
    assert decoded.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and "protobuf" in decoded.message


def test_oversized_bodies_get_413(collector_factory, tmp_path):
    (tmp_path / "small.toml").write_text(
        "[collector]\nmax_body_bytes = 2048\nmax_decompressed_bytes = 4096\n"
    )
    c = collector_factory(None, "--config", str(tmp_path / "small.toml"))
    status, reply, _ = post(c, "/v1/traces", b"\x00" * 4096)
    assert status == 413 and b"limit" in reply
    bomb = gzip.compress(b" " * 100_000)  # small on the wire, large once inflated
    status, reply, _ = post(c, "/v1/traces", bomb, "application/json", **{"Content-Encoding": "gzip"})
    assert status == 413 and b"decompressed" in reply
    assert post(c, "/v1/traces", json_request(span_json("ccccccccccccccc1")), "application/json")[0] == 200


def test_unknown_path_and_method(collector):
    assert post(collector, "/v1/nope", b"{}", "application/json")[0] == 404
    req = urllib.request.Request(f"{collector.http_endpoint}/v1/traces", method="GET")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 405
