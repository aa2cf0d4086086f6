"""`ragtrail sql`: read-only SQL over the views, printed or written as table, csv, json or parquet."""

from __future__ import annotations

import sys

import click

from ragtrail import config as config_mod
from ragtrail.store import db, export


@click.command()
@click.argument("query")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), help="data directory ($RAGTRAIL_DATA)")
@click.option("--storage", help="Parquet store: directory or s3://bucket/prefix ($RAGTRAIL_STORAGE)")
@click.option("--format", "fmt", type=click.Choice(export.FORMATS), default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="write here instead of stdout")
@click.option("--max-rows", type=int, help="row cap (default from ragtrail.toml [sql])")
@click.option("--time-limit", type=float, help="seconds before the query is cancelled")
def sql(query, data_dir, storage, fmt, output, max_rows, time_limit) -> None:
    """Run one read-only SELECT over the ragtrail views (spans, traces, documents, content, ...)."""
    cfg = config_mod.load(data_dir, overrides={"storage": {"uri": storage}})
    try:
        result = db.query(
            cfg.storage_uri,
            query,
            max_rows=max_rows or cfg.sql.max_rows,
            time_limit_s=time_limit or cfg.sql.time_limit_seconds,
        )
    except db.SqlError as exc:
        raise click.ClickException(str(exc)) from None
    if fmt == "parquet" and not output:
        raise click.UsageError("--format parquet needs --output FILE")
    if output:
        with open(output, "wb") as fh:
            export.write(result, fmt, fh)
    else:
        export.write(result, fmt, sys.stdout.buffer)
    if result.truncated:
        click.echo(f"(truncated at {len(result.rows)} rows)", err=True)
