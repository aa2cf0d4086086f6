"""`ragtrail dashboard`: `streamlit run` on the dashboard app, headless, loopback by default."""

from __future__ import annotations

import ipaddress
import os
import sys
from importlib import resources

import click

from ragtrail import config as config_mod

DATA_ENV = "RAGTRAIL_DATA"  # read by dashboard/widgets.py
STORAGE_ENV = "RAGTRAIL_STORAGE"  # read by config.load


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False), help="data directory ($RAGTRAIL_DATA)")
@click.option("--storage", help="Parquet store: directory or s3://bucket/prefix ($RAGTRAIL_STORAGE)")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option("--port", type=int, default=8501, show_default=True)
@click.option(
    "--insecure-expose",
    is_flag=True,
    help="allow a non-loopback --host although the dashboard has no login yet",
)
def dashboard(data_dir, storage, host, port, insecure_expose) -> None:
    """Serve the Streamlit dashboard over the store (read-only)."""
    if not _is_loopback(host) and not insecure_expose:
        raise click.UsageError(
            f"--host {host} is not loopback and the dashboard has no login yet: put it behind an "
            "authenticating proxy or an SSH tunnel, or pass --insecure-expose"
        )
    cfg = config_mod.load(data_dir)
    app = resources.files("ragtrail.dashboard") / "app.py"
    env = {**os.environ, DATA_ENV: str(cfg.data_dir), **({STORAGE_ENV: storage} if storage else {})}
    cmd = [sys.executable, "-m", "streamlit", "run", str(app),
           "--server.headless", "true", "--server.address", host, "--server.port", str(port),
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
           "--client.toolbarMode", "viewer"]  # fmt: skip
    # Become streamlit (exec, not a child): signals sent to `ragtrail dashboard` (Ctrl-C, a
    # supervisor's SIGTERM, `ragtrail up` stopping its children) reach the server itself.
    sys.stdout.flush()
    os.execve(sys.executable, cmd, env)
