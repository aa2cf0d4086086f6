"""The LLM semantic conventions ragtrail understands, as data.

Three conventions describe the same things with different keys: OTel GenAI (``gen_ai.*``),
OpenInference (``llm.*``, ``retrieval.*``, ``openinference.span.kind``) and OpenLLMetry
(``traceloop.*``, ``gen_ai.prompt.{i}.*``, ``llm.usage.*``). Each canonical column lists its
candidate keys in priority order; the first key present wins. ``ragtrail.*`` keys are our own.

Only tables live here; collector.normalize applies them.
"""

from __future__ import annotations

# --- stage classification (shared/DESIGN.md, "Semantic conventions") -------------------------------

OPENINFERENCE_KIND_STAGE = {
    "EMBEDDING": "embed",
    "RETRIEVER": "retrieve",
    "RERANKER": "rerank",
    "LLM": "generate",
    "GUARDRAIL": "guardrail",
    "TOOL": "tool",
    "CHAIN": "chain",
    "AGENT": "agent",
    "EVALUATOR": "evaluate",
}
GENAI_OPERATION_STAGE = {
    "embeddings": "embed",
    "retrieval": "retrieve",
    "chat": "generate",
    "text_completion": "generate",
    "generate_content": "generate",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
    "apply_guardrail": "guardrail",
}
TRACELOOP_KIND_STAGE = {
    "workflow": "chain",
    "task": "chain",
    "agent": "agent",
    "tool": "tool",
}
LLM_REQUEST_TYPE_STAGE = {
    "chat": "generate",
    "completion": "generate",
    "embedding": "embed",
    "rerank": "rerank",
}

# --- scalar columns: candidates in priority order ----------------------------------------------------

SCALAR_KEYS: dict[str, tuple[str, ...]] = {
    "model": (
        "gen_ai.response.model",
        "gen_ai.request.model",
        "llm.model_name",
        "embedding.model_name",
        "reranker.model_name",
        "llm.response.model",
        "llm.request.model",
    ),
    "provider": ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"),
    "input_tokens": (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.token_count.prompt",
        "llm.usage.prompt_tokens",
    ),
    "output_tokens": (
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.token_count.completion",
        "llm.usage.completion_tokens",
    ),
    "cache_read_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
    ),
    "session_id": (
        "session.id",
        "gen_ai.conversation.id",
        "traceloop.association.properties.session_id",
        "ragtrail.session.id",
    ),
    "user_id": (
        "user.id",
        "enduser.id",
        "traceloop.association.properties.user_id",
        "ragtrail.user.id",
    ),
    "prompt_version": (
        "ragtrail.prompt.version",
        "llm.prompt_template.version",
        "traceloop.prompt.version",
        "gen_ai.prompt.version",
    ),
    "quantization": ("ragtrail.model.quantization", "gen_ai.request.quantization"),
    "variant": ("ragtrail.variant",),
    "route": ("ragtrail.route",),
    "fallback": ("ragtrail.fallback",),
    "cache_layer": ("ragtrail.cache.layer",),
    "cache_hit": ("ragtrail.cache.hit",),
    "error_type": ("error.type",),
}
# Serving-engine timings in seconds (vLLM's OTLP spans) -> milliseconds columns.
SECONDS_TO_MS_KEYS = {
    "queue_ms": ("gen_ai.latency.time_in_queue", "ragtrail.queue.seconds"),
    "ttft_ms": ("gen_ai.latency.time_to_first_token", "ragtrail.ttft.seconds"),
}
# Keys used to classify the stage; consumed like the scalars above.
STAGE_KEYS = (
    "ragtrail.stage",
    "openinference.span.kind",
    "gen_ai.operation.name",
    "traceloop.span.kind",
    "llm.request.type",
)
SPAN_DOC_VERSION_KEY = "ragtrail.doc.version"
CITATIONS_KEY = "ragtrail.citations"

# --- client scores -> the quality table --------------------------------------------------------------
# OTel GenAI evaluation results: a log event / span event named EVALUATION_EVENT, or these attributes
# on an evaluator span. OpenInference EVALUATOR spans carry the same facts under eval.*.
EVALUATION_EVENT = "gen_ai.evaluation.result"
EVALUATION_KEYS = {
    "metric": ("gen_ai.evaluation.name", "eval.name"),
    "score": ("gen_ai.evaluation.score.value", "eval.score"),
    "label": ("gen_ai.evaluation.score.label", "eval.label"),
    "explanation": ("gen_ai.evaluation.explanation", "eval.explanation"),
    "evaluator": ("ragtrail.evaluator", "gen_ai.evaluation.evaluator", "eval.evaluator"),
}
FEEDBACK_METRICS = frozenset({"user_feedback", "feedback", "thumbs"})  # scored by a person: evaluator "user"
# A guardrail span's verdict becomes a `guardrail` quality row (label = outcome, score 1 pass / 0 not).
GUARDRAIL_OUTCOME_KEY = "ragtrail.guardrail.outcome"
GUARDRAIL_DIRECTION_KEY = "ragtrail.guardrail.direction"
GUARDRAIL_REASON_KEY = "ragtrail.guardrail.reason"
GUARDRAIL_PASS = frozenset({"pass", "passed", "allow", "allowed", "ok"})

