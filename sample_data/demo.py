"""Demo traffic: the simulated RAG services (and a simulated GPU) sending OTLP to a collector.

``run_demo`` is the library entry point behind ``ragtrail demo`` and ``ragtrail up``. It is a
single-threaded discrete-event loop over a ``SimClock``: request arrivals (Poisson, following
``gpu.load_profile``), trace emissions (a trace is handed to the SDK when its last span ends),
metric ticks and chaos events. In real time the loop sleeps until each event; accelerated, it
jumps, so a seeded test simulates minutes of traffic in seconds with the same timestamps.
Stop it from another thread with the ``stop`` event.
"""

from __future__ import annotations

import heapq
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from opentelemetry._logs import SeverityNumber

from ragtrail.sample_data import conventions
from ragtrail.sample_data.chaos import WINDOW_KINDS, Chaos
from ragtrail.sample_data.gpu import GpuInstruments, SimulatedGpu, load_profile
from ragtrail.sample_data.instruments import ServiceMetrics
from ragtrail.sample_data.service import MODELS, SERVICES, RagService, ServiceConfig, TracePlan
from ragtrail.sample_data.telemetry import Exporters, SeededIdGenerator, Signals, SimClock, otlp_exporters

SERVICE_VERSION = "1.4.2"
GPU_HOST = "demo-gpu-node-0"


@dataclass
class DemoOptions:
    endpoint: str | None = None  # default: the protocol's local collector port
    protocol: str = "grpc"  # grpc | http
    rate: float = 5.0  # mean requests/s (the load profile swings around it)
    duration: float | None = None  # simulated seconds; None runs until stopped (real time only)
    seed: int = 0
    chaos: str | Chaos | None = None  # a schedule (see chaos.py), or a Chaos to trigger on demand
    progress: bool = False  # a status line on stderr
    realtime: bool = True  # False: no sleeping; timestamps backfilled to end about now
    start_ns: int | None = None  # simulated start (default: now, or now - duration when accelerated)
    gpu: bool = True  # a simulated GPU whose load follows the traffic
    tick_s: float = 5.0  # metric and GPU sampling period, simulated seconds
    environment: str = "demo"
    service: ServiceConfig = field(default_factory=ServiceConfig)


@dataclass
class DemoSummary:
    start_ns: int
    end_ns: int
    requests: int
    outcomes: Counter
    chaos_events: list[tuple[float, str]]  # (run second, kind)


def run_demo(
    options: DemoOptions,
    stop: threading.Event | None = None,
    exporters: Callable[[], Exporters] | None = None,
) -> DemoSummary:
    """Send demo traffic until ``options.duration`` simulated seconds have passed or ``stop`` is set.

    ``exporters`` builds one exporter set per emitting service (default: OTLP to ``endpoint``);
    tests pass the SDK's in-memory exporters.
    """
    if options.rate <= 0:
        raise ValueError("rate must be positive")
    if not options.realtime and options.duration is None:
        raise ValueError("an accelerated run needs a duration")
    stop = stop or threading.Event()
    make_exporters = exporters or (lambda: otlp_exporters(options.endpoint, options.protocol))
    return _Run(options, stop, make_exporters).run()


