"""The sample service's metrics: request rate, per-stage latency, cache lookups, serving engine.

Recorded from finished ``TracePlan``s, so metrics and spans always tell the same story.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.metrics import Meter, Observation

from ragtrail.sample_data.service import TracePlan

# Seconds; the SDK's default buckets are tuned for milliseconds-as-integers.
_LATENCY_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ServiceMetrics:
    def __init__(self, meter: Meter, queue_depth: Callable[[], float], kv_usage: Callable[[], float]) -> None:
        self.requests = meter.create_counter(
            "rag.requests", unit="{request}", description="Requests by outcome"
        )
        self.stage_duration = meter.create_histogram(
            "rag.stage.duration", unit="s", description="Latency per pipeline stage",
            explicit_bucket_boundaries_advisory=_LATENCY_BOUNDS,
        )  # fmt: skip
        self.request_duration = meter.create_histogram(
            "rag.request.duration", unit="s", explicit_bucket_boundaries_advisory=_LATENCY_BOUNDS
        )
        self.cache_lookups = meter.create_counter("rag.cache.lookups", unit="{lookup}")
        self.ttft = meter.create_histogram(
            "gen_ai.server.time_to_first_token", unit="s", explicit_bucket_boundaries_advisory=_LATENCY_BOUNDS
        )
        self.tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
        self.batch_size = meter.create_histogram(
            "rag.generate.batch_size",
            unit="{sequence}",
            explicit_bucket_boundaries_advisory=(1, 2, 4, 8, 16, 32, 64),
        )
        meter.create_observable_gauge(
            "rag.generate.queue_depth", [lambda _o: [Observation(queue_depth())]], unit="{request}"
        )
        meter.create_observable_gauge(
            "rag.generate.kv_cache.usage", [lambda _o: [Observation(kv_usage())]], unit="1"
        )

    def record(self, plan: TracePlan) -> None:
        root = plan.root
        variant = root.facts.get("variant", "none")
        self.requests.add(1, {"outcome": plan.outcome, "ragtrail.variant": variant})
        self.request_duration.record((root.end_ns - root.start_ns) / 1e9, {"outcome": plan.outcome})
        for step in plan.steps:
            seconds = (step.end_ns - step.start_ns) / 1e9
            self.stage_duration.record(
                seconds, {"ragtrail.stage": step.stage, "error": step.error is not None}
            )
            f = step.facts
            if step.stage == "cache":
                self.cache_lookups.add(
                    1, {"ragtrail.cache.layer": f["layer"], "ragtrail.cache.hit": f["hit"]}
                )
            elif step.stage == "generate":
                model = {"gen_ai.request.model": f["model"].name}
                self.ttft.record(f["ttft_s"], model)
                self.batch_size.record(f["batch_size"], model)
                self.tokens.record(f["input_tokens"], {**model, "gen_ai.token.type": "input"})
                self.tokens.record(f["output_tokens"], {**model, "gen_ai.token.type": "output"})
