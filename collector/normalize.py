"""normalize: OTLP export requests -> canonical rows for the tables of store/schema.py.

Pure functions over one decoded request: no I/O, no clock (the receive time is an argument).
Output is column lists per table; JSON columns still hold Python objects so the redaction stage can
walk them before collector.pipeline encodes everything to Arrow.

Invalid items (bad id length, missing name, a data point without a value) are skipped and counted:
the caller answers with OTLP partial success and the valid items are stored.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from ragtrail.collector import semconv as sc
from ragtrail.store.schema import STAGES, TABLES, empty_columns

MAX_ERRORS_REPORTED = 5
_STAGE_SET = frozenset(STAGES)
_SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUS_CODES = ("UNSET", "OK", "ERROR")
_INDEXED_PREFIXES = tuple(sc.INDEXED_MESSAGE_PREFIXES) + tuple(sc.INDEXED_DOCUMENT_PREFIXES)
_INDEXED_KEY = re.compile("(" + "|".join(map(re.escape, _INDEXED_PREFIXES)) + r")(\d+)(?:\.(.*))?\Z", re.S)
# attribute key -> (column, priority): one pass over a span's attributes finds every scalar column.
_KEY_TO_COLUMN = {
    key: (column, priority)
    for column, keys in {**sc.SCALAR_KEYS, **sc.SECONDS_TO_MS_KEYS}.items()
    for priority, key in enumerate(keys)
}
_CONSUMED_SCALAR_KEYS = frozenset(
    [k for keys in sc.SCALAR_KEYS.values() for k in keys]
    + [k for keys in sc.SECONDS_TO_MS_KEYS.values() for k in keys]
    + list(sc.STAGE_KEYS)
    + [sc.SPAN_DOC_VERSION_KEY, sc.CITATIONS_KEY]
)

_INT64_MAX = 2**63 - 1


@dataclass
class Normalized:
    """The rows one request produced, and what was rejected."""

    tables: dict[str, dict[str, list]] = field(default_factory=dict)
    # Spans are built as row tuples (one append per span, not one per column) and turned into
    # columns once per request by finish(): the hot loop's cheapest shape in Python.
    span_rows: list[tuple] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def columns(self, table: str) -> dict[str, list]:
        cols = self.tables.get(table)
        if cols is None:
            cols = self.tables[table] = empty_columns(table)
        return cols

    def finish(self) -> Normalized:
        if self.span_rows:
            columns = self.columns("spans")
            for name, values in zip(_SPAN_ROW, zip(*self.span_rows, strict=True), strict=True):
                columns[name].extend(values)
            self.span_rows = []
        return self

    def reject(self, where: str, why: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS_REPORTED:
            self.errors.append(f"{where}: {why}")

    @property
    def message(self) -> str:
        if not self.rejected:
            return ""
        more = self.rejected - len(self.errors)
        return "; ".join(self.errors) + (f"; and {more} more" if more > 0 else "")


# --- values ------------------------------------------------------------------------------------------


def any_value(v) -> Any:
    """An OTLP AnyValue as a plain Python value (bytes become base64, as OTLP/JSON writes them)."""
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "int_value":
        return v.int_value
    if kind == "double_value":
        return v.double_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


def attributes(kvs) -> dict[str, Any]:
    out = {}
    for kv in kvs:
        v = kv.value
        # Most attribute values are strings: skip the generic path's call for them (hot loop).
        out[kv.key] = v.string_value if v.WhichOneof("value") == "string_value" else any_value(v)
    return out


def _first(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return value
    return None


def _scalars(attrs: dict[str, Any]) -> dict[str, Any]:
    """Column -> value for the scalar columns, the highest-priority convention winning."""
    found: dict[str, tuple[int, Any]] = {}
    for key, value in attrs.items():
        hit = _KEY_TO_COLUMN.get(key)
        if hit is not None and value is not None:
            column, priority = hit
            previous = found.get(column)
            if previous is None or priority < previous[0]:
                found[column] = (priority, value)
    return {column: value for column, (_, value) in found.items()}


def _as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _as_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes", "hit"}
    if isinstance(value, int | float):
        return bool(value)
    return None


def _as_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return str(value)


def _id_hex(raw: bytes, size: int) -> str | None:
    """Lowercase hex of a valid id, or None when it has the wrong length or is all zeros."""
    if len(raw) != size or not any(raw):
        return None
    return raw.hex()


class Resource:
    """The per-resource fields every row of that resource shares."""

    __slots__ = ("attrs", "service_name", "service_version", "environment", "host", "simulated")

    def __init__(self, resource) -> None:
        self.attrs = attributes(resource.attributes)
        self.service_name = _as_str(self.attrs.get(sc.RESOURCE_SERVICE))
        self.service_version = _as_str(self.attrs.get(sc.RESOURCE_SERVICE_VERSION))
        self.environment = _as_str(_first(self.attrs, sc.RESOURCE_ENVIRONMENT))
        self.host = _as_str(_first(self.attrs, sc.RESOURCE_HOST))
        self.simulated = bool(_as_bool(self.attrs.get(sc.RESOURCE_SIMULATED)))


# The spans row tuple _add_span builds, in this column order (checked against the schema below).
_SPAN_ROW = (
    "time",
    "end_time",
    "duration_ms",
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "service_name",
    "service_version",
    "environment",
    "scope_name",
    "stage",
    "span_kind",
    "status",
    "status_message",
    "model",
    "provider",
    "quantization",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_layer",
    "cache_hit",
    "variant",
    "route",
    "prompt_version",
    "fallback",
    "queue_ms",
    "ttft_ms",
    "session_id",
    "user_id",
    "error_type",
    "attributes",
    "events",
    "resource",
)

assert set(_SPAN_ROW) == set(TABLES["spans"].names), "normalize._SPAN_ROW out of step with the schema"

# --- traces ------------------------------------------------------------------------------------------


def classify_stage(attrs: dict[str, Any]) -> str:
    """Stage per shared/DESIGN.md: ragtrail.stage, OpenInference kind, GenAI operation, OpenLLMetry."""
    stage = attrs.get("ragtrail.stage")
    if isinstance(stage, str) and stage.lower() in _STAGE_SET:
        return stage.lower()
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str) and (found := sc.OPENINFERENCE_KIND_STAGE.get(kind.upper())):
        return found
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str) and (found := sc.GENAI_OPERATION_STAGE.get(op.lower())):
        return found
    tl = attrs.get("traceloop.span.kind")
    if isinstance(tl, str) and (found := sc.TRACELOOP_KIND_STAGE.get(tl.lower())):
        return found
    rt = attrs.get("llm.request.type")
    if isinstance(rt, str) and (found := sc.LLM_REQUEST_TYPE_STAGE.get(rt.lower())):
        return found
    return "other"


def normalize_traces(request, received_ns: int) -> Normalized:
    out = Normalized()
    for ri, rs in enumerate(request.resource_spans):
        res = Resource(rs.resource)
        for si, ss in enumerate(rs.scope_spans):
            scope_name = ss.scope.name or None
            for pi, span in enumerate(ss.spans):
                if _add_span(out, span, res, scope_name, (ri, si, pi)):
                    out.accepted += 1
    return out.finish()


def _add_span(
    out: Normalized, span, res: Resource, scope_name: str | None, index: tuple[int, int, int]
) -> bool:
    # The error location is only formatted for a rejected span (this runs for every span).
    where = "resource_spans[{}].scope_spans[{}].spans[{}]"
    trace_id = _id_hex(span.trace_id, 16)
    if trace_id is None:
        out.reject(where.format(*index), f"trace_id must be 16 non-zero bytes, got {len(span.trace_id)}")
        return False
    span_id = _id_hex(span.span_id, 8)
    if span_id is None:
        out.reject(where.format(*index), f"span_id must be 8 non-zero bytes, got {len(span.span_id)}")
        return False
    parent = span.parent_span_id
    if parent and len(parent) != 8:
        out.reject(where.format(*index), f"parent_span_id must be empty or 8 bytes, got {len(parent)}")
        return False
    if not span.name:
        out.reject(where.format(*index), "name is required")
        return False

    start_us = span.start_time_unix_nano // 1000
    end_ns = span.end_time_unix_nano or span.start_time_unix_nano
    attrs = attributes(span.attributes)
    stage = classify_stage(attrs)
    ctx = _SpanContext(out, trace_id, span_id, start_us, res.service_name)

    events = []
    for ev in span.events:
        ev_attrs = attributes(ev.attributes)
        if ctx.take_event(ev.name, ev_attrs, stage):
            continue
        events.append({"name": ev.name, "time_unix_nano": ev.time_unix_nano, "attributes": ev_attrs})
    if span.links:
        attrs_links = [
            {
                "trace_id": ln.trace_id.hex(),
                "span_id": ln.span_id.hex(),
                "attributes": attributes(ln.attributes),
            }
            for ln in span.links
        ]
    else:
        attrs_links = None

    add_scores(out, trace_id, span_id, start_us, res.service_name, attrs, stage)
    for ev in events:
        if ev["name"] == sc.EVALUATION_EVENT:
            ev_us = ev["time_unix_nano"] // 1000 or start_us
            add_scores(out, trace_id, span_id, ev_us, res.service_name, ev["attributes"], "evaluate")
    unknown = ctx.take_attributes(attrs, stage)
    if attrs_links:
        unknown["otel.links"] = attrs_links
    sv = _scalars(attrs)
    error_type = _as_str(sv.get("error_type"))
    if error_type is None:
        for ev in events:
            if ev["name"] == "exception":
                error_type = _as_str(ev["attributes"].get("exception.type"))
                break

    def ms(column):
        seconds = _as_float(sv.get(column))
        return None if seconds is None else seconds * 1000.0

    code = span.status.code
    out.span_rows.append(
        (
            start_us,  # time
            end_ns // 1000,  # end_time
            max(0, end_ns - span.start_time_unix_nano) / 1e6,  # duration_ms
            trace_id,  # trace_id
            span_id,  # span_id
            parent.hex() if parent and any(parent) else None,  # parent_span_id
            span.name,  # name
            res.service_name,  # service_name
            res.service_version,  # service_version
            res.environment,  # environment
            scope_name,  # scope_name
            stage,  # stage
            _SPAN_KINDS[span.kind] if 0 <= span.kind < len(_SPAN_KINDS) else str(span.kind),  # span_kind
            _STATUS_CODES[code] if 0 <= code < len(_STATUS_CODES) else str(code),  # status
            span.status.message or None,  # status_message
            _as_str(sv.get("model")),  # model
            _as_str(sv.get("provider")),  # provider
            _as_str(sv.get("quantization")),  # quantization
            _as_int(sv.get("input_tokens")),  # input_tokens
            _as_int(sv.get("output_tokens")),  # output_tokens
            _as_int(sv.get("cache_read_tokens")),  # cache_read_tokens
            _as_str(sv.get("cache_layer")),  # cache_layer
            _as_bool(sv.get("cache_hit")),  # cache_hit
            _as_str(sv.get("variant")),  # variant
            _as_str(sv.get("route")),  # route
            _as_str(sv.get("prompt_version")),  # prompt_version
            _as_bool(sv.get("fallback")),  # fallback
            ms("queue_ms"),  # queue_ms
            ms("ttft_ms"),  # ttft_ms
            _as_str(sv.get("session_id")),  # session_id
            _as_str(sv.get("user_id")),  # user_id
            error_type,  # error_type
            unknown or None,  # attributes
            events or None,  # events
            res.attrs or None,  # resource
        )
    )
    return True


def add_scores(
    out: Normalized,
    trace_id: str | None,
    span_id: str | None,
    time_us: int,
    service: str | None,
    attrs: dict[str, Any],
    stage: str,
) -> None:
    """Client scores -> quality rows: evaluation results (GenAI, OpenInference eval.*) and guardrail
    verdicts. The attributes stay where they were too: nothing a client sent is thrown away."""
    rows = []
    metric = _as_str(_first(attrs, sc.EVALUATION_KEYS["metric"]))
    if metric or (stage == "evaluate" and _first(attrs, sc.EVALUATION_KEYS["score"]) is not None):
        metric = metric or "evaluation"
        evaluator = _as_str(_first(attrs, sc.EVALUATION_KEYS["evaluator"]))
        if evaluator is None:
            evaluator = "user" if metric in sc.FEEDBACK_METRICS else service
        rows.append((metric, _as_float(_first(attrs, sc.EVALUATION_KEYS["score"])),
                     _as_str(_first(attrs, sc.EVALUATION_KEYS["label"])), evaluator,
                     _as_str(_first(attrs, sc.EVALUATION_KEYS["explanation"]))))  # fmt: skip
    outcome = _as_str(attrs.get(sc.GUARDRAIL_OUTCOME_KEY))
    if outcome:
        direction = _as_str(attrs.get(sc.GUARDRAIL_DIRECTION_KEY))
        rows.append(("guardrail", 1.0 if outcome.lower() in sc.GUARDRAIL_PASS else 0.0, outcome,
                     f"guardrail.{direction}" if direction else "guardrail",
                     _as_str(attrs.get(sc.GUARDRAIL_REASON_KEY))))  # fmt: skip
    if not rows:
        return
    c = out.columns("quality")
    for metric, score, label, evaluator, explanation in rows:
        c["time"].append(time_us)
        c["trace_id"].append(trace_id)
        c["span_id"].append(span_id)
        c["metric"].append(metric)
        c["score"].append(score)
        c["label"].append(label)
        c["evaluator"].append(evaluator)
        c["explanation"].append(explanation)
        c["service_name"].append(service)


class _SpanContext:
    """Routes one span's text and documents into the content and documents tables."""

    __slots__ = ("out", "trace_id", "span_id", "time", "service", "seq", "doc_version")

    def __init__(self, out: Normalized, trace_id: str, span_id: str, time_us: int, service: str | None):
        self.out = out
        self.trace_id = trace_id
        self.span_id = span_id
        self.time = time_us
        self.service = service
        self.seq: dict[str, int] = {}
        self.doc_version: str | None = None

    def text(self, role: str, field_name: str, value: Any) -> None:
        text = value if isinstance(value, str) else _as_str(value)
        if not text:
            return
        seq = self.seq.get(role, 0)
        self.seq[role] = seq + 1
        c = self.out.columns("content")
        c["time"].append(self.time)
        c["trace_id"].append(self.trace_id)
        c["span_id"].append(self.span_id)
        c["role"].append(role)
        c["seq"].append(seq)
        c["field"].append(field_name)
        c["text"].append(text)
        c["pii"].append(None)
        c["redaction"].append("off")
        c["service_name"].append(self.service)

    def document(self, stage: str, rank: int, doc: dict[str, Any]) -> None:
        metadata = doc.get("metadata")
        if isinstance(metadata, str):
            try:
                metadata = orjson.loads(metadata)
            except orjson.JSONDecodeError:
                metadata = None
        if not isinstance(metadata, dict):
            metadata = {}
        doc_id = _as_str(doc.get("id") or metadata.get("id") or metadata.get("doc_id"))
        version = doc.get("version") or metadata.get("version") or metadata.get("doc_version")
        c = self.out.columns("documents")
        c["time"].append(self.time)
        c["trace_id"].append(self.trace_id)
        c["span_id"].append(self.span_id)
        c["stage"].append(stage)
        c["doc_id"].append(doc_id)
        c["doc_version"].append(_as_str(version) or self.doc_version)
        c["rank"].append(rank)
        c["score"].append(_as_float(doc.get("score")))
        c["uri"].append(_as_str(doc.get("uri") or metadata.get("uri") or metadata.get("source")))
        c["service_name"].append(self.service)
        if doc.get("content"):
            self.text("document", f"{stage}.documents.{rank}", doc["content"])

    def take_event(self, name: str, attrs: dict[str, Any], stage: str) -> bool:
        """Consume GenAI content events and OpenLLMetry db.query.result events; True if consumed."""
        role = sc.CONTENT_EVENTS.get(name)
        if role is not None:
            text = _first(attrs, sc.CONTENT_EVENT_TEXT_KEYS)
            if isinstance(text, dict):  # gen_ai.choice: {"message": {"content": ...}}
                text = text.get("content") or text
            self.text(role, name, text)
            return True
        if name == sc.DB_QUERY_RESULT_EVENT:
            rank = self.seq.get("_dbq", 0)
            self.seq["_dbq"] = rank + 1
            doc = {k.removeprefix("db.query.result."): v for k, v in attrs.items()}
            if doc.get("score") is None and doc.get("distance") is not None:
                doc["score"] = doc["distance"]
            doc["content"] = doc.pop("document", None)
            self.document("retrieve", rank, doc)
            return True
        return False

    def take_attributes(self, attrs: dict[str, Any], stage: str) -> dict[str, Any]:
        """Move text and documents out of ``attrs``; return the attributes no column consumed."""
        self.doc_version = _as_str(attrs.get(sc.SPAN_DOC_VERSION_KEY))
        unknown: dict[str, Any] = {}
        indexed: dict[str, dict[int, dict[str, Any]]] = {}
        for key, value in attrs.items():
            route = _routes.get(key) or _route(key)
            kind = route[0]
            if kind == _CONSUMED:
                continue
            if kind == _INDEXED:
                indexed.setdefault(route[1], {}).setdefault(route[2], {})[route[3]] = value
            elif kind == _TEXT:
                role = route[1]
                if stage == "tool" and role in ("prompt", "response"):
                    role = "tool"
                self.text(role, key, value)
            elif kind == _MESSAGES:
                self._message_list(key, value)
            elif kind == _DOCUMENTS:
                self._document_list("retrieve", value)
            else:
                unknown[key] = value
        for prefix, items in indexed.items():
            self._indexed(prefix, items)
        citations = attrs.get(sc.CITATIONS_KEY)
        if isinstance(citations, str):
            citations = [x.strip() for x in citations.split(",") if x.strip()]
        if isinstance(citations, list):
            for rank, doc_id in enumerate(citations):
                self.document("cite", rank, {"id": doc_id})
        return unknown

    def _indexed(self, prefix: str, items: dict[int, dict[str, Any]]) -> None:
        stage = sc.INDEXED_DOCUMENT_PREFIXES.get(prefix)
        if stage is not None:
            for rank in sorted(items):
                fields = items[rank]
                self.document(stage, rank, {k.removeprefix("document."): v for k, v in fields.items()})
            return
        direction = sc.INDEXED_MESSAGE_PREFIXES[prefix]
        for i in sorted(items):
            fields = items[i]
            role_name = fields.get("message.role") or fields.get("role")
            for key, value in fields.items():
                if key.endswith(("content", "text")) or key == "":
                    self.text(_message_role(role_name, direction), f"{prefix}{i}.{key}".rstrip("."), value)

    def _message_list(self, key: str, value: Any) -> None:
        direction = sc.MESSAGE_LIST_KEYS[key]
        messages = _json_list(value)
        if messages is None:
            self.text("prompt" if direction == "input" else "response", key, value)
            return
        for msg in messages:
            if not isinstance(msg, dict):
                continue
            role = _message_role(msg.get("role"), direction)
            parts = msg.get("parts")
            if isinstance(parts, list):
                for part in parts:
                    if isinstance(part, dict):
                        self.text(
                            role, key, part.get("content") or part.get("result") or part.get("arguments")
                        )
            else:
                self.text(role, key, msg.get("content"))

    def _document_list(self, stage: str, value: Any) -> None:
        docs = _json_list(value)
        for rank, doc in enumerate(docs or []):
            if isinstance(doc, dict):
                self.document(stage, rank, doc)


