"""Query results as table, csv, json (lines) or parquet."""

from __future__ import annotations

import io
from typing import BinaryIO

import orjson
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ragtrail.store.db import Result

FORMATS = ("table", "csv", "json", "parquet")


def write(result: Result, fmt: str, out: BinaryIO) -> None:
    if fmt == "table":
        out.write(render_table(result).encode())
    elif fmt == "csv":
        pacsv.write_csv(result.to_arrow(), out)
    elif fmt == "json":
        for row in result.rows:
            out.write(orjson.dumps(dict(zip(result.columns, row, strict=True)), default=str) + b"\n")
    elif fmt == "parquet":
        pq.write_table(result.to_arrow(), out, compression="zstd")
    else:
        raise ValueError(f"unknown format {fmt!r}")


def render_table(result: Result, max_width: int = 60) -> str:
    def cell(value) -> str:
        text = "NULL" if value is None else str(value)
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[cell(v) for v in row] for row in result.rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(result.columns)]
    buf = io.StringIO()
    buf.write(" | ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True)).rstrip() + "\n")
    buf.write("-+-".join("-" * w for w in widths) + "\n")
    for r in cells:
        buf.write(" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
    buf.write(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})\n")
    return buf.getvalue()
