"""The transport-independent ingest path: admission control -> pipeline -> WAL -> acknowledgement.

Both transports (otlp_http, otlp_grpc) hand a raw body here and get back what to answer. This is
where "acknowledged means durable" is enforced: ``export`` returns only after the WAL future has
resolved, i.e. after fsync. Admission is bounded by bytes in flight, so memory cannot grow without
limit under overload; the excess is refused with a retryable error.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor

from ragtrail.collector.encoding import Format
from ragtrail.collector.errors import Overloaded, Unauthorized
from ragtrail.collector.pipeline import Processed, process_export
from ragtrail.collector.wal import WriteAheadLog


class Ingest:
    def __init__(
        self,
        wal: WriteAheadLog,
        *,
        token: str | None,
        max_decompressed: int,
        max_inflight_bytes: int,
        executor: Executor | None = None,
        admission_wait: float = 0.0,
        deadline: float = 4.0,
    ):
        self.wal = wal
        self._token = token.encode() if token else None
        self._max_decompressed = max_decompressed
        self._max_inflight = max_inflight_bytes
        self._inflight = 0
        self._lock = threading.Lock()
        self._executor = executor
        # Without worker processes the pipeline runs on this one thread, never on the event loop:
        # a loop busy with CPU work stops reading sockets, so under overload requests queued
        # *before* the handler (where the deadline cannot see them), outlived their clients'
        # timeouts and were committed anyway, then stored again from the retry.
        self._pipeline_thread = None if executor else ThreadPoolExecutor(1, thread_name_prefix="pipeline")
        self._admission_wait = admission_wait
        self._deadline = deadline
        self.counters = {"accepted": 0, "rejected": 0, "refused": 0, "expired": 0}

    def authorize(self, header: str | None) -> None:
        """Check ``Authorization: Bearer <token>`` (HTTP header or gRPC metadata)."""
        if self._token is None:
            return
        scheme, _, credential = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(), self._token):
            raise Unauthorized("missing or invalid bearer token")

    def _admit(self, size: int) -> None:
        with self._lock:
            if self._inflight + size > self._max_inflight:
                self.counters["refused"] += 1
                raise Overloaded("too much data in flight; retry later")
            self._inflight += size

    def _check_deadline(self, started: float) -> None:
        """Refuse a request that has waited too long inside the collector (a backlog under
        overload): its client is about to time out and send it again, and committing it now would
        store it twice. Refused, it is stored once, from the retry."""
        waited = time.monotonic() - started
        if waited > self._deadline:
            with self._lock:
                self.counters["expired"] += 1
                self.counters["refused"] += 1
            raise Overloaded(
                f"request waited {waited:.1f}s in the collector (limit {self._deadline:g}s); retry later"
            )

    def _done(self, size: int, result: Processed | None) -> None:
        with self._lock:
            self._inflight -= size
            if result is not None:
                self.counters["accepted"] += result.accepted
                self.counters["rejected"] += result.rejected

    def export(
        self,
        signal: str,
        body: bytes,
        fmt: Format,
        content_encoding: str | None,
        started: float | None = None,
    ) -> Processed:
        """Blocking form, for the gRPC thread pool. ``started``: time.monotonic() at arrival."""
        started = time.monotonic() if started is None else started
        self._admit(len(body))
        result = None
        try:
            self._check_deadline(started)
            args = (signal, body, fmt, content_encoding, time.time_ns(), self._max_decompressed)
            result = (
                self._executor.submit(process_export, *args).result()
                if self._executor
                else process_export(*args)
            )
            if result.payload is not None:
                self._check_deadline(started)
                self.wal.append(result.payload, self._admission_wait).result()
            return result
        finally:
            self._done(len(body), result)

    def _process_if_in_time(self, started: float, args: tuple) -> Processed:
        self._check_deadline(started)  # it may have queued for the pipeline: don't spend CPU on it
        return process_export(*args)

    def close(self) -> None:
        if self._pipeline_thread is not None:
            self._pipeline_thread.shutdown(wait=False, cancel_futures=True)

    async def export_async(
        self,
        signal: str,
        body: bytes,
        fmt: Format,
        content_encoding: str | None,
        started: float | None = None,
    ) -> Processed:
        """Event-loop form, for the HTTP server: CPU work inline or in the pool, fsync awaited."""
        started = time.monotonic() if started is None else started
        self._admit(len(body))
        result = None
        try:
            self._check_deadline(started)
            args = (signal, body, fmt, content_encoding, time.time_ns(), self._max_decompressed)
            if self._executor is not None:
                result = await asyncio.get_running_loop().run_in_executor(
                    self._executor, process_export, *args
                )
            else:
                result = await asyncio.get_running_loop().run_in_executor(
                    self._pipeline_thread, self._process_if_in_time, started, args
                )
            if result.payload is not None:
                self._check_deadline(started)
                if self.wal.has_room(len(result.payload)):
                    committed = self.wal.append(result.payload)
                else:  # full: wait for space off the event loop, then maybe refuse
                    append = functools.partial(self.wal.append, result.payload, self._admission_wait)
                    committed = await asyncio.get_running_loop().run_in_executor(None, append)
                await asyncio.wrap_future(committed)
            return result
        finally:
            self._done(len(body), result)
