"""`ragtrail demo` and `ragtrail gpu-agent`: thin click commands over sample_data."""

from __future__ import annotations

import signal
import threading

import click


def _stop_on_sigterm() -> threading.Event:
    """SIGTERM ends the run cleanly (queued telemetry is flushed), like Ctrl-C."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


def _endpoint_options(fn):
    fn = click.option("--protocol", type=click.Choice(["grpc", "http"]), default="grpc", show_default=True)(
        fn
    )
    return click.option(
        "--endpoint",
        help="collector OTLP endpoint (default 127.0.0.1:4317 for gRPC, http://127.0.0.1:4318 for HTTP)",
    )(fn)


@click.command()
@_endpoint_options
@click.option("--rate", type=float, default=5.0, show_default=True, help="mean requests per second")
@click.option("--duration", type=float, help="seconds of traffic (default: until Ctrl-C)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--chaos", help="schedule, e.g. 'vector_db_down@30s+20s,cache_cold@60s,oom@90s+15s', or 'demo'")
@click.option("--fast", is_flag=True, help="simulate --duration without sleeping, backfilled to end now")
@click.option("--canary-share", type=float, help="share of traffic on the canary (default 0.10)")
@click.option("--bad-citation-share", type=float, help="answers citing a non-retrieved document (0.05)")
@click.option("--no-gpu", is_flag=True, help="do not emit the simulated GPU's metrics")
@click.option("--quiet", is_flag=True, help="no progress lines")
def demo(
    endpoint, protocol, rate, duration, seed, chaos, fast, canary_share, bad_citation_share, no_gpu, quiet
):
    """Send a simulated RAG service's traces, metrics and logs to a collector."""
    from dataclasses import replace

    from ragtrail.sample_data.chaos import Chaos, ChaosError
    from ragtrail.sample_data.demo import DemoOptions, run_demo
    from ragtrail.sample_data.service import ServiceConfig

    if fast and duration is None:
        raise click.UsageError("--fast needs --duration")
    try:
        schedule = Chaos(chaos)
    except ChaosError as exc:
        raise click.BadParameter(str(exc), param_hint="--chaos") from None
    service = ServiceConfig()
    if canary_share is not None:
        service = replace(service, canary_share=canary_share)
    if bad_citation_share is not None:
        service = replace(service, bad_citation_share=bad_citation_share)
    options = DemoOptions(endpoint=endpoint, protocol=protocol, rate=rate, duration=duration, seed=seed,
                          chaos=schedule, progress=not quiet, realtime=not fast, gpu=not no_gpu,
                          service=service)  # fmt: skip
    stop = _stop_on_sigterm()
    try:
        summary = run_demo(options, stop)
    except KeyboardInterrupt:
        stop.set()
        return
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items()))
    click.echo(
        f"sent {summary.requests} requests over {(summary.end_ns - summary.start_ns) / 1e9:.0f} s: {outcomes}"
    )


@click.command("gpu-agent")
@_endpoint_options
@click.option("--interval", type=float, default=5.0, show_default=True, help="seconds between samples")
@click.option("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
@click.option("--simulate", is_flag=True, help="synthetic GPU following the demo load (no GPU needed)")
@click.option("--rate", type=float, default=5.0, show_default=True, help="--simulate: the demo's --rate")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--verbose", "-v", is_flag=True, help="print every sample")
def gpu_agent(endpoint, protocol, interval, duration, simulate, rate, seed, verbose):
    """Export NVIDIA GPU utilization, memory, power and temperature as OTLP hw.* metrics."""
    from ragtrail.sample_data.gpu import NoGpuError
    from ragtrail.sample_data.gpu_agent import AgentOptions, run_gpu_agent

    options = AgentOptions(endpoint=endpoint, protocol=protocol, interval=interval, duration=duration,
                           simulate=simulate, rate=rate, seed=seed, verbose=verbose)  # fmt: skip
    try:
        samples = run_gpu_agent(options, _stop_on_sigterm())
    except NoGpuError as exc:
        raise click.ClickException(
            f"no GPU to sample: {exc} (use --simulate for synthetic samples)"
        ) from None
    except KeyboardInterrupt:
        return
    click.echo(f"exported {samples} samples", err=True)
