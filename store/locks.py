"""Cross-process locks on the data directory.

Compaction (collector.flush), retention and erasure all rewrite or delete published Parquet files;
only one of them may run at a time, whichever process runs it. They take ``maintenance_lock`` on a
local data directory, or ``maintenance_lease`` on the store (a local directory or object storage).
A running collector holds ``collector_presence`` (shared), so erasure knows whether the WAL has a
live owner (wait for it to flush) or not (rewrite the WAL itself).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from ragtrail.store.fs import Store


def _open_lock_file(path: Path) -> int:
    """The lock file, opened read-only: flock needs no write access, and a file held open for
    writing would keep the data directory's filesystem from being remounted read-only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    return os.open(path, os.O_RDONLY)


@contextlib.contextmanager
def maintenance_lock(data_dir: Path, *, blocking: bool = True) -> Iterator[bool]:
    """Hold the data directory's maintenance lock; yields False if non-blocking and busy."""
    fd = _open_lock_file(Path(data_dir) / "maintenance.lock")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def collector_presence(data_dir: Path) -> Iterator[None]:
    """Held (shared) by a running collector for its lifetime, so maintenance can tell it is live."""
    fd = _open_lock_file(Path(data_dir) / "collector.lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def collector_running(data_dir: Path) -> bool:
    """True while a collector holds ``collector_presence`` on this data directory."""
    path = Path(data_dir) / "collector.lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


LEASE_KEY = "_maintenance/lease.json"
LEASE_SETTLE_S = 0.5  # wait between writing the lease and reading it back


@contextlib.contextmanager
def maintenance_lease(store: Store, owner: str, *, ttl_s: float = 300.0) -> Iterator[bool]:
    """Hold the store's maintenance lease (non-blocking); yields False if another owner holds it.

    A local store uses ``maintenance_lock`` (flock) on its root. On object storage the lease is an
    object, ``_maintenance/lease.json`` = {owner, expires}: taken when absent, expired or ours,
    written, then read back after ``LEASE_SETTLE_S`` — the last writer of a simultaneous pair wins
    and the other backs off. Without a conditional PUT two owners racing within the settle time can
    both win, so on a shared store exactly one collector runs with ``[storage] maintenance = true``
    (docs/SCALE.md); the lease catches a second maintainer left on by mistake, and a crashed
    maintainer's lease expires after ``ttl_s``.
    """
    if store.is_local:
        with maintenance_lock(Path(store.root), blocking=False) as locked:
            yield locked
        return
    path = f"{store.root}/{LEASE_KEY}"
    if not _take_lease(store, path, owner, ttl_s):
        yield False
        return
    try:
        yield True
    finally:
        if _read_lease(store, path).get("owner") == owner:
            store.delete(path)


def _read_lease(store: Store, path: str) -> dict:
    try:
        with store.fs.open_input_stream(path) as fh:
            return orjson.loads(fh.read())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}


def _take_lease(store: Store, path: str, owner: str, ttl_s: float) -> bool:
    held = _read_lease(store, path)
    if held.get("owner") not in (None, owner) and held.get("expires", 0) > time.time():
        return False
    with store.fs.open_output_stream(path) as out:
        out.write(orjson.dumps({"owner": owner, "expires": time.time() + ttl_s}))
    time.sleep(LEASE_SETTLE_S)
    return _read_lease(store, path).get("owner") == owner
