"""The append-only log of administrative actions: audit exports, erasures, retention runs.

``<data>/admin-audit.jsonl``: one JSON object per line, hash-chained (store.chain) and each entry's
hash signed with the audit key (store.signing), so an entry cannot be edited, dropped or reordered
unnoticed. Appends hold an exclusive flock on the file and fsync before returning. Entries never hold
personal data: an erasure names its subject only by a keyed receipt (see store.erase).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from pathlib import Path
from typing import Any

import orjson

from ragtrail.store import chain, signing

LOG_FILE = "admin-audit.jsonl"


def path(data_dir: str | Path) -> Path:
    return Path(data_dir) / LOG_FILE


def read(data_dir: str | Path) -> list[dict[str, Any]]:
    p = path(data_dir)
    if not p.exists():
        return []
    return [orjson.loads(line) for line in p.read_bytes().splitlines() if line.strip()]


def append(data_dir: str | Path, action: str, details: dict[str, Any]) -> dict[str, Any]:
    """Append one signed, chained entry; returns it."""
    key = signing.load_or_create_key(data_dir)
    p = path(data_dir)
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        entries = read(data_dir)
        prev = entries[-1]["hash"] if entries else chain.GENESIS
        body = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "action": action,
                "details": details}  # fmt: skip
        (entry,) = chain.link([body], prev=prev, first_seq=len(entries) + 1)
        entry["signature"] = signing.sign(key, entry["hash"].encode())
        os.write(fd, orjson.dumps(entry, option=orjson.OPT_SORT_KEYS) + b"\n")
        os.fsync(fd)
        return entry
    finally:
        os.close(fd)


def verify(data_dir: str | Path) -> int:
    """Check the chain and every signature; returns the entry count or raises chain.ChainError."""
    entries = read(data_dir)
    public = signing.load_or_create_key(data_dir).public_key()
    unsigned = [{k: v for k, v in e.items() if k != "signature"} for e in entries]
    count, _ = chain.check(unsigned)
    for i, entry in enumerate(entries):
        if not signing.verify(public, entry["hash"].encode(), entry.get("signature", "")):
            raise chain.ChainError(i, "signature does not verify")
    return count
