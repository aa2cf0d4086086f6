"""`ragtrail audit impact|export|verify|public-key|log`: provenance and tamper-evident exports."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ragtrail import config as config_mod
from ragtrail.store import admin_log, audit, chain, export, signing

data_option = click.option(
    "--data", "data_dir", type=click.Path(file_okay=False), help="data directory ($RAGTRAIL_DATA)"
)


@click.group("audit")
def audit_group() -> None:
    """Provenance impact, signed hash-chained exports and their verification."""


@audit_group.command()
@data_option
@click.option("--doc-id", required=True, help="the document id")
@click.option("--version", help="exact version (v3), or v3+ for that version and later")
@click.option("--since", help="ISO date/time or a look-back such as 30d")
@click.option("--format", "fmt", type=click.Choice(export.FORMATS[:3]), default="table", show_default=True)
def impact(data_dir, doc_id, version, since, fmt) -> None:
    """Every answer that retrieved, reranked or cited a document, with user pseudonyms and times."""
    cfg = config_mod.load(data_dir)
    export.write(audit.impact(cfg.data_dir, doc_id, version=version, since=since), fmt, sys.stdout.buffer)


@audit_group.command("export")
@data_option
@click.option("--since", help="ISO date/time or a look-back such as 90d")
@click.option("--until", help="ISO date/time (exclusive)")
@click.option("--user", help="raw user id or pseudonym (u_...)")
@click.option("--trace-id")
@click.option("--doc-id", help="only requests that used this document")
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="FILE.jsonl or FILE.parquet"
)
def export_cmd(data_dir, since, until, user, trace_id, doc_id, output) -> None:
    """Write audit records in a hash chain plus a signed manifest (FILE.manifest.json)."""
    cfg = config_mod.load(data_dir)
    filters = audit.Filters(since=since, until=until, user=user, trace_id=trace_id, doc_id=doc_id)
    try:
        manifest = audit.export(cfg.data_dir, output, filters)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(
        f"{manifest['records']} records -> {output}; manifest {audit.manifest_path(output).name}; "
        f"chain head {manifest['chain_head'][:16]}…"
    )


@audit_group.command()
@data_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--public-key", type=click.Path(exists=True, dir_okay=False), help="the signer's public key (PEM)"
)
def verify(data_dir, file, public_key) -> None:
    """Check an export's hash chain, manifest and signature; names the first bad record."""
    pem = Path(public_key).read_bytes() if public_key else None
    if pem is None:
        cfg = config_mod.load(data_dir)
        if (cfg.data_dir / signing.KEY_FILE).exists():
            pem = signing.public_pem(signing.load_or_create_key(cfg.data_dir)).encode()
    result = audit.verify(file, pem)
    if result.note:
        click.echo(f"note: {result.note}", err=True)
    if not result.ok:
        for problem in result.problems:
            click.echo(f"FAIL {problem}", err=True)
        sys.exit(1)
    click.echo(f"OK {result.records} records, chain and signed manifest intact")


@audit_group.command("public-key")
@data_option
def public_key(data_dir) -> None:
    """Print the Ed25519 public key that signs exports (created on first use)."""
    cfg = config_mod.load(data_dir)
    click.echo(signing.public_pem(signing.load_or_create_key(cfg.data_dir)), nl=False)


@audit_group.command("log")
@data_option
def log_cmd(data_dir) -> None:
    """Print the admin audit log (exports, erasures, retention runs) after verifying it."""
    cfg = config_mod.load(data_dir)
    try:
        count = admin_log.verify(cfg.data_dir)
    except chain.ChainError as exc:
        raise click.ClickException(f"admin audit log is broken: {exc}") from None
    for entry in admin_log.read(cfg.data_dir):
        click.echo(chain.canonical(entry).decode())
    click.echo(f"({count} entries, chain and signatures intact)", err=True)
