"""GPU readings and their OTLP form: NVML (real hardware) or a simulation driven by RAG load.

Sources return ``GpuReading``s; ``GpuInstruments`` publishes the latest ones as the OTel hardware
metrics the collector maps to the ``gpu`` view (collector/semconv.py GPU_METRICS):
``hw.gpu.utilization`` (ratio), ``hw.gpu.memory.usage`` / ``hw.gpu.memory.limit`` (bytes),
``hw.power`` (W) and ``hw.temperature`` (Cel) with ``hw.type=gpu``, and ``hw.errors`` with
``error.type=out_of_memory``. Every point carries ``hw.id`` and ``hw.name``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from opentelemetry.metrics import CallbackOptions, Meter, Observation


@dataclass(frozen=True)
class GpuReading:
    id: str  # NVML UUID, stable across reboots and PCI renumbering
    name: str
    utilization: float  # 0..1
    memory_used_bytes: float
    memory_total_bytes: float
    power_w: float | None
    temperature_c: float | None
    ooms: float | None = None  # cumulative; None where the source cannot know (NVML has no counter)


class NoGpuError(RuntimeError):
    """No usable NVIDIA GPU (no driver, no device); the message says which."""


class NvmlSource:
    """Reads every visible NVIDIA GPU through NVML (nvidia-ml-py's ``pynvml``)."""

    def __init__(self) -> None:
        try:
            import pynvml
        except ImportError as exc:  # pragma: no cover - nvidia-ml-py is a dependency
            raise NoGpuError("nvidia-ml-py is not installed (pip install nvidia-ml-py)") from exc
        self._nvml = pynvml
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise NoGpuError(f"NVML is not available ({exc}): no NVIDIA driver on this machine?") from exc
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            pynvml.nvmlShutdown()
            raise NoGpuError("NVML found no GPU on this machine")
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        self.driver = _text(pynvml.nvmlSystemGetDriverVersion())

    def read(self) -> list[GpuReading]:
        nv = self._nvml
        out = []
        for h in self._handles:
            mem = nv.nvmlDeviceGetMemoryInfo(h)
            out.append(
                GpuReading(
                    id=_text(nv.nvmlDeviceGetUUID(h)),
                    name=_text(nv.nvmlDeviceGetName(h)),
                    utilization=nv.nvmlDeviceGetUtilizationRates(h).gpu / 100.0,
                    memory_used_bytes=float(mem.used),
                    memory_total_bytes=float(mem.total),
                    power_w=_optional(lambda h=h: nv.nvmlDeviceGetPowerUsage(h) / 1000.0, nv),
                    temperature_c=_optional(
                        lambda h=h: float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)), nv
                    ),
                )
            )
        return out

    def close(self) -> None:
        self._nvml.nvmlShutdown()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _optional(read, nv):
    """Some boards (and MIG slices) do not report power or temperature: a gap, not a failure."""
    try:
        return read()
    except nv.NVMLError:
        return None


