"""`ragtrail retention apply` and `ragtrail erase --user`: data lifecycle, logged to the admin audit log."""

from __future__ import annotations

import click
import orjson

from ragtrail import config as config_mod
from ragtrail.store import erase as erase_mod
from ragtrail.store import retention as retention_mod

data_option = click.option(
    "--data", "data_dir", type=click.Path(file_okay=False), help="data directory ($RAGTRAIL_DATA)"
)


@click.group()
def retention() -> None:
    """Retention per table from ragtrail.toml [retention]."""


@retention.command()
@data_option
def apply(data_dir) -> None:
    """Drop date partitions older than each table's retention period."""
    cfg = config_mod.load(data_dir)
    if "retention" not in cfg.extra:
        raise click.UsageError(
            f"no [retention] section in {cfg.data_dir / 'ragtrail.toml'}; nothing to apply"
        )
    try:
        report = retention_mod.apply(cfg.data_dir, cfg.extra["retention"])
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


@click.command()
@data_option
@click.option("--user", required=True, help="raw user id or its pseudonym (u_...)")
@click.option(
    "--wait", type=float, default=30.0, show_default=True, help="seconds to wait for a live WAL flush"
)
def erase(data_dir, user, wait) -> None:
    """Remove a user's rows from every table, compacted file and the WAL; log the erasure."""
    cfg = config_mod.load(data_dir)
    try:
        report = erase_mod.erase_user(
            cfg.data_dir, user, wait_s=wait, row_group_rows=cfg.flush.row_group_rows
        )
    except erase_mod.ErasureError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
