"""commit: the write-ahead log. A request is acknowledged only after its record is fsynced here.

Format: ``wal/<segment:012d>.wal`` files, each a magic header then records
``<u32 payload length><u32 crc32(payload)><payload>``. A torn tail (kill -9 mid-write) fails its
length or CRC check and replay stops there: such a record was never acknowledged. A segment that
does not end cleanly (torn tail, bad CRC, bad header) is replayed up to the damage and then moved to
``quarantine/`` by the flusher's recovery, never silently deleted.

Group commit: one committer thread takes every record queued while the previous fsync ran, writes
them with one ``write`` and syncs once, then resolves all their futures. Many concurrent requests
therefore share one fsync. A segment is sealed at a size or age limit and handed, with its payloads
still in memory, to the flusher (collector.flush), which deletes the file once it is in Parquet.

Why a plain append-only file rather than SQLite/DuckDB as the buffer: a group costs exactly one
write and one fdatasync and replay reads at disk speed, while a database buffer adds page and
journal writes per commit for no benefit here: records are never updated, only appended and dropped
whole segments at a time.

Memory is bounded: bytes accepted but not yet flushed to Parquet are counted, and past
``max_pending_bytes`` ``append`` raises Overloaded (HTTP 503 / gRPC UNAVAILABLE) instead of growing.
A caller may wait up to ``admission_wait_seconds`` for the flusher to free space first: under a burst
a request then queues for a moment instead of bouncing, and OTel exporters (which give up after six
attempts) do not drop batches. The Retry-After of a refusal is jittered (1-3 s) so refused clients
do not all come back in the same instant.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import random
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ragtrail.collector.errors import Overloaded, StorageUnavailable
from ragtrail.config import WalConfig

log = logging.getLogger("ragtrail.wal")

MAGIC = b"RTWAL001"
_RECORD = struct.Struct("<II")
SUFFIX = ".wal"


@dataclass
class Segment:
    id: int
    path: Path
    payloads: list[bytes] = field(default_factory=list)
    size: int = 0
    damage: str | None = None  # why replay stopped before the end of the file; None = clean


def segment_path(directory: Path, segment: int) -> Path:
    return directory / f"{segment:012d}{SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    out = []
    for path in directory.glob(f"*{SUFFIX}"):
        stem = path.name[: -len(SUFFIX)]
        if stem.isdigit():
            out.append((int(stem), path))
    return sorted(out)


def read_segment(path: Path) -> tuple[list[bytes], str | None]:
    """The complete records of a segment, and why it did not end cleanly (None if it did)."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        return [], None if not data else "bad segment header"
    pos, payloads = len(MAGIC), []
    while pos + _RECORD.size <= len(data):
        length, crc = _RECORD.unpack_from(data, pos)
        start = pos + _RECORD.size
        payload = data[start : start + length]
        if len(payload) != length:
            return payloads, f"truncated record after {len(payloads)} complete records"
        if zlib.crc32(payload) != crc:
            return payloads, f"CRC mismatch after {len(payloads)} complete records"
        payloads.append(payload)
        pos = start + length
    return payloads, None if pos == len(data) else f"truncated header after {len(payloads)} records"


