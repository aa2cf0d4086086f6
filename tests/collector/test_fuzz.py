"""Seeded mutation fuzzing of OTLP payloads (traces, metrics, logs; protobuf and JSON; gzip), in
process through the pure pipeline for the bulk and over HTTP to the real collector for a share.

Any outcome but a decoded batch or a permanent client error (400/413/415) would be a bug: a crash
becomes a 500 that OTel exporters retry forever. Partial success is checked separately: requests
mixing valid and invalid items store exactly the valid ones and count the rest as rejected.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import time

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from ragtrail.collector import encoding, rows
from ragtrail.collector.encoding import Format
from ragtrail.collector.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from ragtrail.collector.pipeline import process_export
from tests.collector.test_bad_input import post
from tests.collector.test_durability import request_bytes

CLIENT_ERRORS = (BadRequest, PayloadTooLarge, UnsupportedMediaType)
PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}
SLOW_S = 2.0  # no single payload may take this long: a hang, not a slow path
T0 = 1_764_050_000_000_000_000


def metrics_request() -> metrics_service_pb2.ExportMetricsServiceRequest:
    attrs = [{"key": "hw.id", "value": {"string_value": "gpu0"}}]
    number = [metrics_pb2.NumberDataPoint(time_unix_nano=T0, as_double=1.5, attributes=attrs)]
    metrics = [
        metrics_pb2.Metric(name="hw.gpu.utilization", unit="1", gauge=metrics_pb2.Gauge(data_points=number)),
        metrics_pb2.Metric(
            name="requests",
            sum=metrics_pb2.Sum(data_points=number, is_monotonic=True, aggregation_temporality=2),
        ),
        metrics_pb2.Metric(
            name="latency",
            histogram=metrics_pb2.Histogram(
                data_points=[
                    metrics_pb2.HistogramDataPoint(
                        time_unix_nano=T0, count=3, sum=2.5, bucket_counts=[1, 2], explicit_bounds=[1.0]
                    )
                ]
            ),
        ),
        metrics_pb2.Metric(
            name="latency.exp",
            exponential_histogram=metrics_pb2.ExponentialHistogram(
                data_points=[
                    metrics_pb2.ExponentialHistogramDataPoint(
                        time_unix_nano=T0,
                        count=2,
                        scale=1,
                        positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(
                            offset=0, bucket_counts=[1, 1]
                        ),
                    )
                ]
            ),
        ),
    ]
    return metrics_service_pb2.ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(scope_metrics=[metrics_pb2.ScopeMetrics(metrics=metrics)])
        ]
    )


def logs_request() -> logs_service_pb2.ExportLogsServiceRequest:
    record = logs_pb2.LogRecord(
        time_unix_nano=T0, severity_number=9, trace_id=b"\x01" * 16, span_id=b"\x02" * 8
    )
    record.body.string_value = "hello"
    record.attributes.add(key="k").value.string_value = "v"
    return logs_service_pb2.ExportLogsServiceRequest(
        resource_logs=[logs_pb2.ResourceLogs(scope_logs=[logs_pb2.ScopeLogs(log_records=[record])])]
    )


def to_otlp_json(message) -> bytes:
    """OTLP/JSON: protobuf JSON with hex (not base64) trace and span ids."""

    def hexify(node):
        if isinstance(node, dict):
            return {
                k: (base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") else hexify(v))
                for k, v in node.items()
            }
        return [hexify(v) for v in node] if isinstance(node, list) else node

    return json.dumps(hexify(json_format.MessageToDict(message))).encode()


def seeds() -> dict[str, list[tuple[bytes, Format]]]:
    traces = trace_service_pb2.ExportTraceServiceRequest.FromString(request_bytes(1, 1))
    del traces.resource_spans[0].scope_spans[0].spans[5:]  # five spans: small and quick to mutate
    out = {}
    for signal, message in (("traces", traces), ("metrics", metrics_request()), ("logs", logs_request())):
        out[signal] = [(message.SerializeToString(), Format.PROTOBUF), (to_otlp_json(message), Format.JSON)]
    return out


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
    return doc if rng.random() < 0.7 else rng.choice([None, True, -5, "ff", 3.5, [], {}, "1" * 40, 2**70])


def fuzzed(rng: random.Random, n: int):
    """``n`` (signal, body, format, content-encoding) cases, spread over signals, encodings, mutators."""
    all_seeds = seeds()
    for i in range(n):
        signal = ("traces", "metrics", "logs")[i % 3]
        seed, fmt = all_seeds[signal][(i // 3) % 2]
        if fmt is Format.JSON and rng.random() < 0.6:
            body = json.dumps(mutate_json(rng, json.loads(seed))).encode()
        else:
            body = mutate(rng, seed)
        encoding_ = None
        if rng.random() < 0.1:  # gzip, sometimes itself damaged
            body, encoding_ = gzip.compress(body), "gzip"
            if rng.random() < 0.3:
                body = mutate(rng, body)
        yield signal, body, fmt, encoding_


def test_10k_mutated_payloads_never_crash_or_hang_the_pipeline():
    rng = random.Random(20261125)
    outcomes = {"ok": 0, "client_error": 0}
    per_signal = dict.fromkeys(PATHS, 0)
    slowest = 0.0
    for signal, (body, fmt) in ((s, b[0]) for s, b in seeds().items()):  # warm the lazy imports first
        process_export(signal, body, fmt, None, 1, 1 << 20)
    for signal, body, fmt, content_encoding in fuzzed(rng, 10_000):
        start = time.perf_counter()
        try:
            result = process_export(signal, body, fmt, content_encoding, 1, 1 << 20)
        except CLIENT_ERRORS:
            outcomes["client_error"] += 1
        else:
            if result.payload is not None:
                rows.decode_payload(result.payload)  # what reaches the WAL must replay
            outcomes["ok"] += 1
        slowest = max(slowest, time.perf_counter() - start)
        per_signal[signal] += 1
    print(f"\nfuzz in-process: {outcomes} per signal {per_signal} slowest {slowest * 1000:.1f} ms")
    assert sum(outcomes.values()) == 10_000 and min(per_signal.values()) > 3000
    assert outcomes["ok"] > 1000 and outcomes["client_error"] > 1000  # both paths were exercised
    assert slowest < SLOW_S


def test_mutated_payloads_over_http_get_no_5xx(collector):
    rng = random.Random(7)
    statuses: dict[int, int] = {}
    for signal, body, fmt, content_encoding in fuzzed(rng, 600):
        headers = {"Content-Encoding": content_encoding} if content_encoding else {}
        status = post(collector, PATHS[signal], body, fmt.value, **headers)[0]
        statuses[status] = statuses.get(status, 0) + 1
        assert status in (200, 400, 413, 415), (signal, fmt, status)
    print(f"\nfuzz over HTTP: {statuses}")
    assert statuses.get(200, 0) > 50 and statuses.get(400, 0) > 50
    assert collector.ready()


# --- partial success: the valid items of a partly bad request are stored, the bad ones counted ------


def span(name: str, rng: random.Random, valid: bool) -> trace_pb2.Span:
    s = trace_pb2.Span(
        trace_id=rng.randbytes(15) + b"\x01", span_id=rng.randbytes(7) + b"\x01", name=name,
        start_time_unix_nano=T0, end_time_unix_nano=T0 + 1000,
    )  # fmt: skip
    if not valid:
        breakage = rng.choice(["trace_id", "span_id", "parent", "name"])
        if breakage == "trace_id":
            s.trace_id = rng.choice([b"", b"\x00" * 16, rng.randbytes(5)])
        elif breakage == "span_id":
            s.span_id = rng.choice([b"", b"\x00" * 8, rng.randbytes(9)])
        elif breakage == "parent":
            s.parent_span_id = rng.randbytes(3)
        else:
            s.name = ""
    return s


def metric(name: str, rng: random.Random, valid: bool) -> metrics_pb2.Metric:
    if valid:
        point = metrics_pb2.NumberDataPoint(time_unix_nano=T0, as_int=rng.randint(0, 99))
        return metrics_pb2.Metric(name=name, gauge=metrics_pb2.Gauge(data_points=[point]))
    if rng.random() < 0.5:
        return metrics_pb2.Metric(name=name)  # no data
    return metrics_pb2.Metric(name=name, gauge=metrics_pb2.Gauge(data_points=[metrics_pb2.NumberDataPoint()]))


def log_record(name: str, rng: random.Random, valid: bool) -> logs_pb2.LogRecord:
    r = logs_pb2.LogRecord(time_unix_nano=T0)
    r.body.string_value = name
    if not valid:
        if rng.random() < 0.5:
            r.trace_id = rng.randbytes(rng.choice([3, 15, 17]))
        else:
            r.span_id = rng.randbytes(rng.choice([1, 7, 9]))
    return r


def mixed_request(signal: str, rng: random.Random, tag: str) -> tuple[bytes, set[str], int]:
    """A request of valid and invalid items in random order: (body, names of the valid, rejected)."""
    kinds = [rng.random() < 0.6 for _ in range(rng.randint(2, 8))]
    kinds[0], kinds[-1] = True, False  # at least one of each
    rng.shuffle(kinds)
    names = [f"{tag}-{i}" for i in range(len(kinds))]
    valid = {n for n, ok in zip(names, kinds, strict=True) if ok}
    if signal == "traces":
        spans = [span(n, rng, ok) for n, ok in zip(names, kinds, strict=True)]
        request = trace_service_pb2.ExportTraceServiceRequest(
            resource_spans=[trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=spans)])]
        )
    elif signal == "metrics":
        ms = [metric(n, rng, ok) for n, ok in zip(names, kinds, strict=True)]
        request = metrics_service_pb2.ExportMetricsServiceRequest(
            resource_metrics=[
                metrics_pb2.ResourceMetrics(scope_metrics=[metrics_pb2.ScopeMetrics(metrics=ms)])
            ]
        )
    else:
        records = [log_record(n, rng, ok) for n, ok in zip(names, kinds, strict=True)]
        request = logs_service_pb2.ExportLogsServiceRequest(
            resource_logs=[logs_pb2.ResourceLogs(scope_logs=[logs_pb2.ScopeLogs(log_records=records)])]
        )
    return request.SerializeToString(), valid, len(kinds) - len(valid)


NAME_COLUMN = {"traces": ("spans", "name"), "metrics": ("metrics", "name"), "logs": ("logs", "body")}


def test_partial_success_stores_exactly_the_valid_items_in_process():
    rng = random.Random(99)
    for i in range(900):
        signal = ("traces", "metrics", "logs")[i % 3]
        body, valid, bad = mixed_request(signal, rng, f"r{i}")
        result = process_export(signal, body, Format.PROTOBUF, None, T0, 1 << 20)
        assert (result.accepted, result.rejected) == (len(valid), bad), (signal, i)
        assert result.message  # names what was rejected and why
        table, column = NAME_COLUMN[signal]
        assert set(rows.decode_payload(result.payload)[table][column].to_pylist()) == valid


def test_partial_success_over_http_and_json(collector):
    rng = random.Random(5)
    expected: dict[str, set[str]] = {s: set() for s in PATHS}
    for i in range(60):
        signal = ("traces", "metrics", "logs")[i % 3]
        body, valid, bad = mixed_request(signal, rng, f"h{i}")
        fmt = Format.JSON if i % 2 else Format.PROTOBUF
        if fmt is Format.JSON:
            body = to_otlp_json(encoding.SIGNALS[signal][0].FromString(body))
        status, reply, _ = post(collector, PATHS[signal], body, fmt.value)
        assert status == 200, reply
        response = encoding.SIGNALS[signal][1]()
        if fmt is Format.JSON:
            json_format.Parse(reply, response)
        else:
            response.ParseFromString(reply)
        assert getattr(response.partial_success, encoding.SIGNALS[signal][2]) == bad
        expected[signal] |= valid
    for signal, (table, column) in NAME_COLUMN.items():
        collector.wait_for(f"SELECT count(*) FROM {table}", len(expected[signal]))
        assert {r[0] for r in collector.sql(f"SELECT {column} FROM {table}")} == expected[signal]
