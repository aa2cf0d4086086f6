"""The transport-independent ingest path: admission control -> pipeline -> WAL -> acknowledgement.

Both transports (otlp_http, otlp_grpc) hand a raw body here and get back what to answer. This is
where "acknowledged means durable" is enforced: ``export`` returns only after the WAL future has
resolved, i.e. after fsync. Admission is bounded by bytes in flight, so memory cannot grow without
limit under overload; the excess is refused with a retryable error.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from concurrent.futures import Executor, ThreadPoolExecutor

from ragtrail.collector.encoding import Format
from ragtrail.collector.errors import Overloaded, Unauthorized
from ragtrail.collector.pipeline import Processed, process_export
from ragtrail.collector.wal import WriteAheadLog


class RecentRequests:
    """Retries are idempotent: a request whose exact bytes were stored in the last ``window``
    seconds is acknowledged again, with the first reply, and not stored twice.

    OTel exporters resend the same serialized request when a reply is late or retryable; if the
    first copy was committed after its client gave up (a full WAL's group commit, a socket queue),
    storing the retry would duplicate every row. Identical bytes mean identical span ids and
    timestamps, i.e. the same data by OTLP's own identity. A copy that arrives while the first is
    still being stored is refused as retryable (503 / UNAVAILABLE) rather than raced. The memory is
    bounded (``max_entries`` digests, no payloads) and lost on restart: the guard covers the retry
    window, not all time."""

    def __init__(self, window: float = 600.0, max_entries: int = 65_536):
        self.window = window
        self.max_entries = max_entries
        self._stored: OrderedDict[bytes, tuple[float, Processed]] = OrderedDict()
        self._pending: set[bytes] = set()
        self._lock = threading.Lock()

    @staticmethod
    def key(signal: str, body: bytes, content_encoding: str | None) -> bytes:
        digest = hashlib.blake2b(f"{signal}\0{content_encoding or ''}\0".encode(), digest_size=16)
        digest.update(body)
        return digest.digest()

    def claim(self, key: bytes) -> Processed | None:
        """The first reply if these bytes were stored recently; None = store them (then release)."""
        now = time.monotonic()
        with self._lock:
            while self._stored and (
                len(self._stored) > self.max_entries
                or now - next(iter(self._stored.values()))[0] > self.window
            ):
                self._stored.popitem(last=False)
            if (hit := self._stored.get(key)) is not None:
                return hit[1]
            if key in self._pending:
                raise Overloaded("an identical request is still being stored; retry later")
            self._pending.add(key)
            return None

    def release(self, key: bytes, stored: Processed | None) -> None:
        """``stored``: the reply once the request is durable; None when it was not stored."""
        with self._lock:
            self._pending.discard(key)
            if stored is not None:
                self._stored[key] = (
                    time.monotonic(),
                    Processed(None, stored.accepted, stored.rejected, stored.message),
                )


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
        self.counters = {"accepted": 0, "rejected": 0, "refused": 0, "expired": 0, "duplicates": 0}
        self.recent = RecentRequests()

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
        key = RecentRequests.key(signal, body, content_encoding)
        if (earlier := self._claim(key)) is not None:
            return earlier
        stored = None
        try:
            stored = self._store(signal, body, fmt, content_encoding, started)
            return stored
        finally:
            self.recent.release(key, stored)

    def _store(self, signal, body, fmt, content_encoding, started) -> Processed:
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
        """Event-loop form, for the HTTP server: CPU work off the loop, fsync awaited."""
        key = RecentRequests.key(signal, body, content_encoding)
        if (earlier := self._claim(key)) is not None:
            return earlier
        stored = None
        try:
            stored = await self._store_async(signal, body, fmt, content_encoding, started)
            return stored
        finally:
            self.recent.release(key, stored)

    def _claim(self, key: bytes) -> Processed | None:
        earlier = self.recent.claim(key)
        if earlier is not None:
            with self._lock:
                self.counters["duplicates"] += 1
        return earlier

    async def _store_async(self, signal, body, fmt, content_encoding, started) -> Processed:
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
