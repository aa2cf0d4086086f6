"""The store's filesystem: one abstraction over a local directory or ``s3://bucket/prefix``.

Everything that lists, reads, writes or deletes published Parquet files goes through a ``Store``
(collector.flush, store.db, compaction, retention and erasure), so the same code runs on a local
disk and on object storage. What differs is kept here:

- atomic publish: locally a synced temp file and a rename; on S3 a single object PUT (or a
  multipart upload completed at close), which is all-or-nothing — an object appears whole or not
  at all, and there is no rename to lean on;
- ``move`` (compaction's ``.pending`` -> published) is a rename locally and copy + delete on S3;
  compaction's recovery accepts both halves of that being left behind;
- directories exist on disk only; on S3 they are key prefixes and need no creating or syncing.

S3 settings come from the usual AWS environment: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``
(or any source of the AWS default chain), ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` and
``AWS_ENDPOINT_URL`` (``AWS_ENDPOINT_URL_S3`` first) for S3-compatible servers (MinIO, moto).
The write-ahead log, the writer id and the keys always stay on the collector's local disk.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ragtrail.store import layout


@dataclass(frozen=True)
class Store:
    """Where the ``tables/`` tree lives: a pyarrow filesystem and a root path inside it."""

    fs: pafs.FileSystem
    root: str  # no trailing slash; a local absolute path, or "bucket/prefix" on S3
    uri: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    # --- paths ----------------------------------------------------------------------------------

    def tables_dir(self) -> str:
        return f"{self.root}/tables"

    def table_dir(self, table: str) -> str:
        return f"{self.tables_dir()}/{table}"

    def partition_dir(self, table: str, date: dt.date | str) -> str:
        return f"{self.table_dir(table)}/date={date}"

    # --- listing --------------------------------------------------------------------------------

    def _children(self, path: str, kind: pafs.FileType) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(path, allow_not_found=True, recursive=False)
        return sorted((i for i in self.fs.get_file_info(selector) if i.type == kind), key=lambda i: i.path)

    def tables(self) -> list[str]:
        return [i.base_name for i in self._children(self.tables_dir(), pafs.FileType.Directory)]

    def partitions(
        self, table: str | None = None, since: dt.date | None = None, until: dt.date | None = None
    ) -> list[str]:
        """``tables/<table>/date=D`` paths (every table when None), pruned to since <= D <= until.

        One listing per table plus none per skipped date: what bounds a reader's cost on S3.
        """
        out = []
        for name in [table] if table else self.tables():
            for info in self._children(self.table_dir(name), pafs.FileType.Directory):
                date = layout.partition_date(Path(info.base_name))
                if date is None or (since and date < since) or (until and date > until):
                    continue
                out.append(info.path)
        return out

    def files(self, partition: str, suffix: str = layout.PARQUET) -> list[pafs.FileInfo]:
        """Files in a partition whose names end with ``suffix`` (published Parquet by default)."""
        return [i for i in self._children(partition, pafs.FileType.File) if i.base_name.endswith(suffix)]

    def published(self, table: str, since: dt.date | None = None, until: dt.date | None = None) -> list[str]:
        return [i.path for p in self.partitions(table, since, until) for i in self.files(p)]

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type == pafs.FileType.File

    # --- reading --------------------------------------------------------------------------------

    def read_table(self, path: str) -> pa.Table:
        return pq.read_table(path, filesystem=self.fs)

    def iter_tables(self, path: str, batch_rows: int = 16_384) -> Iterator[pa.Table]:
        """The file's rows in order, ``batch_rows`` at a time: memory bounded by the batch, not the
        file (a compacted file of repetitive text can be GiBs once decoded)."""
        with self.fs.open_input_file(path) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_rows):
                yield pa.Table.from_batches([batch])

    def read_metadata(self, path: str) -> Mapping[bytes, bytes]:
        return self.read_schema(path).metadata or {}

    def read_schema(self, path: str) -> pa.Schema:
        """The file's schema, from its footer alone."""
        return pq.read_schema(path, filesystem=self.fs)

    # --- writing --------------------------------------------------------------------------------

    def write_parquet(
        self, table: pa.Table, path: str, row_group_rows: int, metadata: Mapping[bytes, bytes] | None = None
    ) -> None:
        """Publish ``table`` at ``path`` atomically: readers see all of it or nothing."""
        schema = _with_metadata(table.schema, metadata)
        if not self.is_local:
            with self.fs.open_output_stream(path) as out:  # the object appears at close, whole
                _write_row_groups(out, schema, [table], row_group_rows)
            return
        self._write_local(schema, [table], path, row_group_rows)

    def write_parquet_stream(
        self,
        schema: pa.Schema,
        tables: Iterable[pa.Table],
        path: str,
        row_group_rows: int,
        metadata: Mapping[bytes, bytes] | None = None,
    ) -> None:
        """Publish the concatenation of ``tables`` (each of ``schema``) at ``path`` atomically,
        holding one input table and one row group in memory at a time, never their sum."""
        schema = _with_metadata(schema, metadata)
        if self.is_local:
            self._write_local(schema, tables, path, row_group_rows)
            return
        # pyarrow's S3 stream has no abort: an input failing mid-stream would still publish the
        # object at close. Stream into a temporary object; move it into place once complete.
        parent, name = path.rsplit("/", 1)
        tmp = f"{parent}/.{name}{layout.TMP}"
        try:
            with self.fs.open_output_stream(tmp) as out:
                _write_row_groups(out, schema, tables, row_group_rows)
        except BaseException:
            with contextlib.suppress(OSError):
                self.fs.delete_file(tmp)
            raise
        self.fs.move(tmp, path)

    def _write_local(
        self, schema: pa.Schema, tables: Iterable[pa.Table], path: str, row_group_rows: int
    ) -> None:
        """Via a synced temp file and an atomic rename."""
        parent, name = path.rsplit("/", 1)
        os.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.{name}{layout.TMP}"
        try:
            with open(tmp, "wb") as fh:
                _write_row_groups(fh, schema, tables, row_group_rows)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # a disk-full write must not leave its partial file taking space
            raise

    def move(self, src: str, dst: str) -> None:
        self.fs.move(src, dst)

    def delete(self, path: str) -> None:
        """Delete a file; one already gone is fine (deletes are replayed after crashes)."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(path)

    def delete_partition(self, partition: str) -> int:
        """Delete a whole partition (retention); returns how many Parquet files it held."""
        count = len(self.files(partition))
        self.fs.delete_dir(partition)
        return count

    def sync_dir(self, path: str) -> None:
        """Make renames and deletes in a local directory durable; S3 needs nothing."""
        if self.is_local and os.path.isdir(path):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _with_metadata(schema: pa.Schema, metadata: Mapping[bytes, bytes] | None) -> pa.Schema:
    return schema.with_metadata({**(schema.metadata or {}), **metadata}) if metadata else schema


# A row group is also closed at this size: the writer holds a whole row group until it closes it,
# and 122,880 rows of prompt-sized text would be ~120 MiB (bench/compaction.py).
ROW_GROUP_MAX_BYTES = 32 * 1024 * 1024


def _write_row_groups(sink, schema: pa.Schema, tables: Iterable[pa.Table], row_group_rows: int) -> None:
    """Write ``tables`` in row groups of ``row_group_rows`` rows or ROW_GROUP_MAX_BYTES, whichever
    comes first (small inputs are gathered, so a file made of many small ones still has few, large
    row groups); zstd."""
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        pending: list[pa.Table] = []
        rows = size = 0
        for table in tables:
            pending.append(table.replace_schema_metadata(schema.metadata))
            rows += table.num_rows
            size += table.nbytes
            if rows >= row_group_rows or size >= ROW_GROUP_MAX_BYTES:
                gathered = pa.concat_tables(pending)  # zero-copy: chunks side by side
                full = rows - rows % row_group_rows if rows >= row_group_rows else rows
                writer.write_table(gathered.slice(0, full), row_group_size=row_group_rows)
                rest = gathered.slice(full)
                pending, rows, size = [rest], rest.num_rows, rest.nbytes
        if rows:
            writer.write_table(pa.concat_tables(pending), row_group_size=row_group_rows)


def s3_filesystem(environ: Mapping[str, str] | None = None) -> pafs.S3FileSystem:
    """An S3 filesystem configured from the AWS environment (see the module docstring)."""
    env = os.environ if environ is None else environ
    options: dict = {}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        options.update(endpoint_override=parsed.netloc, scheme=parsed.scheme)
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        options.update(
            access_key=env["AWS_ACCESS_KEY_ID"],
            secret_key=env["AWS_SECRET_ACCESS_KEY"],
            session_token=env.get("AWS_SESSION_TOKEN"),
        )
    return pafs.S3FileSystem(**options)


def open_store(location: str | Path, environ: Mapping[str, str] | None = None) -> Store:
    """A Store for a local directory (path or ``file://``) or ``s3://bucket/prefix``."""
    if isinstance(location, Store):
        return location
    text = str(location)
    parsed = urlparse(text)
    if parsed.scheme == "s3":
        root = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        if not parsed.netloc:
            raise ValueError(f"storage URI {text!r} names no bucket (s3://bucket/prefix)")
        return Store(s3_filesystem(environ), root, f"s3://{root}")
    if parsed.scheme not in ("", "file"):
        raise ValueError(f"storage URI {text!r}: only local directories and s3:// are supported")
    path = Path(parsed.path if parsed.scheme == "file" else text).resolve()
    return Store(pafs.LocalFileSystem(), str(path), str(path))