def _json_list(value: Any) -> list | None:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value if isinstance(value, list) else None


def _message_role(role: Any, direction: str) -> str:
    if isinstance(role, str) and (mapped := sc.MESSAGE_ROLE_MAP.get(role.lower())):
        if direction == "input" and mapped == "response":
            return "prompt"  # earlier assistant turns replayed as input are part of the prompt
        return mapped
    return "prompt" if direction == "input" else "response"


# Where take_attributes sends an attribute key, decided once per distinct key: keys repeat from span
# to span, and testing each against every convention (prefixes, a regex) was a large share of
# normalize's time. The memo is bounded: a client inventing keys cannot grow it without limit.
_CONSUMED, _TEXT, _MESSAGES, _INDEXED, _DOCUMENTS, _UNKNOWN = range(6)
_ROUTES_MAX = 1 << 16
_routes: dict[str, tuple] = {}


def _route(key: str) -> tuple:
    """(kind, ...) for ``key``: (_TEXT, role), (_INDEXED, prefix, index, rest), else (kind,)."""
    if key in _CONSUMED_SCALAR_KEYS:
        route: tuple = (_CONSUMED,)
    elif (role := sc.TEXT_KEYS.get(key)) is not None:
        route = (_TEXT, role)
    elif key in sc.MESSAGE_LIST_KEYS:
        route = (_MESSAGES,)
    elif key.startswith(_INDEXED_PREFIXES):
        # "retrieval.documents.3.document.id" -> ("retrieval.documents.", 3, "document.id")
        m = _INDEXED_KEY.match(key)
        route = (_INDEXED, m.group(1), int(m.group(2)), m.group(3) or "") if m else (_UNKNOWN,)
    elif key == "gen_ai.retrieval.documents":
        route = (_DOCUMENTS,)
    else:
        route = (_UNKNOWN,)
    if len(key) <= 256:
        if len(_routes) >= _ROUTES_MAX:
            _routes.clear()
        _routes[key] = route
    return route


