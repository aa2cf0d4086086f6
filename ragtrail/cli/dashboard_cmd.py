"""`ragtrail dashboard`: `streamlit run` on the dashboard app, headless, loopback by default.

Bound to any other address it requires a login (dashboard/login.py): it refuses to start without a
password (RAGTRAIL_DASHBOARD_PASSWORD or [dashboard] password_sha256 in ragtrail.toml) and hands the
app only the password's digest.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from importlib import resources

import click

from ragtrail import config as config_mod
from ragtrail.dashboard import login

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
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), help="serve HTTPS with this cert")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), help="... and this private key")
def dashboard(data_dir, storage, host, port, tls_cert, tls_key) -> None:
    """Serve the Streamlit dashboard over the store (read-only); off loopback, behind a login."""
    cfg = config_mod.load(data_dir)
    env = {k: v for k, v in os.environ.items() if k not in (login.PASSWORD_ENV, login.LOGIN_ENV)}
    if not _is_loopback(host):
        try:
            expected = login.configured_digest(cfg.extra.get("dashboard"), os.environ.get(login.PASSWORD_ENV))
        except login.LoginConfigError as exc:
            raise click.UsageError(str(exc)) from None
        if expected is None:
            raise click.UsageError(
                f"--host {host} is not loopback, so the dashboard requires a login: set "
                f"{login.PASSWORD_ENV}, or password_sha256 under [dashboard] in ragtrail.toml"
            )
        env[login.LOGIN_ENV] = expected
        if not tls_cert:
            click.echo(
                "warning: without --tls-cert/--tls-key the password crosses the network in clear", err=True
            )
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("TLS needs both --tls-cert and --tls-key")
    app = resources.files("ragtrail.dashboard") / "app.py"
    env[DATA_ENV] = str(cfg.data_dir)
    if storage:
        env[STORAGE_ENV] = storage
    cmd = [sys.executable, "-m", "streamlit", "run", str(app),
           "--server.headless", "true", "--server.address", host, "--server.port", str(port),
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
           "--client.toolbarMode", "viewer"]  # fmt: skip
    if tls_cert:
        cmd += ["--server.sslCertFile", str(tls_cert), "--server.sslKeyFile", str(tls_key)]
    # Become streamlit (exec, not a child): signals sent to `ragtrail dashboard` (Ctrl-C, a
    # supervisor's SIGTERM, `ragtrail up` stopping its children) reach the server itself.
    sys.stdout.flush()
    os.execve(sys.executable, cmd, env)
