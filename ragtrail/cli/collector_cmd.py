"""`ragtrail collector`: run the OTLP collector on the embedded store."""

from __future__ import annotations

import click

from ragtrail import config as config_mod


def collector_options(fn):
    """Options shared by `collector` and `up`."""
    for option in reversed(
        [
            click.option(
                "--data", "data_dir", type=click.Path(file_okay=False), help="data directory ($RAGTRAIL_DATA)"
            ),
            click.option(
                "--config", "config_file", type=click.Path(dir_okay=False), help="ragtrail.toml to read"
            ),
            click.option("--host", help="address to listen on (default 127.0.0.1)"),
            click.option("--grpc-port", type=int, help="OTLP/gRPC port (default 4317)"),
            click.option("--http-port", type=int, help="OTLP/HTTP port (default 4318)"),
            click.option("--token", help="bearer token required for ingest ($RAGTRAIL_TOKEN)"),
            click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False)),
            click.option("--tls-key", type=click.Path(exists=True, dir_okay=False)),
            click.option("--workers", type=int, help="pipeline worker processes (0 = in-process)"),
            click.option("--redaction/--no-redaction", default=None, help="PII redaction (default on)"),
            click.option(
                "--storage", help="Parquet store: directory or s3://bucket/prefix ($RAGTRAIL_STORAGE)"
            ),
            click.option(
                "--maintenance/--no-maintenance",
                default=None,
                help="compact the store (default on; exactly one collector per shared store)",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def load_config(
    data_dir,
    config_file,
    host,
    grpc_port,
    http_port,
    token,
    tls_cert,
    tls_key,
    workers,
    redaction,
    storage,
    maintenance,
):
    cfg = config_mod.load(
        data_dir,
        config_file,
        overrides={
            "collector": {
                "host": host,
                "grpc_port": grpc_port,
                "http_port": http_port,
                "token": token,
                "tls_cert": tls_cert,
                "tls_key": tls_key,
                "workers": workers,
            },
            "redaction": {"enabled": redaction},
            "storage": {"uri": storage, "maintenance": maintenance},
        },
    )
    try:
        cfg.validate()
    except config_mod.ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    return cfg


@click.command()
@collector_options
def collector(**options) -> None:
    """Receive OTLP (gRPC :4317, HTTP :4318) into the store under --data."""
    from ragtrail.collector import server

    server.run(load_config(**options))
