"""Plans -> OpenTelemetry spans and logs, in OpenInference or OTel GenAI attributes.

The same request facts are written the way each instrumentation library writes them, because
real fleets mix them: ``support-rag`` looks like an OpenInference-instrumented app (LlamaIndex,
LangChain), ``search-rag`` like one instrumented with the OTel GenAI conventions talking to vLLM.
ragtrail's own keys (``ragtrail.*``) are the same in both. Keys must match collector/semconv.py.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import Logger, SeverityNumber
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from ragtrail.sample_data.service import Step, TracePlan

_KINDS = {"chain": SpanKind.SERVER, "embed": SpanKind.CLIENT, "retrieve": SpanKind.CLIENT,
          "rerank": SpanKind.CLIENT, "generate": SpanKind.CLIENT}  # fmt: skip
_OI_KIND = {"chain": "CHAIN", "guardrail": "GUARDRAIL", "embed": "EMBEDDING", "retrieve": "RETRIEVER",
            "rerank": "RERANKER", "generate": "LLM"}  # fmt: skip
_SEVERITY = {"INFO": SeverityNumber.INFO, "WARN": SeverityNumber.WARN, "ERROR": SeverityNumber.ERROR}


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _context_text(docs) -> str:
    return "\n".join(f"[{d.id}] {d.text}" for d, _ in docs)


def _user_message(facts: dict) -> str:
    context = _context_text(facts["context"])
    return f"Context:\n{context}\n\nQuestion: {facts['question']}" if context else facts["question"]


def ragtrail_attributes(step: Step) -> dict[str, Any]:
    """ragtrail.* keys, shared by both conventions."""
    f = step.facts
    out: dict[str, Any] = {}
    if step.stage == "cache":
        out.update(
            {"ragtrail.stage": "cache", "ragtrail.cache.layer": f["layer"], "ragtrail.cache.hit": f["hit"]}
        )
        if f.get("miss_reason"):
            out["ragtrail.cache.miss_reason"] = f["miss_reason"]
        if f.get("citations") is not None:
            out["ragtrail.citations"] = list(f["citations"])
    if step.stage == "guardrail":
        out["ragtrail.guardrail.direction"] = f["direction"]
        out["ragtrail.guardrail.outcome"] = f["outcome"]
        if f.get("reason"):
            out["ragtrail.guardrail.reason"] = f["reason"]
    if step.stage == "retrieve" and f.get("index_version"):
        out["ragtrail.doc.version"] = f["index_version"]
    for key in ("variant", "prompt_version", "route"):
        if f.get(key) is not None:
            out[f"ragtrail.{key.replace('_', '.')}"] = f[key]
    if step.stage in ("chain", "generate") and f.get("fallback") is not None:
        out["ragtrail.fallback"] = f["fallback"]
    if step.stage == "generate":
        out["ragtrail.model.quantization"] = f["model"].quantization
        out["ragtrail.citations"] = list(f["citations"])
        out["ragtrail.batch.size"] = f["batch_size"]
        out["ragtrail.kv_cache.usage"] = f["kv_usage"]
        # vLLM's own OTLP span attributes (seconds)
        out["gen_ai.latency.time_in_queue"] = round(f["queue_s"], 6)
        out["gen_ai.latency.time_to_first_token"] = round(f["ttft_s"], 6)
    if step.error:
        out["error.type"] = step.error
    return out


def openinference_attributes(step: Step) -> dict[str, Any]:
    f, stage = step.facts, step.stage
    out: dict[str, Any] = {}
    if stage in _OI_KIND:
        out["openinference.span.kind"] = _OI_KIND[stage]
    if stage == "chain":
        out["user.id"] = f["user_id"]
        out["session.id"] = f["session_id"]
        if f.get("question"):
            out["input.value"] = f["question"]
        if f.get("answer"):
            out["output.value"] = f["answer"]
    elif stage == "guardrail":
        out["input.value"] = f["text"]
    elif stage == "cache":
        _oi_documents(out, "retrieval.documents", f.get("docs") or [])
        if f.get("answer"):
            out["output.value"] = f["answer"]
    elif stage == "embed":
        out["embedding.model_name"] = f["model"]
        out["embedding.embeddings.0.embedding.text"] = f["text"]
    elif stage == "retrieve":
        out["input.value"] = f["query"]
        _oi_documents(out, "retrieval.documents", f["docs"])
    elif stage == "rerank":
        out.update(
            {"reranker.model_name": f["model"], "reranker.query": f["query"], "reranker.top_k": f["top_k"]}
        )
        _oi_documents(out, "reranker.output_documents", f["docs"])
    elif stage == "generate":
        model = f["model"]
        out.update({
            "llm.model_name": model.name,
            "llm.provider": "vllm",
            "llm.invocation_parameters": _json({"temperature": 0.2, "max_tokens": f["max_tokens"]}),
            "llm.prompt_template.version": f["prompt_version"],
            "llm.token_count.prompt": f["input_tokens"],
            "llm.token_count.completion": f["output_tokens"],
            "llm.token_count.prompt_details.cache_read": f["cache_read_tokens"],
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": f["system"],
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": _user_message(f),
        })  # fmt: skip
        if f.get("answer"):
            out["llm.output_messages.0.message.role"] = "assistant"
            out["llm.output_messages.0.message.content"] = f["answer"]
    return out


def _oi_documents(out: dict, prefix: str, docs) -> None:
    for i, (doc, score) in enumerate(docs):
        out[f"{prefix}.{i}.document.id"] = doc.id
        out[f"{prefix}.{i}.document.score"] = score
        out[f"{prefix}.{i}.document.content"] = doc.text
        out[f"{prefix}.{i}.document.metadata"] = _json(
            {"version": doc.version_tag, "uri": doc.uri, "title": doc.title}
        )


def _genai_documents(docs) -> str:
    return _json(
        [{"id": d.id, "score": s, "version": d.version_tag, "uri": d.uri, "content": d.text} for d, s in docs]
    )


def _genai_messages(role: str, text: str, finish_reason: str | None = None) -> str:
    msg: dict[str, Any] = {"role": role, "parts": [{"type": "text", "content": text}]}
    if finish_reason:
        msg["finish_reason"] = finish_reason
    return _json([msg])


def genai_attributes(step: Step) -> dict[str, Any]:
    f, stage = step.facts, step.stage
    out: dict[str, Any] = {}
    if stage == "chain":
        out.update({"ragtrail.stage": "chain", "http.request.method": "POST", "http.route": "/v1/answer",
                    "user.id": f["user_id"], "gen_ai.conversation.id": f["session_id"]})  # fmt: skip
        if step.error == "rate_limited":
            out["http.response.status_code"] = 429
    elif stage == "guardrail":
        out["gen_ai.operation.name"] = "apply_guardrail"
        key = "gen_ai.input.messages" if f["direction"] == "input" else "gen_ai.output.messages"
        out[key] = _genai_messages("user" if f["direction"] == "input" else "assistant", f["text"])
    elif stage == "cache":
        if f.get("docs"):
            out["gen_ai.retrieval.documents"] = _genai_documents(f["docs"])
        if f.get("answer"):
            out["gen_ai.output.messages"] = _genai_messages("assistant", f["answer"], "stop")
    elif stage == "embed":
        out.update({"gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "tei",
                    "gen_ai.request.model": f["model"], "gen_ai.usage.input_tokens": f["input_tokens"],
                    "gen_ai.embeddings.dimension.count": f["dimensions"]})  # fmt: skip
    elif stage == "retrieve":
        out.update({"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "qdrant:kb",
                    "db.system.name": "qdrant", "gen_ai.request.top_k": f["top_k"],
                    "gen_ai.retrieval.query.text": f["query"]})  # fmt: skip
        if f["docs"]:
            out["gen_ai.retrieval.documents"] = _genai_documents(f["docs"])
    elif stage == "rerank":
        # GenAI has no reranker convention yet; services borrow OpenInference's document keys.
        out.update(
            {
                "ragtrail.stage": "rerank",
                "gen_ai.request.model": f["model"],
                "gen_ai.request.top_k": f["top_k"],
            }
        )
        _oi_documents(out, "reranker.output_documents", f["docs"])
    elif stage == "generate":
        model = f["model"]
        out.update({
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "vllm",
            "gen_ai.request.model": model.name,
            "gen_ai.request.max_tokens": f["max_tokens"],
            "gen_ai.request.temperature": 0.2,
            "gen_ai.usage.input_tokens": f["input_tokens"],
            "gen_ai.usage.output_tokens": f["output_tokens"],
            "gen_ai.usage.cache_read.input_tokens": f["cache_read_tokens"],
            "gen_ai.input.messages": _json([
                {"role": "system", "parts": [{"type": "text", "content": f["system"]}]},
                {"role": "user", "parts": [{"type": "text", "content": _user_message(f)}]},
            ]),
        })  # fmt: skip
        if f.get("answer"):
            out["gen_ai.response.model"] = model.name
            out["gen_ai.response.finish_reasons"] = ["stop"]
            out["gen_ai.output.messages"] = _genai_messages("assistant", f["answer"], "stop")
    return out


CONVENTIONS = {"openinference": openinference_attributes, "genai": genai_attributes}


def span_name(step: Step, convention: str) -> str:
    """GenAI names spans "{operation} {target}"; OpenInference apps use their own names."""
    if convention == "genai":
        f = step.facts
        if step.stage == "chain":
            return "POST /v1/answer"
        if step.stage == "embed":
            return f"embeddings {f['model']}"
        if step.stage == "retrieve":
            return "retrieval qdrant:kb"
        if step.stage == "generate":
            return f"chat {f['model'].name}"
    return step.name


def attributes(step: Step, convention: str) -> dict[str, Any]:
    return {**CONVENTIONS[convention](step), **ragtrail_attributes(step)}


def emit(plan: TracePlan, convention: str, tracer: Tracer, logger: Logger) -> None:
    """Hand one planned trace to the SDK: spans with the plan's timestamps, then its logs."""
    root = plan.root
    root_span = tracer.start_span(
        span_name(root, convention), kind=SpanKind.SERVER, attributes=attributes(root, convention),
        start_time=root.start_ns,
    )  # fmt: skip
    parent = trace.set_span_in_context(root_span)
    spans = {id(root): root_span}
    for step in plan.steps:
        span = tracer.start_span(
            span_name(step, convention), context=parent, kind=_KINDS.get(step.stage, SpanKind.INTERNAL),
            attributes=attributes(step, convention), start_time=step.start_ns,
        )  # fmt: skip
        _finish(span, step)
        spans[id(step)] = span
    _finish(root_span, root)
    for log in plan.logs:
        span = spans.get(id(log.step)) if log.step is not None else None
        logger.emit(
            timestamp=log.time_ns,
            observed_timestamp=log.time_ns,
            context=trace.set_span_in_context(span) if span is not None else None,
            severity_number=_SEVERITY[log.severity],
            severity_text=log.severity,
            body=log.body,
            attributes=log.attributes,
            event_name=log.event_name,
        )


def _finish(span, step: Step) -> None:
    if step.error:
        span.set_status(Status(StatusCode.ERROR, step.error_message))
        span.add_event(
            "exception",
            {"exception.type": step.error, "exception.message": step.error_message or step.error},
            timestamp=step.end_ns,
        )
    span.end(end_time=step.end_ns)