def frame_header(payload: bytes) -> bytes:
    """The length + CRC header that precedes ``payload`` in a segment (erasure rewrites frames)."""
    return _RECORD.pack(len(payload), zlib.crc32(payload))


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteAheadLog:
    def __init__(
        self, directory: Path, config: WalConfig, first_segment: int, on_seal: Callable[[Segment], None]
    ):
        self.directory = Path(directory)
        self.config = config
        self._on_seal = on_seal
        lock = threading.RLock()
        self._cond = threading.Condition(lock)  # wakes the committer
        self._space = threading.Condition(lock)  # wakes appenders waiting for the flusher to free bytes
        self._queue: list[tuple[bytes, concurrent.futures.Future]] = []
        self._queued_bytes = 0
        self._unflushed_bytes = 0  # in sealed or open segments, not yet released by the flusher
        self._closed = False
        self._next_segment = first_segment
        self._segment: Segment | None = None
        self._fd: int | None = None
        self._opened_at = 0.0
        self.overloaded = 0  # appends refused because the log was full
        self.write_failures = 0  # commits that failed on disk (full, read-only, I/O error)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="wal-committer", daemon=True)
        self._thread.start()

    # --- called by request handlers (any thread) ---

    def append(self, payload: bytes, wait: float = 0.0) -> concurrent.futures.Future:
        """Queue a record; the future resolves (to the segment id) once it is on disk and synced.

        When the log is full, block up to ``wait`` seconds for space, then raise Overloaded."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                if self._closed:
                    raise Overloaded("collector is shutting down")
                if self.has_room(len(payload)):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.overloaded += 1
                    raise Overloaded("write-ahead log is full; retry later", retry_after=random.randint(1, 3))
                self._space.wait(remaining)
            self._queue.append((payload, future))
            self._queued_bytes += len(payload)
            self._cond.notify()
        return future

    def has_room(self, size: int) -> bool:
        return self._unflushed_bytes + self._queued_bytes + size <= self.config.max_pending_bytes

    @property
    def unflushed_bytes(self) -> int:
        return self._unflushed_bytes + self._queued_bytes

    # --- called by the flusher ---

    def release(self, segment: Segment) -> None:
        """The segment is in Parquet: forget its bytes (the flusher deleted the file)."""
        with self._cond:
            self._unflushed_bytes -= segment.size
            self._space.notify_all()

    # --- lifecycle ---

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
            self._space.notify_all()
        self._thread.join(30)

    # --- committer thread ---

    def _run(self) -> None:
        while True:
            with self._cond:
                timeout = self._seal_timeout()
                if not self._queue and not self._closed:
                    self._cond.wait(timeout)
                batch, self._queue = self._queue, []
                batch_bytes, self._queued_bytes = self._queued_bytes, 0
                closed = self._closed
            if batch:
                self._commit(batch, batch_bytes)
            self._maybe_seal(force=closed)
            if closed and not self._queue:
                return

    def _seal_timeout(self) -> float | None:
        if self._segment is None or not self._segment.payloads:
            return None
        return max(0.0, self._opened_at + self.config.segment_seconds - time.monotonic())

    def _commit(self, batch: list[tuple[bytes, concurrent.futures.Future]], batch_bytes: int) -> None:
        try:
            segment = self._ensure_segment()
            frames = []
            for payload, _ in batch:
                frames.append(frame_header(payload))
                frames.append(payload)
            data = b"".join(frames)
            start = segment.size
            try:
                _write_all(self._fd, data)
                if self.config.fsync:
                    os.fdatasync(self._fd)
            except OSError:
                # Cut the partial write off so later records are not hidden behind a torn one.
                try:
                    os.ftruncate(self._fd, len(MAGIC) + start)
                except OSError:
                    self._abandon_segment()
                raise
            segment.size += len(data)
            segment.payloads.extend(p for p, _ in batch)
            with self._cond:
                self._unflushed_bytes += len(data)
        except OSError as exc:
            self.write_failures += 1
            log.error("WAL write failed: %s", exc.strerror or exc)
            error = StorageUnavailable(f"write-ahead log unavailable: {exc.strerror or type(exc).__name__}")
            for _, future in batch:
                future.set_exception(error)
            return
        for _, future in batch:
            future.set_result(segment.id)

    def _ensure_segment(self) -> Segment:
        if self._segment is None:
            seg_id = self._next_segment
            self._next_segment += 1
            path = segment_path(self.directory, seg_id)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
            try:
                _write_all(fd, MAGIC)
                os.fsync(fd)
                fsync_dir(self.directory)
            except OSError:
                os.close(fd)
                path.unlink(missing_ok=True)
                raise
            self._fd, self._segment, self._opened_at = fd, Segment(seg_id, path), time.monotonic()
        return self._segment

    def _abandon_segment(self) -> None:
        """The file can't be repaired in place: seal what is durable and start a new one."""
        self._maybe_seal(force=True)

    def _maybe_seal(self, force: bool = False) -> None:
        seg = self._segment
        if seg is None:
            return
        too_big = seg.size >= self.config.segment_bytes
        too_old = seg.payloads and time.monotonic() - self._opened_at >= self.config.segment_seconds
        if not (force or too_big or too_old):
            return
        os.close(self._fd)
        self._fd, self._segment = None, None
        if seg.payloads:
            self._on_seal(seg)
        else:
            seg.path.unlink(missing_ok=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def replay(directory: Path) -> Iterator[Segment]:
    """Segments left by a previous run, oldest first, with their complete records."""
    for seg_id, path in list_segments(Path(directory)):
        payloads, damage = read_segment(path)
        if damage:
            log.warning("WAL segment %s: %s; replaying its complete records", path.name, damage)
        yield Segment(seg_id, path, payloads, path.stat().st_size, damage)
