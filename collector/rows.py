"""Normalized column lists -> Arrow, and the WAL record payload that carries them.

A payload is one request's rows for every table it touched, framed as
``<u16 name length><name><u32 ipc length><Arrow IPC stream>`` repeated. Arrow IPC keeps the schema
with the data, so a WAL written by one version replays in the next; decoding is zero-copy.
"""

from __future__ import annotations

import struct

import orjson
import pyarrow as pa

from ragtrail.store.schema import TABLES

_HEADER = struct.Struct("<H")
_LENGTH = struct.Struct("<I")
# Columns whose Python objects become JSON text here (after redaction has walked them).
_JSON_NAMES = {"attributes", "events", "resource", "buckets", "pii"}
_JSON_COLUMNS = {name: [f for f in schema.names if f in _JSON_NAMES] for name, schema in TABLES.items()}


def _dumps(value) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


def _dumps_column(values: list) -> list[str | None]:
    """JSON text per value; a value repeated by identity (every span of a resource shares one
    ``resource`` dict) is serialized once."""
    memo: dict[int, str | None] = {}
    out = []
    for value in values:
        key = id(value)
        text = memo.get(key)
        if text is None:
            text = memo[key] = _dumps(value)
        out.append(text)
    return out


def to_arrow(table: str, columns: dict[str, list]) -> pa.Table:
    cols = dict(columns)
    for name in _JSON_COLUMNS[table]:
        cols[name] = _dumps_column(cols[name])
    return pa.Table.from_pydict(cols, schema=TABLES[table])


def warm_up() -> None:
    """pyarrow imports pandas on the first from_pydict (about a second): pay it at start-up, not
    on the first client's request."""
    pa.Table.from_pydict({name: [] for name in TABLES["spans"].names}, schema=TABLES["spans"])


def encode_payload(tables: dict[str, dict[str, list]]) -> bytes | None:
    """One WAL payload for a normalized batch; None when it holds no rows."""
    return encode_arrow(
        {
            name: to_arrow(name, columns)
            for name, columns in tables.items()
            if columns and next(iter(columns.values()))
        }
    )


def encode_arrow(tables: dict[str, pa.Table]) -> bytes | None:
    """One WAL payload for Arrow tables already in the store's schemas; None when they hold no rows."""
    parts: list[bytes] = []
    for name, arrow in tables.items():
        if arrow.num_rows == 0:
            continue
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, arrow.schema) as writer:
            writer.write_table(arrow)
        ipc = sink.getvalue().to_pybytes()
        encoded = name.encode()
        parts += [_HEADER.pack(len(encoded)), encoded, _LENGTH.pack(len(ipc)), ipc]
    return b"".join(parts) if parts else None


def decode_payload(payload: bytes) -> dict[str, pa.Table]:
    out: dict[str, pa.Table] = {}
    view = memoryview(payload)
    pos = 0
    while pos < len(view):
        (name_len,) = _HEADER.unpack_from(view, pos)
        pos += _HEADER.size
        name = bytes(view[pos : pos + name_len]).decode()
        pos += name_len
        (ipc_len,) = _LENGTH.unpack_from(view, pos)
        pos += _LENGTH.size
        out[name] = pa.ipc.open_stream(pa.py_buffer(view[pos : pos + ipc_len])).read_all()
        pos += ipc_len
    return out