class _Run:
    def __init__(self, opts: DemoOptions, stop: threading.Event, make_exporters: Callable[[], Exporters]):
        self.opts, self.stop = opts, stop
        start = opts.start_ns
        if start is None and not opts.realtime:
            start = time.time_ns() - int(opts.duration * 1e9)
        self.clock = SimClock(start, realtime=opts.realtime)
        self.chaos = opts.chaos if isinstance(opts.chaos, Chaos) else Chaos(opts.chaos)
        self.rng = random.Random(opts.seed)
        self.service = RagService(
            self.rng, self.chaos, self.clock.start_ns, lambda t: load_profile(t, opts.rate), opts.service
        )
        ids = SeededIdGenerator(random.Random(opts.seed ^ 0x5EED))
        self.signals: dict[str, Signals] = {}
        self.metrics: dict[str, ServiceMetrics] = {}
        for name in SERVICES:
            self.signals[name] = Signals(self._resource(name), make_exporters(), self.clock, ids)
            self.metrics[name] = ServiceMetrics(
                self.signals[name].meter,
                queue_depth=lambda: self.service.queue_depth(self.clock.seconds()),
                kv_usage=lambda: self.service.kv_usage,
            )
        self.gpu = self.gpu_instruments = None
        if opts.gpu:
            gpu_signals = Signals(
                {"service.name": "ragtrail-gpu-agent", "host.name": GPU_HOST, "ragtrail.simulated": True},
                make_exporters(), self.clock,
            )  # fmt: skip
            self.signals["gpu"] = gpu_signals
            self.gpu = SimulatedGpu(random.Random(opts.seed + 1), weights_bytes=MODELS["small"].weights_bytes)
            self.gpu_instruments = GpuInstruments(gpu_signals.meter, GPU_HOST)
        self.pending: list[tuple[int, int, TracePlan]] = []  # (emit at, seq, plan)
        self.seq = 0
        self.outcomes: Counter = Counter()
        self.chaos_events: list[tuple[float, str]] = []
        self.last_s = 0.0
        self.last_progress = 0.0

    def _resource(self, name: str) -> dict:
        return {
            "service.name": name,
            "service.version": SERVICE_VERSION,
            "deployment.environment.name": self.opts.environment,
            "host.name": f"{name}-pod-0",
            "ragtrail.simulated": True,
        }

    def run(self) -> DemoSummary:
        opts, clock = self.opts, self.clock
        end_ns = None if opts.duration is None else clock.start_ns + int(opts.duration * 1e9)
        next_arrival = clock.start_ns + self._gap(0.0)
        next_tick = clock.start_ns + int(opts.tick_s * 1e9)
        try:
            while True:
                next_emit = self.pending[0][0] if self.pending else None
                t = min(x for x in (next_arrival, next_tick, next_emit) if x is not None)
                if end_ns is not None and t > end_ns:
                    break
                if not clock.wait_until(t, self.stop):
                    break
                self._chaos_events(clock.seconds(t))
                if t == next_emit:
                    self._emit(heapq.heappop(self.pending)[2])
                elif t == next_tick:
                    self._tick(t)
                    next_tick += int(opts.tick_s * 1e9)
                else:
                    plan = self.service.handle(t)
                    self.outcomes[plan.outcome] += 1
                    heapq.heappush(self.pending, (plan.end_ns, self.seq, plan))
                    self.seq += 1
                    next_arrival = t + self._gap(clock.seconds(t))
        finally:
            self._finish()
        return DemoSummary(
            clock.start_ns, clock.now_ns, sum(self.outcomes.values()), self.outcomes, self.chaos_events
        )

    def _gap(self, t_s: float) -> int:
        return max(1, int(self.rng.expovariate(load_profile(t_s, self.opts.rate)) * 1e9))

    def _chaos_events(self, t_s: float) -> None:
        for kind in self.chaos.events_between(self.last_s, t_s):
            self.chaos_events.append((t_s, kind))
            message = self.service.apply_event(kind, t_s)
            if kind in WINDOW_KINDS:
                message = f"chaos: {kind} started"
            self.signals["support-rag"].logger.emit(
                timestamp=self.clock.now_ns, observed_timestamp=self.clock.now_ns, severity_text="WARN",
                severity_number=SeverityNumber.WARN, body=message, attributes={"ragtrail.chaos": kind},
            )  # fmt: skip
        self.last_s = t_s

    def _emit(self, plan: TracePlan) -> None:
        signals = self.signals[plan.service]
        conventions.emit(plan, SERVICES[plan.service], signals.tracer, signals.logger)
        self.metrics[plan.service].record(plan)

    def _tick(self, t_ns: int, progress: bool = True) -> None:
        window_s = self.opts.tick_s
        if self.gpu is not None:
            work, self.service.gpu_work = self.service.gpu_work, []
            self.gpu_instruments.update([self.gpu.absorb(work, window_s)])
        for signals in self.signals.values():
            signals.collect_at(t_ns)
            if not self.opts.realtime:
                signals.flush()  # keep the batch queues short: they drop spans when full
        if progress:
            self._progress()

    def _progress(self, final: bool = False) -> None:
        if not self.opts.progress:
            return
        now = time.monotonic()
        if not final and now - self.last_progress < 1.0:
            return
        self.last_progress = now
        total = sum(self.outcomes.values()) or 1
        t_s = self.clock.seconds()
        shares = " ".join(f"{k} {100 * v / total:.0f}%" for k, v in sorted(self.outcomes.items()))
        chaos = ",".join(self.chaos.active_kinds(t_s)) or "none"
        print(
            f"[demo] t={t_s:6.0f}s  requests {total:6d} ({total / max(t_s, 1e-9):5.1f}/s)  {shares}  chaos: {chaos}",
            file=sys.stderr,
            flush=True,
        )

    def _finish(self) -> None:
        while self.pending:
            self._emit(heapq.heappop(self.pending)[2])
        self._tick(self.clock.now_ns, progress=False)
        self._progress(final=True)
        for signals in self.signals.values():
            signals.shutdown()
