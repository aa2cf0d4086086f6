"""Cross-process locks on the data directory.

Compaction (collector.flush), retention and erasure all rewrite or delete published Parquet files;
only one of them may run at a time, whichever process runs it. They take ``maintenance_lock``.
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
