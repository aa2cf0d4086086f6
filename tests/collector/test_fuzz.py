"""Seeded mutation fuzzing of OTLP payloads through the pure pipeline, and a sample over HTTP.

Any outcome but a decoded batch or a permanent client error (400/413/415) would be a bug: a crash
becomes a 500 that OTel exporters retry forever.
"""

from __future__ import annotations

import json
import random

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2

from ragtrail.collector import rows
from ragtrail.collector.encoding import Format
from ragtrail.collector.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from ragtrail.collector.pipeline import process_export
from tests.collector.test_bad_input import json_request, post, span_json
from tests.collector.test_durability import request_bytes

CLIENT_ERRORS = (BadRequest, PayloadTooLarge, UnsupportedMediaType)


def seeds() -> dict[str, list[bytes]]:
    metric = metrics_pb2.Metric(
        name="m",
        gauge=metrics_pb2.Gauge(data_points=[metrics_pb2.NumberDataPoint(time_unix_nano=5, as_double=1.5)]),
    )
    metrics = metrics_service_pb2.ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(scope_metrics=[metrics_pb2.ScopeMetrics(metrics=[metric])])
        ]
    )
    record = logs_pb2.LogRecord(
        time_unix_nano=5, severity_number=9, trace_id=b"\x01" * 16, span_id=b"\x02" * 8
    )
    record.body.string_value = "hello"
    logs = logs_service_pb2.ExportLogsServiceRequest(
        resource_logs=[logs_pb2.ResourceLogs(scope_logs=[logs_pb2.ScopeLogs(log_records=[record])])]
    )
    return {
        "traces": [request_bytes(1, 1)[:4000], json_request(span_json("0102030405060708"))],
        "metrics": [metrics.SerializeToString()],
        "logs": [logs.SerializeToString()],
    }


def mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        pos = rng.randrange(len(buf)) if buf else 0
        if op < 0.4 and buf:
            buf[pos] = rng.randrange(256)
        elif op < 0.6:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op < 0.8 and buf:
            del buf[pos : pos + rng.randint(1, 16)]
        else:
            buf += buf[rng.randrange(len(buf)) :] if buf else b"\x00"
    return bytes(buf)


def mutate_json(rng: random.Random, doc):
    """Structure-aware: swap values for other types, keeping the JSON valid."""
    if isinstance(doc, dict):
        return {k: (mutate_json(rng, v) if rng.random() < 0.9 else rng.choice([None, 1, "x", [], {}, -1, 1e300, "zz"]))
                for k, v in doc.items()}  # fmt: skip
    if isinstance(doc, list):
        return [mutate_json(rng, v) for v in doc]
    return doc if rng.random() < 0.7 else rng.choice([None, True, -5, "ff", 3.5, [], {}, "1" * 40])


def test_10k_mutated_payloads_never_crash_the_pipeline():
    rng = random.Random(20261125)
    outcomes = {"ok": 0, "client_error": 0}
    for signal, bodies in seeds().items():
        for i in range(5000 if signal == "traces" else 2500):
            seed = bodies[i % len(bodies)]
            if seed.startswith(b"{"):
                body, fmt = json.dumps(mutate_json(rng, json.loads(seed))).encode(), Format.JSON
            else:
                body, fmt = mutate(rng, seed), Format.PROTOBUF
            try:
                result = process_export(signal, body, fmt, None, 1, 1 << 20)
            except CLIENT_ERRORS:
                outcomes["client_error"] += 1
                continue
            if result.payload is not None:
                rows.decode_payload(result.payload)  # what reaches the WAL must replay
            outcomes["ok"] += 1
    assert sum(outcomes.values()) == 10_000
    assert outcomes["ok"] > 500 and outcomes["client_error"] > 500  # both paths were exercised


def test_mutated_payloads_over_http_get_no_5xx(collector):
    rng = random.Random(7)
    bodies = seeds()["traces"]
    for i in range(200):
        seed = bodies[i % 2]
        content_type = "application/json" if seed.startswith(b"{") else "application/x-protobuf"
        body = (
            json.dumps(mutate_json(rng, json.loads(seed))).encode()
            if seed.startswith(b"{")
            else mutate(rng, seed)
        )
        status = post(collector, "/v1/traces", body, content_type)[0]
        assert status in (200, 400), (i, status)
    assert collector.ready()
