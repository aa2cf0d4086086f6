"""Hash chains: each record carries the hash of the one before, so any edit, drop or reorder shows.

A record is a JSON object; ``link`` adds ``seq`` (1-based), ``prev_hash`` and ``hash`` =
sha256(canonical JSON of the record without ``hash``). Canonical JSON is orjson with sorted keys, so
any reader that keeps values as JSON types recomputes the same bytes. Used by audit exports and the
admin audit log. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

GENESIS = "0" * 64


class ChainError(ValueError):
    """A broken chain; ``index`` is the 0-based position of the first bad record."""

    def __init__(self, index: int, message: str):
        super().__init__(f"record {index + 1}: {message}")
        self.index = index


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def link(bodies: Iterable[dict[str, Any]], prev: str = GENESIS, first_seq: int = 1) -> Iterator[dict]:
    for seq, body in enumerate(bodies, start=first_seq):
        record = {"seq": seq, "prev_hash": prev, **body}
        record["hash"] = prev = record_hash(record)
        yield record


def check(records: Iterable[dict[str, Any]], prev: str = GENESIS, first_seq: int = 1) -> tuple[int, str]:
    """Walk the chain; returns (count, head hash) or raises ChainError at the first bad record."""
    count = 0
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise ChainError(i, "not a JSON object")
        if record.get("seq") != first_seq + i:
            raise ChainError(i, f"seq is {record.get('seq')!r}, expected {first_seq + i} (a record was dropped, "
                             "inserted or moved)")  # fmt: skip
        if record.get("prev_hash") != prev:
            raise ChainError(i, "prev_hash does not match the previous record's hash (dropped or reordered)")
        if record.get("hash") != record_hash(record):
            raise ChainError(i, "content does not match its hash (the record was altered)")
        prev, count = record["hash"], count + 1
    return count, prev
