"""Real OTel SDK exporters -> a `ragtrail collector` subprocess -> SQL (issue: spine, must-show 1 and 2)."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.conftest import REPO

# One RAG request per convention; each tuple is (span name, attributes, expected stage).
OPENINFERENCE = [
    ("oi.embed", {"openinference.span.kind": "EMBEDDING", "embedding.model_name": "bge-small"}, "embed"),
    (
        "oi.retrieve",
        {
            "openinference.span.kind": "RETRIEVER",
            "input.value": "what is the refund policy?",
            "retrieval.documents.0.document.id": "doc-7",
            "retrieval.documents.0.document.score": 0.91,
            "retrieval.documents.0.document.content": "Refunds within 30 days.",
            "retrieval.documents.0.document.metadata": '{"version": "3", "uri": "kb://doc-7"}',
            "retrieval.documents.1.document.id": "doc-2",
            "retrieval.documents.1.document.score": 0.55,
        },
        "retrieve",
    ),
    (
        "oi.rerank",
        {
            "openinference.span.kind": "RERANKER",
            "reranker.model_name": "bge-reranker",
            "reranker.output_documents.0.document.id": "doc-7",
            "reranker.output_documents.0.document.score": 0.98,
        },
        "rerank",
    ),
    (
        "oi.llm",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "llama-3.1-8b-instruct",
            "llm.token_count.prompt": 812,
            "llm.token_count.completion": 64,
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "Answer from the context.",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": "what is the refund policy?",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "Refunds are accepted within 30 days [doc-7].",
            "ragtrail.citations": ["doc-7"],
            "ragtrail.model.quantization": "int4-awq",
            "ragtrail.variant": "canary",
            "user.id": "user-42",
            "session.id": "sess-1",
            "custom.flag": "kept",
        },
        "generate",
    ),
    ("oi.guard", {"openinference.span.kind": "GUARDRAIL"}, "guardrail"),
]
GENAI = [
    (
        "genai.embed",
        {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3"},
        "embed",
    ),
    (
        "genai.retrieve",
        {
            "gen_ai.operation.name": "retrieval",
            "gen_ai.retrieval.documents": '[{"id": "doc-9", "score": 0.8}, {"id": "doc-3", "score": 0.4}]',
        },
        "retrieve",
    ),
    (
        "genai.chat",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.output_tokens": 30,
            "gen_ai.usage.cache_read.input_tokens": 100,
            "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", "content": "hi there"}]}]',
            "gen_ai.latency.time_in_queue": 0.25,
            "gen_ai.latency.time_to_first_token": 0.125,
        },
        "generate",
    ),
]
OPENLLMETRY = [
    ("tl.workflow", {"traceloop.span.kind": "workflow"}, "chain"),
    (
        "tl.chat",
        {
            "llm.request.type": "chat",
            "gen_ai.request.model": "claude-3-haiku",
            "llm.usage.prompt_tokens": 50,
            "llm.usage.completion_tokens": 7,
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "summarise the doc",
            "gen_ai.completion.0.content": "It says refunds take 30 days.",
            "traceloop.association.properties.user_id": "user-7",
        },
        "generate",
    ),
    ("tl.rerank", {"llm.request.type": "rerank"}, "rerank"),
    ("plain", {"http.method": "GET"}, "other"),
]


def _emit(exporter, service: str, spans) -> None:
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "deployment.environment.name": "test"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span(f"{service}.request"):
        for name, attrs, _ in spans:
            with tracer.start_as_current_span(name, attributes=attrs) as span:
                if name == "tl.chat":
                    span.add_event(
                        "db.query.result",
                        {"db.query.result.id": "doc-11", "db.query.result.distance": 0.2},
                    )
    provider.shutdown()


@pytest.fixture
def filled(collector):
    _emit(GrpcSpanExporter(endpoint=collector.grpc_endpoint, insecure=True), "svc-oi", OPENINFERENCE)
    _emit(HttpSpanExporter(endpoint=f"{collector.http_endpoint}/v1/traces"), "svc-genai", GENAI)
    _emit(GrpcSpanExporter(endpoint=collector.grpc_endpoint, insecure=True), "svc-openllmetry", OPENLLMETRY)
    total = len(OPENINFERENCE) + len(GENAI) + len(OPENLLMETRY) + 3  # + the three root spans
    collector.wait_for("SELECT count(*) FROM spans", total)
    return collector


@pytest.mark.parametrize(
    "spans", [OPENINFERENCE, GENAI, OPENLLMETRY], ids=["openinference", "genai", "openllmetry"]
)
def test_stage_per_convention(filled, spans):
    stages = dict(filled.sql("SELECT name, stage FROM spans"))
    for name, _, expected in spans:
        assert stages[name] == expected, name


def test_models_tokens_and_ragtrail_attributes(filled):
    row = filled.sql(
        "SELECT model, input_tokens, output_tokens, quantization, variant, user_id, session_id, attributes "
        "FROM spans WHERE name = 'oi.llm'"
    )[0]
    assert row[:7] == ("llama-3.1-8b-instruct", 812, 64, "int4-awq", "canary", "user-42", "sess-1")
    assert orjson.loads(row[7]) == {"custom.flag": "kept"}  # unknown attributes are kept, mapped ones are not
    genai = filled.sql(
        "SELECT model, provider, input_tokens, output_tokens, cache_read_tokens, queue_ms, ttft_ms "
        "FROM spans WHERE name = 'genai.chat'"
    )[0]
    assert genai == ("gpt-4o-mini-2024-07-18", "openai", 120, 30, 100, 250.0, 125.0)
    tl = filled.sql("SELECT model, input_tokens, output_tokens, user_id FROM spans WHERE name = 'tl.chat'")[0]
    assert tl == ("claude-3-haiku", 50, 7, "user-7")


def test_documents_for_retriever_reranker_citations(filled):
    docs = filled.sql(
        "SELECT s.name, d.stage, d.doc_id, d.rank, d.score, d.doc_version, d.uri FROM documents d "
        "JOIN spans s USING (span_id) ORDER BY s.name, d.stage, d.rank"
    )
    assert docs == [
        ("genai.retrieve", "retrieve", "doc-9", 0, 0.8, None, None),
        ("genai.retrieve", "retrieve", "doc-3", 1, 0.4, None, None),
        ("oi.llm", "cite", "doc-7", 0, None, None, None),
        ("oi.rerank", "rerank", "doc-7", 0, 0.98, None, None),
        ("oi.retrieve", "retrieve", "doc-7", 0, 0.91, "3", "kb://doc-7"),
        ("oi.retrieve", "retrieve", "doc-2", 1, 0.55, None, None),
        ("tl.chat", "retrieve", "doc-11", 0, 0.2, None, None),
    ]


def test_content_roles(filled):
    content = filled.sql("SELECT role, text FROM content ORDER BY role, text")
    assert ("system", "Answer from the context.") in content
    assert ("prompt", "what is the refund policy?") in content
    assert ("response", "Refunds are accepted within 30 days [doc-7].") in content
    assert ("document", "Refunds within 30 days.") in content
    assert ("prompt", "hi there") in content
    assert ("prompt", "summarise the doc") in content
    assert ("response", "It says refunds take 30 days.") in content


def test_traces_view_folds_stages(filled):
    row = filled.sql(
        "SELECT root_name, service_name, spans, embed_ms IS NOT NULL, generate_ms IS NOT NULL, input_tokens "
        "FROM traces WHERE service_name = 'svc-oi'"
    )[0]
    assert row == ("svc-oi.request", "svc-oi", 6, True, True, 812)


def test_metrics_and_logs_via_sdk_exporters(collector):
    resource = Resource.create({"service.name": "gpu-box", "host.name": "node-1"})
    readings = {"hw.gpu.utilization": 0.75, "hw.gpu.memory.usage": 30e9, "hw.gpu.memory.limit": 80e9}

    def gauge(name):
        return lambda _options: [Observation(readings[name], {"hw.id": "GPU-0", "hw.type": "gpu"})]

    for exporter in (
        GrpcMetricExporter(endpoint=collector.grpc_endpoint, insecure=True),
        HttpMetricExporter(endpoint=f"{collector.http_endpoint}/v1/metrics"),
    ):
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
        provider = MeterProvider(resource=resource, metric_readers=[reader])
        meter = provider.get_meter("tests")
        for name in readings:
            meter.create_observable_gauge(name, callbacks=[gauge(name)])
        meter.create_counter("rag.requests").add(5, {"route": "small"})
        meter.create_histogram("rag.latency", unit="ms").record(120.0)
        meter.create_histogram("rag.latency", unit="ms").record(480.0)
        provider.shutdown()  # forces one export

    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(
        SimpleLogRecordProcessor(GrpcLogExporter(endpoint=collector.grpc_endpoint, insecure=True))
    )
    logger = logs.get_logger("tests")
    from opentelemetry._logs import LogRecord, SeverityNumber

    logger.emit(
        LogRecord(body="retrieval took 812 ms", severity_number=SeverityNumber.WARN, severity_text="WARN")
    )
    logs.shutdown()

    collector.wait_for("SELECT count(*) FROM metrics WHERE name = 'rag.requests'", 2)
    assert collector.sql("SELECT DISTINCT type, value FROM metrics WHERE name = 'rag.requests'") == [
        ("sum", 5.0)
    ]
    hist = collector.sql(
        "SELECT count, sum, min, max, buckets FROM metrics WHERE name = 'rag.latency' LIMIT 1"
    )[0]
    assert hist[:4] == (2, 600.0, 120.0, 480.0)
    assert sum(orjson.loads(hist[4])["counts"]) == 2
    collector.wait_for("SELECT count(*) FROM gpu", 2)
    gpu = collector.sql(
        "SELECT host, gpu_id, utilization, memory_used_bytes, memory_total_bytes FROM gpu LIMIT 1"
    )
    assert gpu == [("node-1", "GPU-0", 0.75, 30e9, 80e9)]
    collector.wait_for("SELECT count(*) FROM logs", 1)
    assert collector.sql("SELECT severity, body, service_name FROM logs") == [
        ("WARN", "retrieval took 812 ms", "gpu-box")
    ]


def test_ragtrail_sql_cli_formats(filled, tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "ragtrail.cli", "sql", "--data", str(filled.data_dir), *args],
            capture_output=True, text=True, cwd=REPO, check=False,
        )  # fmt: skip

    out = run("SELECT stage, count(*) AS n FROM spans GROUP BY stage ORDER BY stage", "--format", "csv")
    assert out.returncode == 0, out.stderr
    assert '"stage","n"' in out.stdout and '"generate",3' in out.stdout
    target = tmp_path / "spans.parquet"
    assert run("SELECT * FROM spans", "--format", "parquet", "-o", str(target)).returncode == 0
    import pyarrow.parquet as pq

    assert pq.read_table(target).num_rows == filled.scalar("SELECT count(*) FROM spans")
