"""Cross-process locks on the data directory.

Compaction (collector.flush), retention and erasure all rewrite or delete published Parquet files;
only one of them may run at a time, whichever process runs it. They take ``maintenance_lock``.
A running collector holds ``collector_presence`` (shared), so erasure knows whether the WAL has a
live owner (wait for it to flush) or not (rewrite the WAL itself).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def maintenance_lock(data_dir: Path, *, blocking: bool = True) -> Iterator[bool]:
    """Hold the data directory's maintenance lock; yields False if non-blocking and busy."""
    path = Path(data_dir) / "maintenance.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
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
    path = Path(data_dir) / "collector.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
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
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
