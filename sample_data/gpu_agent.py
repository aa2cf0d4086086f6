"""`ragtrail gpu-agent`: sample GPUs every interval and export them as OTLP hw.* metrics.

Real mode reads NVML; ``simulate`` runs a ``SimulatedGpu`` fed by the demo's load profile (same
``rate`` as ``ragtrail demo`` -> the same swell), with ``ragtrail.simulated=true`` on the resource.
The loop ticks on the real clock; the metric reader collects exactly once per sample.
"""

from __future__ import annotations

import random
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ragtrail.sample_data.gpu import GpuInstruments, GpuReading, NvmlSource, SimulatedGpu, load_profile
from ragtrail.sample_data.telemetry import Exporters, Signals, SimClock, otlp_exporters


@dataclass
class AgentOptions:
    endpoint: str | None = None
    protocol: str = "grpc"
    interval: float = 5.0  # seconds between samples
    duration: float | None = None  # None: until stopped
    simulate: bool = False
    rate: float = 5.0  # simulated mode: the demo rate whose load the GPU follows
    seed: int = 0
    verbose: bool = False


class _SimulatedSource:
    def __init__(self, opts: AgentOptions, clock: SimClock) -> None:
        self.gpu = SimulatedGpu(random.Random(opts.seed + 1))
        self.rng = random.Random(opts.seed)
        self.opts, self.clock = opts, clock

    def read(self) -> list[GpuReading]:
        # The demo books ~1 s of generation per request: that much busy time per second of load.
        t_s, window = self.clock.seconds(), self.opts.interval
        load = load_profile(t_s, self.opts.rate)
        work = [(load * window * self.rng.uniform(0.8, 1.2), min(0.99, 0.06 + 0.028 * load), 0.0)]
        return [self.gpu.absorb(work, window)]

    def close(self) -> None:
        pass


def run_gpu_agent(
    opts: AgentOptions,
    stop: threading.Event | None = None,
    exporters: Callable[[], Exporters] | None = None,
) -> int:
    """Sample and export until ``duration`` or ``stop``; returns the number of samples taken.
    Raises ``gpu.NoGpuError`` in real mode when there is no GPU to read."""
    stop = stop or threading.Event()
    clock = SimClock(realtime=True)
    source = _SimulatedSource(opts, clock) if opts.simulate else NvmlSource()
    host = socket.gethostname()
    resource = {"service.name": "ragtrail-gpu-agent", "host.name": host}
    if opts.simulate:
        resource["ragtrail.simulated"] = True
    signals = Signals(
        resource, (exporters or (lambda: otlp_exporters(opts.endpoint, opts.protocol)))(), clock
    )
    instruments = GpuInstruments(signals.meter, host)
    samples = 0
    try:
        while True:
            readings = source.read()
            instruments.update(readings)
            signals.collect_at(clock.now_ns)
            samples += 1
            if opts.verbose:
                for r in readings:
                    print(
                        f"[gpu-agent] {r.name} {r.id}: util {r.utilization:.0%}, "
                        f"mem {r.memory_used_bytes / 2**30:.1f}/{r.memory_total_bytes / 2**30:.1f} GiB, "
                        f"{r.power_w} W, {r.temperature_c} C",
                        file=sys.stderr,
                        flush=True,
                    )
            next_ns = clock.now_ns + int(opts.interval * 1e9)
            if opts.duration is not None and clock.seconds(next_ns) > opts.duration:
                break
            if not clock.wait_until(next_ns, stop):
                break
    finally:
        source.close()
        signals.shutdown()
    return samples
