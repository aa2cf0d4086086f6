"""OTLP encodings: protobuf and JSON behind one interface, plus gzip.

Transports call ``decode``/``encode_response``/``encode_status`` and never branch on the encoding
themselves. OTLP/JSON differs from protobuf's canonical JSON in one way that matters: trace and span
ids are hex, not base64; ``_hex_ids_to_base64`` bridges that before ``json_format`` parses.
"""

from __future__ import annotations

import base64
import binascii
import enum
import gzip
import zlib

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from ragtrail.collector.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType


class Format(enum.Enum):
    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"


# signal -> (request type, response type, partial-success counter field)
SIGNALS = {
    "traces": (
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
        "rejected_spans",
    ),
    "metrics": (
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
        "rejected_data_points",
    ),
    "logs": (
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
        "rejected_log_records",
    ),
}
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})
_INVALID_ID = base64.b64encode(b"\x00").decode()  # wrong length on purpose: normalize rejects the item


def content_format(content_type: str | None) -> Format:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in ("application/x-protobuf", "application/protobuf"):
        return Format.PROTOBUF
    if media == "application/json":
        return Format.JSON
    raise UnsupportedMediaType(
        f"unsupported content type {media or '(none)'!r}; use application/x-protobuf or application/json"
    )


def decompress(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise UnsupportedMediaType(f"unsupported content encoding {encoding!r}; use gzip or identity")
    try:
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        out = d.decompress(body, limit + 1)
        if len(out) > limit or d.unconsumed_tail:
            raise PayloadTooLarge(f"decompressed body exceeds {limit} bytes")
        if not d.eof:
            raise BadRequest("gzip body is truncated")
        return out
    except (zlib.error, gzip.BadGzipFile, EOFError) as exc:
        raise BadRequest(f"gzip body could not be decompressed: {exc}") from None


def decode(signal: str, body: bytes, fmt: Format):
    request_type = SIGNALS[signal][0]
    request = request_type()
    if fmt is Format.PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise BadRequest(f"body is not a valid protobuf {request_type.__name__}: {exc}") from None
        return request
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest(f"JSON body must be an object ({request_type.__name__}), got {type(doc).__name__}")
    _hex_ids_to_base64(doc)
    try:
        json_format.ParseDict(doc, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise BadRequest(f"JSON does not match {request_type.__name__}: {exc}") from None
    return request


def _hex_ids_to_base64(node) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                node[key] = _hex_to_b64(value)
            elif isinstance(value, dict | list):
                _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _hex_ids_to_base64(item)


def _hex_to_b64(value: str) -> str:
    if not value:
        return ""
    try:
        return base64.b64encode(binascii.unhexlify(value)).decode()
    except (binascii.Error, ValueError):
        return _INVALID_ID


def encode_response(signal: str, fmt: Format, rejected: int = 0, message: str = "") -> bytes:
    _, response_type, counter = SIGNALS[signal]
    response = response_type()
    if rejected or message:
        setattr(response.partial_success, counter, rejected)
        response.partial_success.error_message = message
    if fmt is Format.JSON:
        return json_format.MessageToJson(response, indent=None).encode()
    return response.SerializeToString()


def encode_status(fmt: Format | None, code: int, message: str) -> tuple[bytes, str]:
    """A google.rpc.Status body for an error reply, in the request's encoding (JSON if unknown)."""
    status = status_pb2.Status(code=code, message=message)
    if fmt is Format.PROTOBUF:
        return status.SerializeToString(), Format.PROTOBUF.value
    return json_format.MessageToJson(status, indent=None).encode(), Format.JSON.value
