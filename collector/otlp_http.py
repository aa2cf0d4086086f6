"""OTLP/HTTP transport: a bare ASGI app served by uvicorn (httptools parser, uvloop).

Routes: POST /v1/traces, /v1/metrics, /v1/logs (protobuf or JSON, optional gzip); GET /healthz.
We chose a raw ASGI callable over a framework: the OTLP surface is four routes, and skipping the
routing/middleware layers keeps per-request overhead to a dict lookup (bench/ingest.py measures it).
"""

from __future__ import annotations

import logging
import time

from ragtrail.collector import encoding
from ragtrail.collector.errors import (
    BadRequest,
    CollectorError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    as_collector_error,
)
from ragtrail.collector.ingest import Ingest

log = logging.getLogger("ragtrail.http")

ROUTES = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}
_GRPC_CODE_NUMBER = {code: code.value[0] for code in __import__("grpc").StatusCode}


class OtlpHttpApp:
    def __init__(self, ingest: Ingest, max_body_bytes: int, health: callable):
        self.ingest = ingest
        self.max_body = max_body_bytes
        self.health = health

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if path in ("/healthz", "/readyz") and method in ("GET", "HEAD"):
            ok, detail = self.health()
            await _reply(send, 200 if ok else 503, detail.encode(), "text/plain")
            return
        fmt = None
        started = time.monotonic()  # the request deadline counts from here (collector/ingest.py)
        try:
            signal = ROUTES.get(path)
            if signal is None:
                raise NotFound(
                    f"no such endpoint {path!r}; OTLP/HTTP serves /v1/traces, /v1/metrics, /v1/logs"
                )
            if method != "POST":
                raise MethodNotAllowed(f"{method} not allowed on {path}; use POST")
            self.ingest.authorize(headers.get("authorization"))
            fmt = encoding.content_format(headers.get("content-type"))
            body = await self._read_body(headers, receive)
            result = await self.ingest.export_async(
                signal, body, fmt, headers.get("content-encoding"), started
            )
            reply = encoding.encode_response(signal, fmt, result.rejected, result.message)
            await _reply(send, 200, reply, fmt.value)
        except Exception as exc:  # every failure becomes an OTLP status here, and only here
            err = as_collector_error(exc)
            if type(err) is CollectorError:
                log.exception("unexpected error on %s", path)
            status_body, media = encoding.encode_status(fmt, _GRPC_CODE_NUMBER[err.grpc_code], str(err))
            extra = [(b"retry-after", str(err.retry_after).encode())] if err.retry_after else []
            await _reply(send, err.http_status, status_body, media, extra)

    async def _read_body(self, headers: dict[str, str], receive) -> bytes:
        declared = headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > self.max_body:
                    raise PayloadTooLarge(f"body of {declared} bytes exceeds the {self.max_body}-byte limit")
            except ValueError:
                raise BadRequest("invalid Content-Length") from None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadRequest("client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise PayloadTooLarge(f"body exceeds the {self.max_body}-byte limit")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)


async def _reply(send, status: int, body: bytes, media: str, extra_headers=()) -> None:
    headers = [
        (b"content-type", media.encode()),
        (b"content-length", str(len(body)).encode()),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