class SimulatedGpu:
    """A GPU whose readings follow the generation work booked on it.

    ``absorb`` takes the work of one sampling window — (busy seconds, KV-cache use, OOMs) per
    generate call — and moves utilization, memory, power and temperature the way a serving GPU
    does: utilization saturates with the concurrent sequences of the window, memory is
    model weights plus KV cache, power follows utilization, temperature lags behind power.
    """

    MEMORY_TOTAL = 80 * 1024**3
    IDLE_W, MAX_W = 68.0, 690.0

    def __init__(self, rng: random.Random, *, index: int = 0, weights_bytes: float = 5.7 * 1024**3):
        self.rng = rng
        self.id = f"GPU-sim-{index:04d}-{rng.getrandbits(32):08x}"
        self.name = "NVIDIA H100 80GB HBM3 (simulated)"
        self.weights_bytes = weights_bytes
        self.temperature = 34.0
        self.ooms = 0.0
        self.reading = self._reading(0.0, 0.0)

    def absorb(self, work: Iterable[tuple[float, float, float]], window_s: float) -> GpuReading:
        busy = kv = 0.0
        n = 0
        for busy_s, kv_use, ooms in work:
            busy += busy_s
            kv = max(kv, kv_use)
            self.ooms += ooms
            n += 1
        # NVML's utilization is "a kernel was running", so it saturates long before every batch
        # slot is full: a few concurrent sequences already keep the GPU busy most of the time.
        concurrency = busy / max(window_s, 1e-9)
        util = min(1.0, max(0.0, 1.0 - math.exp(-concurrency / 4.0) + self.rng.gauss(0, 0.02))) if n else 0.0
        self.reading = self._reading(util, kv)
        return self.reading

    def _reading(self, util: float, kv: float) -> GpuReading:
        power = self.IDLE_W + (self.MAX_W - self.IDLE_W) * util**0.8 + self.rng.gauss(0, 3)
        target = 32.0 + 0.07 * power
        self.temperature += (target - self.temperature) * 0.3  # thermal lag
        # vLLM pre-allocates ~90 % of memory for the KV cache; usage of that pool is what moves.
        kv_pool = 0.9 * self.MEMORY_TOTAL - self.weights_bytes
        used = self.weights_bytes + 2.0 * 1024**3 + kv_pool * max(0.08, kv)
        return GpuReading(
            self.id, self.name, round(util, 4), float(min(used, self.MEMORY_TOTAL)), float(self.MEMORY_TOTAL),
            round(max(self.IDLE_W * 0.9, power), 2), round(self.temperature, 2), self.ooms,
        )  # fmt: skip


def load_profile(t_s: float, rate: float) -> float:
    """Requests/s at run second ``t_s`` for a nominal ``rate``: a slow swell (10-minute period) and a
    faster ripple, shared by the demo and ``gpu-agent --simulate`` so their loads line up."""
    return rate * (
        1.0 + 0.35 * math.sin(2 * math.pi * t_s / 600.0) + 0.1 * math.sin(2 * math.pi * t_s / 47.0)
    )


class GpuInstruments:
    """Observable hw.* instruments reporting the readings last given to ``update``."""

    def __init__(self, meter: Meter, host: str) -> None:
        self.host = host
        self.readings: list[GpuReading] = []
        meter.create_observable_gauge("hw.gpu.utilization", [self._util], unit="1",
                                      description="Fraction of time the GPU was busy")  # fmt: skip
        meter.create_observable_up_down_counter("hw.gpu.memory.usage", [self._mem_used], unit="By")
        meter.create_observable_up_down_counter("hw.gpu.memory.limit", [self._mem_total], unit="By")
        meter.create_observable_gauge("hw.power", [self._power], unit="W")
        meter.create_observable_gauge("hw.temperature", [self._temperature], unit="Cel")
        meter.create_observable_counter("hw.errors", [self._ooms], unit="{error}")

    def update(self, readings: list[GpuReading]) -> None:
        self.readings = readings

    def _attrs(self, r: GpuReading, **extra) -> dict:
        return {"hw.id": r.id, "hw.name": r.name, "hw.type": "gpu", "hw.vendor": "NVIDIA", **extra}

    def _observe(self, field_name: str, **extra):
        return [
            Observation(getattr(r, field_name), self._attrs(r, **extra))
            for r in self.readings
            if getattr(r, field_name) is not None
        ]

    def _util(self, _: CallbackOptions):
        return self._observe("utilization")

    def _mem_used(self, _: CallbackOptions):
        return self._observe("memory_used_bytes")

    def _mem_total(self, _: CallbackOptions):
        return self._observe("memory_total_bytes")

    def _power(self, _: CallbackOptions):
        return self._observe("power_w")

    def _temperature(self, _: CallbackOptions):
        return self._observe("temperature_c")

    def _ooms(self, _: CallbackOptions):
        return self._observe("ooms", **{"error.type": "out_of_memory"})
