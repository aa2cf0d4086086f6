"""One export request through the pure stages: decompress -> decode -> normalize -> redact -> encode.

``process_export`` has no sockets, files or threads: the transports call it inline, or a process
pool runs it on other cores (``init_worker`` builds the per-process redactor once). Its result is
the WAL payload plus what to tell the client.
"""

from __future__ import annotations

from dataclasses import dataclass

from ragtrail.collector import encoding, normalize, rows
from ragtrail.collector.encoding import Format


@dataclass(frozen=True)
class Processed:
    payload: bytes | None  # WAL record; None when nothing valid was sent
    accepted: int
    rejected: int
    message: str  # partial-success explanation (names the rejected items, never their content)


# The redaction stage, built once per process. None = redaction off.
_redactor = None


def init_worker(redaction_config=None, data_dir=None, *, pool_worker: bool = False) -> None:
    """Build this process's redactor (collector start-up, or a pool worker's initializer)."""
    global _redactor
    if pool_worker:
        _die_with_parent()
        use_returning_allocator()
    _redactor = None
    rows.warm_up()
    if redaction_config is not None and redaction_config.enabled:
        from ragtrail.collector.redact import Redactor  # heavy (spaCy): only when enabled

        _redactor = Redactor.from_config(redaction_config, data_dir)


def use_returning_allocator() -> None:
    """Arrow's jemalloc pool instead of its default mimalloc: it hands freed memory back to the OS
    within about a second, where mimalloc kept the flusher's and compaction's peaks as RSS
    (bench/overload.py: peak 777 vs 1,015 MiB in a 5x storm; ingest rate unchanged within noise).
    ARROW_DEFAULT_MEMORY_POOL, when set, still decides."""
    import contextlib
    import os

    import pyarrow as pa

    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc
        pa.set_memory_pool(pa.jemalloc_memory_pool())


def warm_worker(hold_seconds: float = 0.2) -> None:
    """A task that keeps its worker busy briefly, so that N of them start N pool workers."""
    import time

    time.sleep(hold_seconds)


def _die_with_parent() -> None:
    """A pool worker must not outlive a collector killed with -9 (Linux: PR_SET_PDEATHSIG)."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def process_export(
    signal: str,
    body: bytes,
    fmt: Format,
    content_encoding: str | None,
    received_ns: int,
    max_decompressed: int,
) -> Processed:
    raw = encoding.decompress(body, content_encoding, max_decompressed)
    request = encoding.decode(signal, raw, fmt)
    normalized = normalize.NORMALIZERS[signal](request, received_ns)
    if _redactor is not None and normalized.tables:
        from ragtrail.collector.redact import redact_tables

        redact_tables(normalized.tables, _redactor)
    payload = rows.encode_payload(normalized.tables)
    return Processed(payload, normalized.accepted, normalized.rejected, normalized.message)