# --- free text -> the content table (role, attribute key) -------------------------------------------

# Single-valued text attributes.
TEXT_KEYS: dict[str, str] = {
    "input.value": "prompt",
    "output.value": "response",
    "gen_ai.prompt": "prompt",
    "gen_ai.completion": "response",
    "traceloop.entity.input": "prompt",
    "traceloop.entity.output": "response",
    "llm.prompt_template.template": "system",
    "gen_ai.system_instructions": "system",
    "tool.parameters": "tool",
    "tool_call.function.arguments": "tool",
    "gen_ai.tool.call.arguments": "tool",
    "gen_ai.tool.call.result": "tool",
    "gen_ai.retrieval.query.text": "prompt",
}
# JSON-encoded message lists (OTel GenAI >= 1.37): [{"role", "parts": [{"type": "text", "content"}]}]
MESSAGE_LIST_KEYS = {"gen_ai.input.messages": "input", "gen_ai.output.messages": "output"}

# Indexed, flattened attributes: prefix -> what the index addresses.
# OpenInference:  llm.input_messages.{i}.message.role / .message.content
#                 retrieval.documents.{i}.document.id / .content / .score / .metadata
# OpenLLMetry:    gen_ai.prompt.{i}.role / .content, gen_ai.completion.{i}.content
INDEXED_MESSAGE_PREFIXES = {
    "llm.input_messages.": "input",
    "llm.output_messages.": "output",
    "gen_ai.prompt.": "input",
    "gen_ai.completion.": "output",
    "llm.prompts.": "input",
    "embedding.embeddings.": "input",
}
INDEXED_DOCUMENT_PREFIXES = {
    "retrieval.documents.": "retrieve",
    "reranker.output_documents.": "rerank",
}
MESSAGE_ROLE_MAP = {
    "system": "system",
    "developer": "system",
    "user": "prompt",
    "human": "prompt",
    "assistant": "response",
    "ai": "response",
    "model": "response",
    "tool": "tool",
    "function": "tool",
}
# GenAI content events (older GenAI conventions and OpenLLMetry), event name -> role.
CONTENT_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "prompt",
    "gen_ai.assistant.message": "response",
    "gen_ai.tool.message": "tool",
    "gen_ai.choice": "response",
    "gen_ai.content.prompt": "prompt",
    "gen_ai.content.completion": "response",
}
CONTENT_EVENT_TEXT_KEYS = ("content", "gen_ai.prompt", "gen_ai.completion", "message")
DB_QUERY_RESULT_EVENT = "db.query.result"  # OpenLLMetry vector-DB results, one event per document

# --- resource --------------------------------------------------------------------------------------
RESOURCE_SERVICE = "service.name"
RESOURCE_SERVICE_VERSION = "service.version"
RESOURCE_ENVIRONMENT = ("deployment.environment.name", "deployment.environment")
RESOURCE_HOST = ("host.name", "host.id")
RESOURCE_SIMULATED = "ragtrail.simulated"

# --- GPU metrics -> the gpu table --------------------------------------------------------------------
# metric name -> (gpu column, scale). OTel hardware conventions first, DCGM exporter names after.
GPU_METRICS: dict[str, tuple[str, float]] = {
    "hw.gpu.utilization": ("utilization", 1.0),
    "hw.gpu.memory.usage": ("memory_used_bytes", 1.0),
    "hw.gpu.memory.limit": ("memory_total_bytes", 1.0),
    "DCGM_FI_DEV_GPU_UTIL": ("utilization", 0.01),  # percent
    "DCGM_FI_DEV_FB_USED": ("memory_used_bytes", 1024 * 1024),  # MiB
    "DCGM_FI_DEV_FB_TOTAL": ("memory_total_bytes", 1024 * 1024),
    "DCGM_FI_DEV_POWER_USAGE": ("power_w", 1.0),
    "DCGM_FI_DEV_GPU_TEMP": ("temperature_c", 1.0),
}
# Generic hardware metrics count as GPU readings when the point says hw.type=gpu.
GPU_GENERIC_METRICS: dict[str, tuple[str, float]] = {
    "hw.power": ("power_w", 1.0),
    "hw.temperature": ("temperature_c", 1.0),
}
GPU_OOM_METRIC = "hw.errors"  # with error.type in GPU_OOM_ERROR_TYPES
GPU_OOM_ERROR_TYPES = {"out_of_memory", "oom", "OutOfMemoryError"}
GPU_ID_KEYS = ("hw.id", "gpu", "UUID")
GPU_NAME_KEYS = ("hw.name", "hw.model", "modelName")
GPU_HOST_KEYS = ("host.name", "Hostname")
