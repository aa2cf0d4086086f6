"""OTLP/gRPC transport: TraceService, MetricsService and LogsService on one grpcio server.

The handlers take the request as raw bytes (no deserializer) so the same pipeline as OTLP/HTTP
decodes it, possibly in a worker process; grpcio handles gzip and message-size limits itself.
"""

from __future__ import annotations

import logging
import time
from concurrent import futures

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo

from ragtrail.collector.encoding import Format, encode_response
from ragtrail.collector.errors import CollectorError, as_collector_error
from ragtrail.collector.ingest import Ingest

log = logging.getLogger("ragtrail.grpc")

SERVICES = {
    "opentelemetry.proto.collector.trace.v1.TraceService": "traces",
    "opentelemetry.proto.collector.metrics.v1.MetricsService": "metrics",
    "opentelemetry.proto.collector.logs.v1.LogsService": "logs",
}


def _handler(ingest: Ingest, signal: str):
    def export(body: bytes, context: grpc.ServicerContext) -> bytes:
        started = time.monotonic()  # the request deadline counts from here (collector/ingest.py)
        try:
            metadata = dict(context.invocation_metadata())
            ingest.authorize(metadata.get("authorization"))
            result = ingest.export(signal, body, Format.PROTOBUF, None, started)
            return encode_response(signal, Format.PROTOBUF, result.rejected, result.message)
        except Exception as exc:  # every failure becomes a gRPC status here, and only here
            err = as_collector_error(exc)
            if type(err) is CollectorError:
                log.exception("unexpected error in %s export", signal)
            if err.retry_after:  # gRPC's Retry-After: OTel exporters wait this long before retrying
                info = RetryInfo(retry_delay=Duration(seconds=err.retry_after))
                context.set_trailing_metadata([("google.rpc.retryinfo-bin", info.SerializeToString())])
            context.abort(err.grpc_code, str(err))

    return grpc.unary_unary_rpc_method_handler(export)  # raw bytes in and out


def make_server(
    ingest: Ingest, host: str, port: int, max_message_bytes: int, tls: tuple[bytes, bytes] | None
):
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=256,  # beyond this grpcio answers RESOURCE_EXHAUSTED
    )
    handlers = [
        grpc.method_handlers_generic_handler(service, {"Export": _handler(ingest, signal)})
        for service, signal in SERVICES.items()
    ]
    server.add_generic_rpc_handlers(handlers)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if tls:
        key, cert = tls
        bound = server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
    else:
        bound = server.add_insecure_port(address)
    if not bound:
        raise OSError(f"could not bind gRPC on {address}")
    return server
