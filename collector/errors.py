"""Every failure the collector can answer with, translated to HTTP and gRPC in exactly one place.

Retryable errors (overload, storage trouble) map to the codes OTel exporters retry: HTTP 503 with
Retry-After, gRPC UNAVAILABLE. Permanent ones (bad input) map to 4xx / INVALID_ARGUMENT so clients
drop the batch instead of retrying it forever. Messages say what was wrong and never echo content.
"""

from __future__ import annotations

import grpc


class CollectorError(Exception):
    http_status = 500
    grpc_code = grpc.StatusCode.INTERNAL
    retry_after: int | None = None  # seconds; the class default unless the raiser knows better

    def __init__(self, message: str = "", *, retry_after: int | None = None):
        super().__init__(message)
        if retry_after is not None:
            self.retry_after = retry_after


class BadRequest(CollectorError):
    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class Unauthorized(CollectorError):
    http_status = 401
    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class NotFound(CollectorError):
    http_status = 404
    grpc_code = grpc.StatusCode.UNIMPLEMENTED


class MethodNotAllowed(CollectorError):
    http_status = 405
    grpc_code = grpc.StatusCode.UNIMPLEMENTED


class PayloadTooLarge(CollectorError):
    http_status = 413
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnsupportedMediaType(CollectorError):
    http_status = 415
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class Overloaded(CollectorError):
    """Queues are full: the client should back off and retry."""

    http_status = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE
    retry_after = 1


class StorageUnavailable(CollectorError):
    """The WAL could not be written or synced (disk full, read-only): retry later."""

    http_status = 503
    grpc_code = grpc.StatusCode.UNAVAILABLE
    retry_after = 5


def as_collector_error(exc: BaseException) -> CollectorError:
    if isinstance(exc, CollectorError):
        return exc
    if isinstance(exc, OSError):
        return StorageUnavailable(f"storage error: {exc.strerror or type(exc).__name__}")
    return CollectorError(f"internal error: {type(exc).__name__}")