# --- metrics -----------------------------------------------------------------------------------------

_TEMPORALITY = {1: "delta", 2: "cumulative"}


def normalize_metrics(request, received_ns: int) -> Normalized:
    out = Normalized()
    for ri, rm in enumerate(request.resource_metrics):
        res = Resource(rm.resource)
        for si, sm in enumerate(rm.scope_metrics):
            scope_name = sm.scope.name or None
            for mi, metric in enumerate(sm.metrics):
                _add_metric(
                    out, metric, res, scope_name, f"resource_metrics[{ri}].scope_metrics[{si}].metrics[{mi}]"
                )
    return out


def _add_metric(out: Normalized, metric, res: Resource, scope_name: str | None, where: str) -> None:
    kind = metric.WhichOneof("data")
    data = getattr(metric, kind) if kind else None
    points = list(data.data_points) if data is not None else []
    if not metric.name:
        for _ in points or [None]:
            out.reject(where, "metric name is required")
        return
    if kind is None:
        out.reject(where, f"metric {metric.name!r} has no data")
        return
    temporality = _TEMPORALITY.get(getattr(data, "aggregation_temporality", 0))
    monotonic = getattr(data, "is_monotonic", None) if kind == "sum" else None
    gpu_map = sc.GPU_METRICS.get(metric.name) or sc.GPU_GENERIC_METRICS.get(metric.name)
    c = out.columns("metrics")
    for di, dp in enumerate(points):
        value = count = total = lo = hi = buckets = None
        if kind in ("gauge", "sum"):
            which = dp.WhichOneof("value")
            if which is None:
                out.reject(f"{where}.data_points[{di}]", f"{metric.name!r}: number data point has no value")
                continue
            value = float(getattr(dp, which))
        elif kind == "histogram":
            count, total = dp.count, (dp.sum if dp.HasField("sum") else None)
            lo = dp.min if dp.HasField("min") else None
            hi = dp.max if dp.HasField("max") else None
            buckets = {"bounds": list(dp.explicit_bounds), "counts": list(dp.bucket_counts)}
        elif kind == "exponential_histogram":
            count, total = dp.count, (dp.sum if dp.HasField("sum") else None)
            lo = dp.min if dp.HasField("min") else None
            hi = dp.max if dp.HasField("max") else None
            buckets = {
                "scale": dp.scale,
                "zero_count": dp.zero_count,
                "positive": {"offset": dp.positive.offset, "counts": list(dp.positive.bucket_counts)},
                "negative": {"offset": dp.negative.offset, "counts": list(dp.negative.bucket_counts)},
            }
        elif kind == "summary":
            count, total = dp.count, dp.sum
            buckets = {"quantiles": [[q.quantile, q.value] for q in dp.quantile_values]}
        if count is not None and count > _INT64_MAX:  # uint64 on the wire, BIGINT in the store
            out.reject(f"{where}.data_points[{di}]", f"{metric.name!r}: count {count} exceeds 2^63-1")
            continue
        attrs = attributes(dp.attributes)
        time_us = (dp.time_unix_nano or 0) // 1000
        c["time"].append(time_us)
        c["start_time"].append(dp.start_time_unix_nano // 1000 if dp.start_time_unix_nano else None)
        c["name"].append(metric.name)
        c["description"].append(metric.description or None)
        c["unit"].append(metric.unit or None)
        c["type"].append(kind)
        c["temporality"].append(temporality)
        c["monotonic"].append(monotonic)
        c["value"].append(value)
        c["count"].append(count)
        c["sum"].append(total)
        c["min"].append(lo)
        c["max"].append(hi)
        c["buckets"].append(buckets)
        c["attributes"].append(attrs or None)
        c["resource"].append(res.attrs or None)
        c["service_name"].append(res.service_name)
        c["scope_name"].append(scope_name)
        out.accepted += 1
        if gpu_map is not None and value is not None:
            _add_gpu_reading(out, metric.name, gpu_map, value, attrs, res, time_us)
        elif (
            metric.name == sc.GPU_OOM_METRIC
            and value is not None
            and str(attrs.get("error.type")) in sc.GPU_OOM_ERROR_TYPES
        ):
            _add_gpu_reading(out, metric.name, ("ooms", 1.0), value, attrs, res, time_us)


def _add_gpu_reading(out, name, gpu_map, value, attrs, res: Resource, time_us: int) -> None:
    if name in sc.GPU_GENERIC_METRICS and attrs.get("hw.type") != "gpu":
        return
    column, scale = gpu_map
    g = out.columns("gpu")
    for col in TABLES["gpu"].names:
        g[col].append(None)
    g["time"][-1] = time_us
    g["host"][-1] = _as_str(_first(attrs, sc.GPU_HOST_KEYS)) or res.host
    g["gpu_id"][-1] = _as_str(_first(attrs, sc.GPU_ID_KEYS))
    g["gpu_name"][-1] = _as_str(_first(attrs, sc.GPU_NAME_KEYS))
    g[column][-1] = value * scale
    g["simulated"][-1] = res.simulated
    g["service_name"][-1] = res.service_name


# --- logs --------------------------------------------------------------------------------------------


def normalize_logs(request, received_ns: int) -> Normalized:
    out = Normalized()
    c = None
    for ri, rl in enumerate(request.resource_logs):
        res = Resource(rl.resource)
        for si, sl in enumerate(rl.scope_logs):
            scope_name = sl.scope.name or None
            for li, rec in enumerate(sl.log_records):
                where = f"resource_logs[{ri}].scope_logs[{si}].log_records[{li}]"
                trace_id = span_id = None
                if rec.trace_id:
                    trace_id = _id_hex(rec.trace_id, 16)
                    if trace_id is None:
                        out.reject(where, f"trace_id must be empty or 16 bytes, got {len(rec.trace_id)}")
                        continue
                if rec.span_id:
                    span_id = _id_hex(rec.span_id, 8)
                    if span_id is None:
                        out.reject(where, f"span_id must be empty or 8 bytes, got {len(rec.span_id)}")
                        continue
                observed = rec.observed_time_unix_nano or received_ns
                body = any_value(rec.body) if rec.HasField("body") else None
                c = c or out.columns("logs")
                c["time"].append((rec.time_unix_nano or observed) // 1000)
                c["observed_time"].append(observed // 1000)
                c["trace_id"].append(trace_id)
                c["span_id"].append(span_id)
                c["severity"].append(rec.severity_text or _severity_name(rec.severity_number))
                c["severity_number"].append(rec.severity_number or None)
                c["body"].append(_as_str(body))
                c["event_name"].append(getattr(rec, "event_name", "") or None)
                attrs = attributes(rec.attributes)
                if getattr(rec, "event_name", "") == sc.EVALUATION_EVENT or any(
                    k in attrs for k in sc.EVALUATION_KEYS["metric"]
                ):
                    time_us = (rec.time_unix_nano or observed) // 1000
                    add_scores(out, trace_id, span_id, time_us, res.service_name, attrs, "evaluate")
                c["attributes"].append(attrs or None)
                c["resource"].append(res.attrs or None)
                c["service_name"].append(res.service_name)
                c["scope_name"].append(scope_name)
                out.accepted += 1
    return out


def _severity_name(number: int) -> str | None:
    if not number:
        return None
    names = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
    base = names[min((number - 1) // 4, 5)]
    step = (number - 1) % 4
    return base if step == 0 else f"{base}{step + 1}"


NORMALIZERS = {"traces": normalize_traces, "metrics": normalize_metrics, "logs": normalize_logs}
