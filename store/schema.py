"""The single source of truth for ragtrail's tables.

Every stored table is declared here once, as an Arrow schema. The collector's normalizer builds
columns by these names, the WAL and Parquet writer use these schemas, the SQL views select from
them, and the tests and docs read them. Add a column here and everything downstream sees it.

Conventions: times are UTC ``timestamp[us]`` without a zone; ids are lowercase hex strings;
free-form key/value data (attributes, resource, events, buckets, pii) is a JSON string column, so
nothing a client sent is thrown away and DuckDB's JSON functions can reach into it.

This module owns no I/O.
"""

from __future__ import annotations

import pyarrow as pa

TIME = pa.timestamp("us")
JSON = pa.string()  # a JSON document serialised as text


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, dtype) for name, dtype in fields])


SPANS = _schema(
    ("time", TIME),  # span start
    ("end_time", TIME),
    ("duration_ms", pa.float64()),
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("parent_span_id", pa.string()),  # null for a root span
    ("name", pa.string()),
    ("service_name", pa.string()),
    ("service_version", pa.string()),
    ("environment", pa.string()),
    ("scope_name", pa.string()),
    ("stage", pa.string()),  # see store.schema.STAGES
    ("span_kind", pa.string()),  # INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER, UNSPECIFIED
    ("status", pa.string()),  # UNSET, OK, ERROR
    ("status_message", pa.string()),
    ("model", pa.string()),
    ("provider", pa.string()),
    ("quantization", pa.string()),
    ("input_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("cache_read_tokens", pa.int64()),
    ("cache_layer", pa.string()),  # response, context, embedding, kv
    ("cache_hit", pa.bool_()),
    ("variant", pa.string()),
    ("route", pa.string()),
    ("prompt_version", pa.string()),
    ("fallback", pa.bool_()),
    ("queue_ms", pa.float64()),  # serving engine queue time (vLLM gen_ai.latency.time_in_queue)
    ("ttft_ms", pa.float64()),  # time to first token
    ("session_id", pa.string()),
    ("user_id", pa.string()),  # keyed HMAC pseudonym once redaction is on
    ("error_type", pa.string()),
    ("attributes", JSON),  # attributes not mapped to a column, the content or documents tables
    ("events", JSON),  # [{"name", "time", "attributes"}]
    ("resource", JSON),
)

DOCUMENTS = _schema(
    ("time", TIME),
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("stage", pa.string()),  # retrieve, rerank, cite
    ("doc_id", pa.string()),
    ("doc_version", pa.string()),
    ("rank", pa.int32()),  # 0-based position in the list the span returned or cited
    ("score", pa.float64()),
    ("uri", pa.string()),
    ("service_name", pa.string()),
)

CONTENT = _schema(
    ("time", TIME),
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("role", pa.string()),  # system, prompt, response, document, tool
    ("seq", pa.int32()),  # order within the span for the same role
    ("field", pa.string()),  # the attribute or event the text came from
    ("text", pa.string()),
    ("pii", JSON),  # entity type -> count found by redaction
    ("redaction", pa.string()),  # ok, failed, off
    ("service_name", pa.string()),
)

METRICS = _schema(
    ("time", TIME),
    ("start_time", TIME),
    ("name", pa.string()),
    ("description", pa.string()),
    ("unit", pa.string()),
    ("type", pa.string()),  # gauge, sum, histogram, exponential_histogram, summary
    ("temporality", pa.string()),  # cumulative, delta (sums and histograms)
    ("monotonic", pa.bool_()),
    ("value", pa.float64()),  # gauges and sums
    ("count", pa.int64()),
    ("sum", pa.float64()),
    ("min", pa.float64()),
    ("max", pa.float64()),
    ("buckets", JSON),  # {"bounds": [...], "counts": [...]} or the exponential layout
    ("attributes", JSON),
    ("resource", JSON),
    ("service_name", pa.string()),
    ("scope_name", pa.string()),
)

# One row per metric data point that carries a GPU reading; the `gpu` view folds the readings of
# one (time, host, gpu_id) into one sample row.
GPU = _schema(
    ("time", TIME),
    ("host", pa.string()),
    ("gpu_id", pa.string()),
    ("gpu_name", pa.string()),
    ("utilization", pa.float64()),  # ratio 0..1
    ("memory_used_bytes", pa.float64()),
    ("memory_total_bytes", pa.float64()),
    ("power_w", pa.float64()),
    ("temperature_c", pa.float64()),
    ("ooms", pa.float64()),  # cumulative count of out-of-memory errors
    ("simulated", pa.bool_()),
    ("service_name", pa.string()),
)

LOGS = _schema(
    ("time", TIME),
    ("observed_time", TIME),
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("severity", pa.string()),
    ("severity_number", pa.int32()),
    ("body", pa.string()),
    ("event_name", pa.string()),
    ("attributes", JSON),
    ("resource", JSON),
    ("service_name", pa.string()),
    ("scope_name", pa.string()),
)

QUALITY = _schema(
    ("time", TIME),
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("metric", pa.string()),  # groundedness, citation_accuracy, relevance, toxicity, feedback, ...
    ("score", pa.float64()),
    ("label", pa.string()),
    ("evaluator", pa.string()),  # who scored: ragtrail, a client evaluator name, user
    ("explanation", pa.string()),
    ("service_name", pa.string()),
)

# Derived, not sent: each spans file's partial fold per trace, written beside it (store.trace_parts);
# the traces view merges these instead of every span.
TRACE_PARTS = _schema(
    ("time", TIME),  # first span's start
    ("end_time", TIME),  # last span's end
    ("trace_id", pa.string()),
    ("root_name", pa.string()),
    ("root_service", pa.string()),
    ("any_service", pa.string()),
    ("root_status", pa.string()),
    ("root_duration_ms", pa.float64()),
    ("error_spans", pa.int64()),
    ("spans", pa.int64()),
    ("environment", pa.string()),
    ("session_id", pa.string()),
    ("user_id", pa.string()),
    ("variant", pa.string()),
    ("route", pa.string()),
    ("prompt_version", pa.string()),
    ("model", pa.string()),  # of the latest generate span with a model ...
    ("model_time", TIME),  # ... which started at this time
    ("quantization", pa.string()),
    ("quantization_time", TIME),
    ("embed_ms", pa.float64()),
    ("retrieve_ms", pa.float64()),
    ("rerank_ms", pa.float64()),
    ("generate_ms", pa.float64()),
    ("guardrail_ms", pa.float64()),
    ("input_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("cache_read_tokens", pa.int64()),
    ("cache_hit", pa.bool_()),  # a response-cache hit
    ("fallback", pa.bool_()),
    ("writer", pa.string()),  # the collector that wrote the spans file ...
    ("segment", pa.int64()),  # ... and its WAL segment (store.trace_index watermarks)
)

# Physical tables, in the order the WAL and the flusher write them.
TABLES: dict[str, pa.Schema] = {
    "spans": SPANS,
    "documents": DOCUMENTS,
    "content": CONTENT,
    "metrics": METRICS,
    "gpu": GPU,
    "logs": LOGS,
    "quality": QUALITY,
    "trace_parts": TRACE_PARTS,
}
# Tables whose rows are computed from another table's when its files are written, never ingested.
DERIVED = {"trace_parts": "spans"}

STAGES = (
    "embed",
    "retrieve",
    "rerank",
    "generate",
    "guardrail",
    "tool",
    "cache",
    "chain",
    "agent",
    "evaluate",
    "other",
)
# The stages of the classic RAG request path, in order; per-stage latency columns follow these.
PIPELINE_STAGES = ("embed", "retrieve", "rerank", "generate", "guardrail")


def empty_columns(table: str) -> dict[str, list]:
    """A fresh column-list dict for building rows of ``table`` (see collector.normalize)."""
    return {name: [] for name in TABLES[table].names}
