"""`ragtrail up`: the quick start — collector + dashboard on the embedded store, with demo traffic.

The collector and the dashboard run as child processes (each owns its event loop and signals);
this process waits for the collector's readiness probe, then sends real-time demo traffic until
Ctrl-C, and stops the children on the way out.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import threading
import time
import urllib.request

import click

from ragtrail.cli.collector_cmd import collector_options, load_config


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"the collector exited with status {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as resp:
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise click.ClickException(f"the collector was not ready within {timeout:.0f}s")


@click.command()
@collector_options
@click.option("--dashboard-port", type=int, default=8501, show_default=True)
@click.option("--no-dashboard", is_flag=True, help="collector and demo only")
@click.option("--no-demo", is_flag=True, help="no demo traffic")
@click.option("--rate", type=float, default=5.0, show_default=True, help="demo requests per second")
@click.option("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
def up(dashboard_port, no_dashboard, no_demo, rate, duration, **options) -> None:
    """Run collector + dashboard on the embedded store and feed it demo traffic."""
    cfg = load_config(**options)
    c = cfg.collector
    collector_args = [sys.executable, "-m", "ragtrail.cli", "collector", "--data", str(cfg.data_dir),
                      "--host", c.host, "--grpc-port", str(c.grpc_port), "--http-port", str(c.http_port)]  # fmt: skip
    if options.get("config_file"):
        collector_args += ["--config", options["config_file"]]
    if options.get("redaction") is False:
        collector_args.append("--no-redaction")
    if options.get("storage"):
        collector_args += ["--storage", options["storage"]]
    if options.get("maintenance") is False:
        collector_args.append("--no-maintenance")
    children = [subprocess.Popen(collector_args)]
    try:
        _wait_ready(f"http://{c.host}:{c.http_port}/healthz", children[0])
        click.echo(
            f"collector ready: OTLP/gRPC {c.host}:{c.grpc_port}, OTLP/HTTP http://{c.host}:{c.http_port}"
        )
        has_dashboard = importlib.util.find_spec("ragtrail.dashboard.app") is not None
        if has_dashboard and not no_dashboard:
            children.append(subprocess.Popen([sys.executable, "-m", "ragtrail.cli", "dashboard", "--data",
                                              str(cfg.data_dir), "--port", str(dashboard_port)]))  # fmt: skip
            click.echo(f"dashboard: http://127.0.0.1:{dashboard_port}")
        if no_demo:
            children[0].wait(timeout=duration)
            return
        from ragtrail.sample_data.demo import DemoOptions, run_demo

        stop = threading.Event()
        if duration:
            timer = threading.Timer(duration, stop.set)
            timer.daemon = True  # Ctrl-C before the end must not wait for it
            timer.start()
        run_demo(
            DemoOptions(
                endpoint=f"{c.host}:{c.grpc_port}", protocol="grpc", rate=rate, chaos="demo", progress=True
            ),
            stop,
        )
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        pass
    finally:
        for child in reversed(children):
            child.terminate()
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(30)
