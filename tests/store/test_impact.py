"""Provenance impact: a document planted in a few traces (retrieved, reranked, cited, in two versions)
among the demo's traffic; `audit impact` returns exactly those traces."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import set_span_in_context

from ragtrail.cli import main
from ragtrail.store import audit

PLANTED = "planted-doc-42"


def _doc(prefix: str, i: int, doc_id: str, version: str) -> dict:
    return {
        f"{prefix}.{i}.document.id": doc_id,
        f"{prefix}.{i}.document.score": 0.9,
        f"{prefix}.{i}.document.content": f"{doc_id} says the quota is 7 requests.",
        f"{prefix}.{i}.document.metadata": json.dumps({"version": version}),
    }


@pytest.fixture(scope="module")
def planted(audit_store):
    """Send six traces: three use the planted document (one way each), three do not."""
    provider = TracerProvider(resource=Resource.create({"service.name": "planted-app"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=audit_store.grpc_endpoint, insecure=True))
    )
    tracer = provider.get_tracer("planted")
    uses = {
        "retrieved": ("retrieval.documents", "RETRIEVER", PLANTED, "v3"),
        "reranked": ("reranker.output_documents", "RERANKER", PLANTED, "v4"),
        "cited": None,
        "other-1": ("retrieval.documents", "RETRIEVER", "other-doc", "v3"),
        "other-2": ("retrieval.documents", "RETRIEVER", "other-doc", "v9"),
        "evaluated": None,
    }
    traces = {}
    for name, use in uses.items():
        root = tracer.start_span("answer", attributes={"openinference.span.kind": "CHAIN", "user.id": f"planted-{name}",
                                                        "input.value": "What is the quota?"})  # fmt: skip
        ctx = set_span_in_context(root)
        if use:
            prefix, kind, doc_id, version = use
            tracer.start_span("docs", context=ctx, attributes={"openinference.span.kind": kind,
                                                              **_doc(prefix, 0, doc_id, version)}).end()  # fmt: skip
        generate = {"openinference.span.kind": "LLM", "output.value": "The quota is 7 requests."}
        if name == "cited":
            generate["ragtrail.citations"] = [PLANTED]
        llm = tracer.start_span("llm", context=ctx, attributes=generate)
        if name == "evaluated":  # an OTel GenAI evaluation event on the evaluated span
            llm.add_event("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "toxicity",
                          "gen_ai.evaluation.score.value": 0.02, "gen_ai.evaluation.score.label": "clean",
                          "ragtrail.evaluator": "detoxify"})  # fmt: skip
        llm.end()
        if name == "evaluated":  # an OpenInference EVALUATOR span: a client score
            tracer.start_span("judge", context=ctx, attributes={
                "openinference.span.kind": "EVALUATOR", "eval.name": "relevance", "eval.score": 0.75,
                "eval.label": "relevant", "eval.explanation": "on topic"}).end()  # fmt: skip
        root.end()
        traces[name] = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()
    ids = ", ".join(f"'{t}'" for t in traces.values())
    audit_store.wait_for(f"SELECT count(DISTINCT trace_id) FROM spans WHERE trace_id IN ({ids})", len(traces))
    return traces


def _impacted(collector, **kwargs) -> set[str]:
    return {row[0] for row in audit.impact(collector.data_dir, PLANTED, **kwargs).rows}


def test_impact_returns_exactly_the_traces_that_used_the_document(audit_store, planted):
    assert _impacted(audit_store) == {planted["retrieved"], planted["reranked"], planted["cited"]}
    assert _impacted(audit_store, version="v3") == {planted["retrieved"]}
    assert _impacted(audit_store, version="v4+") == {planted["reranked"]}
    assert _impacted(audit_store, version="v3+") == {planted["retrieved"], planted["reranked"]}
    assert _impacted(audit_store, since="2000-01-01") == _impacted(audit_store)
    result = audit.impact(audit_store.data_dir, PLANTED)
    by_trace = {r[0]: dict(zip(result.columns, r, strict=True)) for r in result.rows}
    assert by_trace[planted["cited"]]["stages"] == ["cite"]
    assert by_trace[planted["reranked"]]["versions"] == ["v4"]
    assert all(r["user_id"].startswith("u_") for r in by_trace.values())  # pseudonyms, never raw ids


def test_impact_cli_on_a_demo_document(audit_store):
    out = CliRunner().invoke(
        main,
        ["audit", "impact", "--data", str(audit_store.data_dir), "--doc-id", "kb-001", "--format", "json"],
    )
    assert out.exit_code == 0, out.output
    got = {json.loads(line)["trace_id"] for line in out.output.splitlines()}
    expected = {
        r[0] for r in audit_store.sql("SELECT DISTINCT trace_id FROM documents WHERE doc_id = 'kb-001'")
    }
    assert got == expected and got


def test_evaluator_span_and_evaluation_event_become_client_scores(audit_store, planted):
    rows = audit_store.sql(
        f"SELECT metric, score, label, explanation FROM quality WHERE trace_id = '{planted['evaluated']}' "
        "AND evaluator <> 'ragtrail'"
    )
    assert sorted(rows) == [("relevance", 0.75, "relevant", "on topic"), ("toxicity", 0.02, "clean", None)]
    assert (
        audit_store.scalar(
            f"SELECT evaluator FROM quality WHERE trace_id = '{planted['evaluated']}' AND metric = 'toxicity'"
        )
        == "detoxify"
    )
