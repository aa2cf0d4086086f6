"""normalize_metrics over hand-built requests: every OTLP metric kind, DCGM names, invalid points."""

from __future__ import annotations

import orjson
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.proto.resource.v1 import resource_pb2

from ragtrail.collector.normalize import normalize_metrics

T = 1_764_050_000_000_000_000


def kv(key, value):
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))


def request(*metrics):
    resource = resource_pb2.Resource(
        attributes=[kv("service.name", "dcgm-exporter"), kv("host.name", "node-9")]
    )
    return metrics_service_pb2.ExportMetricsServiceRequest(
        resource_metrics=[
            m.ResourceMetrics(resource=resource, scope_metrics=[m.ScopeMetrics(metrics=list(metrics))])
        ]
    )


def test_exponential_histogram_summary_and_dcgm():
    exp = m.Metric(
        name="rag.latency.exp",
        exponential_histogram=m.ExponentialHistogram(
            aggregation_temporality=2,
            data_points=[
                m.ExponentialHistogramDataPoint(
                    time_unix_nano=T, count=3, sum=7.5, scale=2, zero_count=1,
                    positive=m.ExponentialHistogramDataPoint.Buckets(offset=4, bucket_counts=[1, 1]),
                )
            ],
        ),
    )  # fmt: skip
    summary = m.Metric(
        name="rag.summary",
        summary=m.Summary(
            data_points=[
                m.SummaryDataPoint(
                    time_unix_nano=T, count=10, sum=50.0,
                    quantile_values=[m.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=4.0)],
                )
            ]
        ),
    )  # fmt: skip
    util = m.Metric(
        name="DCGM_FI_DEV_GPU_UTIL",
        gauge=m.Gauge(
            data_points=[m.NumberDataPoint(time_unix_nano=T, as_int=87, attributes=[kv("gpu", "0")])]
        ),
    )
    fb = m.Metric(
        name="DCGM_FI_DEV_FB_USED",
        gauge=m.Gauge(
            data_points=[m.NumberDataPoint(time_unix_nano=T, as_double=1024.0, attributes=[kv("gpu", "0")])]
        ),
    )
    empty_point = m.Metric(name="no.value", gauge=m.Gauge(data_points=[m.NumberDataPoint(time_unix_nano=T)]))
    out = normalize_metrics(request(exp, summary, util, fb, empty_point), T)

    assert out.accepted == 4 and out.rejected == 1
    assert "no.value" in out.message and "has no value" in out.message
    metrics = out.tables["metrics"]
    assert metrics["type"] == ["exponential_histogram", "summary", "gauge", "gauge"]
    assert metrics["temporality"][0] == "cumulative"
    assert metrics["buckets"][0] == {
        "scale": 2, "zero_count": 1,
        "positive": {"offset": 4, "counts": [1, 1]}, "negative": {"offset": 0, "counts": []},
    }  # fmt: skip
    assert metrics["buckets"][1] == {"quantiles": [[0.5, 4.0]]}
    gpu = out.tables["gpu"]
    assert gpu["utilization"] == [0.87, None]  # DCGM reports percent; the view stores a ratio
    assert gpu["memory_used_bytes"] == [None, 1024.0 * 1024 * 1024]  # MiB -> bytes
    assert gpu["gpu_id"] == ["0", "0"] and gpu["host"] == ["node-9", "node-9"]
    assert orjson.dumps(metrics["attributes"][2]) == b'{"gpu":"0"}'
