"""normalize_traces on hand-built requests: where each attribute key lands, and the key-route memo."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from ragtrail.collector import normalize


def _request(attrs: dict[str, str]) -> trace_service_pb2.ExportTraceServiceRequest:
    span = trace_pb2.Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="retrieve",
                          start_time_unix_nano=1_700_000_000_000_000_000,
                          end_time_unix_nano=1_700_000_000_500_000_000)  # fmt: skip
    for key, value in attrs.items():
        span.attributes.append(common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value)))
    request = trace_service_pb2.ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.append(span)
    return request


ATTRS = {
    "openinference.span.kind": "RETRIEVER",
    "input.value": "what is the refund policy",
    "retrieval.documents.1.document.id": "doc-b",
    "retrieval.documents.0.document.id": "doc-a",
    "retrieval.documents.0.document.content": "refunds within 30 days",
    "retrieval.documents.x.document.id": "no index: stays an attribute",
    "llm.model_name": "bge-small",
    "app.custom": "kept",
}


def _landing(out: normalize.Normalized) -> tuple:
    spans, docs, content = (out.tables[t] for t in ("spans", "documents", "content"))
    return (
        spans["stage"],
        spans["model"],
        spans["attributes"],
        list(zip(docs["rank"], docs["doc_id"], strict=True)),
        sorted(zip(content["role"], content["field"], content["text"], strict=True)),
    )


def test_every_key_lands_in_its_column_table_or_attributes():
    stage, model, attributes, docs, content = _landing(normalize.normalize_traces(_request(ATTRS), 0))
    assert stage == ["retrieve"] and model == ["bge-small"]
    assert attributes == [
        {"retrieval.documents.x.document.id": "no index: stays an attribute", "app.custom": "kept"}
    ]
    assert docs == [(0, "doc-a"), (1, "doc-b")]
    assert content == [
        ("document", "retrieve.documents.0", "refunds within 30 days"),
        ("prompt", "input.value", "what is the refund policy"),
    ]


def test_route_memo_gives_the_same_rows_and_stays_bounded(monkeypatch):
    normalize._routes.clear()
    first = _landing(normalize.normalize_traces(_request(ATTRS), 0))
    assert set(ATTRS) <= set(normalize._routes), "each key's route is remembered"
    assert _landing(normalize.normalize_traces(_request(ATTRS), 0)) == first, "memo hit == first decision"

    monkeypatch.setattr(normalize, "_ROUTES_MAX", 4)
    invented = {f"attack.{i}": "x" for i in range(50)}
    out = normalize.normalize_traces(_request(invented | ATTRS), 0)
    assert len(normalize._routes) <= 4, "a client inventing keys cannot grow the memo"
    assert _landing(out)[3:] == first[3:] and set(invented) <= set(out.tables["spans"]["attributes"][0])
