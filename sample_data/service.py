"""The simulated RAG service: what happens to one request, as data (a ``TracePlan``).

This module decides; it does not emit. Given the simulated arrival time it walks a request through
rate limiting, the input guardrail, the response / embedding / context caches, retrieval, reranking,
the router (small model, escalation to a large one, a canary arm), generation on a batching server
and the output guardrail, and returns the spans and logs that request would produce with their
timestamps. ``conventions`` turns a plan into attributes; ``demo`` hands it to the OTel SDK.

Everything random comes from the run's seeded ``random.Random`` (and a Faker seeded from it), so a
seed fixes the traffic. Latencies are long-tailed (log-normal) and load-dependent on generate.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from faker import Faker

from ragtrail.sample_data.caches import TtlCache
from ragtrail.sample_data.chaos import Chaos
from ragtrail.sample_data.corpus import Corpus, Document


@dataclass(frozen=True)
class Model:
    name: str
    quantization: str
    decode_ms_per_token: float
    prefill_ms_per_1k_tokens: float
    weights_bytes: float


GIB = 1024**3
MODELS = {
    "small": Model("llama-3.1-8b-instruct", "int4-awq", 14.0, 30.0, 5.7 * GIB),
    "large": Model("llama-3.1-70b-instruct", "fp16", 38.0, 160.0, 131.0 * GIB),
    "canary": Model("qwen2.5-7b-instruct", "int4-gptq", 12.0, 28.0, 5.2 * GIB),
    "fallback": Model("llama-3.2-3b-instruct", "int8", 8.0, 15.0, 3.3 * GIB),
}
EMBED_MODEL = "bge-large-en-v1.5"
RERANK_MODEL = "bge-reranker-v2-m3"
# Which instrumentation each service uses: real deployments mix conventions.
SERVICES = {"support-rag": "openinference", "search-rag": "genai"}


@dataclass(frozen=True)
class ServiceConfig:
    """The production knobs the demo exposes; shares are per request."""

    canary_share: float = 0.10
    escalation_share: float = 0.12  # complex questions the router sends to the large model
    pii_share: float = 0.15
    toxic_share: float = 0.03
    bad_citation_share: float = 0.05  # answers citing a document that was not retrieved
    ungrounded_share: float = 0.06  # answers stating a value the cited document does not
    feedback_share: float = 0.10
    users: int = 300
    scraper_share: float = 0.04  # one user hammering the API, for the per-user rate limit
    rate_limit_per_minute: float = 10.0
    top_k: int = 6
    rerank_k: int = 3
    gpu_slots: int = 32  # concurrent sequences the serving engine batches


@dataclass
class Step:
    """One span: ``facts`` are convention-neutral; ``conventions`` maps them to attribute keys."""

    name: str
    stage: str
    start_ns: int
    end_ns: int
    facts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # error.type; the span's status is ERROR when set
    error_message: str | None = None


@dataclass
class LogPlan:
    time_ns: int
    severity: str  # INFO, WARN, ERROR
    body: str
    attributes: dict[str, Any] = field(default_factory=dict)
    event_name: str | None = None
    step: Step | None = None  # the span the record belongs to


@dataclass
class TracePlan:
    service: str
    root: Step
    steps: list[Step] = field(default_factory=list)
    logs: list[LogPlan] = field(default_factory=list)
    outcome: str = "answered"  # answered, cached, refused, rate_limited, fallback

    @property
    def end_ns(self) -> int:
        return max([self.root.end_ns] + [log.time_ns for log in self.logs])


@dataclass
class User:
    id: str
    name: str
    email: str
    phone: str
    session: str = ""
    last_seen_s: float = -1e9
    tokens: float = 0.0  # rate-limit bucket


# Prefix x suffix: twenty phrasings of each question, most traffic on the plain one.
_PREFIXES = ("{q}", "Quick question: {q}", "Hey, {ql}", "Could you check this for me: {q}", "Hello! {q}")
_PREFIX_WEIGHTS = (0.4, 0.15, 0.15, 0.15, 0.15)
_SUFFIXES = ("", " Thanks!", " I need this for a customer.", " Please be brief.")
_SUFFIX_WEIGHTS = (0.55, 0.15, 0.15, 0.15)
_TOXIC = (
    "This is useless garbage, you stupid bot. {q}",
    "Answer me right now, you worthless idiot: {q}",
    "I will make you regret it if you keep wasting my time. {q}",
)
_PII = (
    "Hi, this is {name} ({email}, {phone}). {q}",
    "My account email is {email}. {q}",
    "I'm {name}, please call me back on {phone}. {q}",
)
_COMPLEX = " Also compare it with the other plans and explain the trade-offs in detail."
SYSTEM_PROMPTS = {
    "stable": "You are a support assistant. Answer only from the context and cite document ids in brackets.",
    "canary": "You are a precise support assistant. Use only the given context; cite every claim as [doc-id].",
}
REFUSAL = "I can't help with that request. Please keep the conversation respectful."
FALLBACK = "I can't reach the knowledge base right now. Please try again in a minute or see the status page."
NOT_FOUND = "I could not find that in the documentation."
SESSION_IDLE_S = 1800.0


def lognormal_ms(rng: random.Random, median_ms: float, sigma: float) -> float:
    return median_ms * math.exp(rng.gauss(0.0, sigma))


def tokens(text: str) -> int:
    return max(1, round(len(text.split()) * 1.3))


class RagService:
    """The service's state (caches, corpus, users, prompt versions) and the per-request walk."""

    def __init__(
        self,
        rng: random.Random,
        chaos: Chaos,
        start_ns: int,
        rate_at: Callable[[float], float],
        config: ServiceConfig | None = None,
    ) -> None:
        self.rng = rng
        self.chaos = chaos
        self.start_ns = start_ns
        self.rate_at = rate_at  # requests/s the service sees at run second t (drives queueing)
        self.cfg = config or ServiceConfig()
        self.corpus = Corpus()
        self.caches = {
            # Sized so that a steady demo shows partial hit rates on every layer: the context cache
            # is a small semantic cache (one entry per intent), the others are per exact text.
            "response": TtlCache("response", ttl_s=300, capacity=120),
            "context": TtlCache("context", ttl_s=90, capacity=12),
            "embedding": TtlCache("embedding", ttl_s=3600, capacity=400),
        }
        self.prompt_versions = {"stable": [2, 0], "canary": [3, 0]}
        self.last_cache_cold_s = -1e9
        self.fake = Faker("en_US")
        self.fake.seed_instance(rng.getrandbits(32))
        self.users = [self._new_user(i) for i in range(self.cfg.users)]
        # Zipf popularity over a seeded order: a few documents draw most questions (cache hits).
        order = rng.sample(self.corpus.docs, len(self.corpus.docs))
        self._popular_ids = [d.id for d in order]
        self._popular_weights = [1.0 / (r + 1) ** 0.7 for r in range(len(order))]
        self.gpu_work: list[tuple[float, float, float]] = []  # (busy seconds, kv usage, ooms) since last tick
        self.kv_usage = 0.0  # the serving engine's KV-cache use at the last generate call

    # --- state changes driven by chaos ---------------------------------------------------------

    def apply_event(self, kind: str, t_s: float) -> str | None:
        """Apply a chaos event; returns a log line describing it (None for window kinds)."""
        if kind == "cache_cold":
            for cache in self.caches.values():
                cache.flush()
            self.last_cache_cold_s = t_s
            return "all caches flushed (cache cold)"
        if kind == "corpus_update":
            changed = self.corpus.update(self.rng)
            return f"corpus re-indexed to version {self.corpus.version}: {len(changed)} documents changed"
        if kind == "prompt_change":
            self.prompt_versions["stable"][1] += 1
            return f"stable prompt template changed to {self.prompt_version('stable')}"
        return None

    def utilization(self, t_s: float) -> tuple[float, float]:
        """(concurrent sequences, engine utilization rho) by Little's law: rate x ~1 s per generation."""
        concurrent = self.rate_at(t_s) * 1.0
        return concurrent, min(0.97, concurrent / self.cfg.gpu_slots)

    def queue_depth(self, t_s: float) -> float:
        """Requests waiting for a batch slot (Little's law over the mean queue time)."""
        _, rho = self.utilization(t_s)
        return self.rate_at(t_s) * (0.004 + 0.02 * rho / (1.0 - rho))

    def prompt_version(self, variant: str) -> str:
        major, minor = self.prompt_versions[variant]
        return f"rag-v{major}.{minor}"

    # --- one request ---------------------------------------------------------------------------

    def handle(self, t_ns: int) -> TracePlan:
        rng, cfg = self.rng, self.cfg
        t_s = (t_ns - self.start_ns) / 1e9
        service = "support-rag" if rng.random() < 0.6 else "search-rag"
        user = self._pick_user(t_s)
        root = Step("rag.query", "chain", t_ns, t_ns, {"user_id": user.id, "session_id": user.session})
        plan = TracePlan(service, root)
        cursor = t_ns + int(0.2e6)

        if not self._admit(user, t_s):
            root.end_ns = cursor + int(0.3e6)
            root.error, root.error_message = "rate_limited", "429: per-user rate limit exceeded"
            plan.outcome = "rate_limited"
            plan.logs.append(
                LogPlan(
                    root.end_ns,
                    "WARN",
                    f"rate limit exceeded for user {user.id}",
                    {"user.id": user.id},
                    step=root,
                )
            )
            return plan

        doc = self.corpus.by_id[rng.choices(self._popular_ids, self._popular_weights)[0]]
        question, has_pii, toxic, complex_ = self._question(doc, user)
        variant = "canary" if rng.random() < cfg.canary_share else "stable"
        prompt_version = self.prompt_version(variant)
        root.facts.update(question=question, variant=variant, prompt_version=prompt_version, pii=has_pii)

        def step(name: str, stage: str, ms: float, **facts) -> Step:
            nonlocal cursor
            s = Step(name, stage, cursor, cursor + int(ms * 1e6), facts)
            plan.steps.append(s)
            cursor = s.end_ns + int(rng.uniform(0.05, 0.4) * 1e6)
            return s

        def finish(answer: str, outcome: str) -> TracePlan:
            root.facts["answer"] = answer
            root.end_ns = cursor + int(0.3e6)
            plan.outcome = outcome
            return plan

        guard = step("guardrail.input", "guardrail", lognormal_ms(rng, 6, 0.3), direction="input", text=question,
                     outcome="refused" if toxic else "pass", reason="toxicity" if toxic else None)  # fmt: skip
        if toxic:
            plan.logs.append(
                LogPlan(
                    guard.end_ns,
                    "INFO",
                    "guardrail refused a toxic input",
                    {"ragtrail.guardrail.reason": "toxicity"},
                    step=guard,
                )
            )
            return finish(REFUSAL, "refused")

        # Response cache: exact question under this prompt and corpus version; personal questions
        # (with PII) bypass it.
        response_key, response_version = (question, variant), (prompt_version, self.corpus.version)
        cached, why = (
            (None, "bypass")
            if has_pii
            else self.caches["response"].lookup(response_key, response_version, t_s)
        )
        step("cache.response", "cache", lognormal_ms(rng, 1.2, 0.3), layer="response", hit=cached is not None,
             miss_reason=why, **(cached or {}))  # fmt: skip
        if cached is not None:
            root.facts["citations"] = cached["citations"]
            return finish(cached["answer"], "cached")

        embedded, why = self.caches["embedding"].lookup((question,), (EMBED_MODEL,), t_s)
        step("cache.embedding", "cache", lognormal_ms(rng, 0.9, 0.3), layer="embedding", hit=bool(embedded),
             miss_reason=why)  # fmt: skip
        if not embedded:
            step("embed", "embed", lognormal_ms(rng, 14, 0.4), model=EMBED_MODEL, text=question,
                 input_tokens=tokens(question), dimensions=1024)  # fmt: skip
            self.caches["embedding"].put((question,), (EMBED_MODEL,), True, t_s)

        # Context cache: a semantic cache keyed by the question's intent (its nearest corpus
        # cluster), so paraphrases share retrieved context.
        context_key, context_version = (doc.id,), (self.corpus.version,)
        context, why = self.caches["context"].lookup(context_key, context_version, t_s)
        fallback = False
        step("cache.context", "cache", lognormal_ms(rng, 1.0, 0.3), layer="context", hit=context is not None,
             miss_reason=why, docs=context or [])  # fmt: skip
        retrieved: list[tuple[Document, float]] = list(context or [])
        if context is None:
            retrieved = self._search(doc)
            down = self.chaos.active("vector_db_down", t_s)
            retrieve = step("retrieve", "retrieve", 3000.0 if down else self._retrieve_ms(), query=question,
                            docs=[] if down else retrieved, top_k=cfg.top_k, db="qdrant",
                            index_version=f"corpus-{self.corpus.version}")  # fmt: skip
            if down:
                retrieve.error = "vector_db_unavailable"
                retrieve.error_message = "qdrant: connection refused after 3 s timeout"
                plan.logs.append(
                    LogPlan(
                        retrieve.end_ns,
                        "ERROR",
                        "vector DB unreachable; answering without context",
                        {"error.type": retrieve.error},
                        step=retrieve,
                    )
                )
                fallback, retrieved = True, []
            else:
                reranked = self._rerank(doc, retrieved)
                step("rerank", "rerank", lognormal_ms(rng, 55, 0.35), model=RERANK_MODEL, query=question,
                     docs=reranked, top_k=cfg.rerank_k)  # fmt: skip
                retrieved = reranked
                self.caches["context"].put(context_key, context_version, reranked, t_s)

        route = "escalated" if complex_ else "small"
        model = MODELS["large" if complex_ else ("canary" if variant == "canary" else "small")]
        answer, citations, grounded = self._answer(doc, retrieved, fallback)
        system = SYSTEM_PROMPTS[variant]
        facts = dict(system=system, question=question, context=retrieved, answer=answer, citations=citations,
                     route=route, variant=variant, prompt_version=prompt_version, fallback=fallback)  # fmt: skip
        if self.chaos.active("oom", t_s):
            ms, oom_facts = self._generate(model, facts, t_s, oom=True)
            oom = step("generate", "generate", ms, **oom_facts)
            oom.error = "out_of_memory"
            oom.error_message = f"CUDA out of memory while allocating KV cache for {model.name}"
            plan.logs.append(
                LogPlan(
                    oom.end_ns,
                    "ERROR",
                    f"GPU OOM on {model.name}; retrying on {MODELS['fallback'].name}",
                    {"error.type": "out_of_memory"},
                    step=oom,
                )
            )
            model, fallback = MODELS["fallback"], True
            facts.update(route=f"{route}>fallback", fallback=True)
        ms, gen_facts = self._generate(model, facts, t_s, oom=False)
        gen = step("generate", "generate", ms, **gen_facts)
        step("guardrail.output", "guardrail", lognormal_ms(rng, 9, 0.3), direction="output", text=answer,
             outcome="pass", reason=None)  # fmt: skip
        root.facts.update(fallback=fallback, citations=citations, route=gen.facts["route"])
        if not has_pii and not fallback:
            self.caches["response"].put(
                response_key,
                response_version,
                {"answer": answer, "citations": citations, "docs": retrieved},
                t_s,
            )
        if fallback:
            plan.logs.append(
                LogPlan(gen.end_ns, "WARN", "served a fallback answer", {"ragtrail.fallback": True}, step=gen)
            )
        self._feedback(plan, root, cursor, grounded and not fallback)
        return finish(answer, "fallback" if fallback else "answered")

    # --- pieces --------------------------------------------------------------------------------

    def _new_user(self, i: int) -> User:
        return User(f"user-{i:04d}", self.fake.name(), self.fake.email(), self.fake.phone_number())

    def _pick_user(self, t_s: float) -> User:
        rng = self.rng
        user = self.users[0] if rng.random() < self.cfg.scraper_share else rng.choice(self.users[1:])
        if t_s - user.last_seen_s > SESSION_IDLE_S:
            user.session = f"sess-{rng.getrandbits(48):012x}"
            user.tokens = self.cfg.rate_limit_per_minute
        return user

    def _admit(self, user: User, t_s: float) -> bool:
        """Token bucket: rate_limit_per_minute requests, refilled continuously."""
        limit = self.cfg.rate_limit_per_minute
        user.tokens = min(limit, user.tokens + (t_s - user.last_seen_s) * limit / 60.0)
        user.last_seen_s = t_s
        if user.tokens < 1.0:
            return False
        user.tokens -= 1.0
        return True

    def _question(self, doc: Document, user: User) -> tuple[str, bool, bool, bool]:
        rng, cfg = self.rng, self.cfg
        base = doc.question
        text = rng.choices(_PREFIXES, _PREFIX_WEIGHTS)[0].format(q=base, ql=base[0].lower() + base[1:])
        text += rng.choices(_SUFFIXES, _SUFFIX_WEIGHTS)[0]
        complex_ = rng.random() < cfg.escalation_share
        if complex_:
            text += _COMPLEX
        has_pii = rng.random() < cfg.pii_share
        if has_pii:
            # A fresh Faker identity most of the time: real users paste other people's details too.
            who = user if rng.random() < 0.5 else self._new_user(-1)
            text = rng.choice(_PII).format(name=who.name, email=who.email, phone=who.phone, q=text)
        toxic = rng.random() < cfg.toxic_share
        if toxic:
            text = rng.choice(_TOXIC).format(q=text)
        return text, has_pii, toxic, complex_

    def _retrieve_ms(self) -> float:
        ms = lognormal_ms(self.rng, 32, 0.5)
        return ms * 6 if self.rng.random() < 0.02 else ms  # rare slow shard

    def _search(self, doc: Document) -> list[tuple[Document, float]]:
        """Top-k hits: usually the right document near the top, neighbours after it."""
        rng, k = self.rng, self.cfg.top_k
        neighbours = rng.sample(self.corpus.related(doc), k)
        roll = rng.random()
        if roll < 0.78:
            hits = [doc] + neighbours[: k - 1]
        elif roll < 0.93:
            pos = rng.randint(1, k - 1)
            hits = neighbours[:pos] + [doc] + neighbours[pos : k - 1]
        else:
            hits = neighbours  # a recall miss
        score = rng.uniform(0.78, 0.9)
        out = []
        for d in hits:
            out.append((d, round(score, 4)))
            score -= rng.uniform(0.01, 0.08)
        return out

    def _rerank(self, doc: Document, hits: list[tuple[Document, float]]) -> list[tuple[Document, float]]:
        rng = self.rng
        scored = [
            (d, round(min(0.999, (0.92 if d.id == doc.id else 0.45) + rng.gauss(0, 0.06)), 4))
            for d, _ in hits
        ]
        scored.sort(key=lambda x: -x[1])
        return scored[: self.cfg.rerank_k]

    def _answer(self, doc: Document, context: list[tuple[Document, float]], fallback: bool):
        """(answer, cited ids, grounded)."""
        rng, cfg = self.rng, self.cfg
        if fallback:
            return FALLBACK, [], False
        context_ids = [d.id for d, _ in context]
        if doc.id not in context_ids:
            return NOT_FOUND, [], False
        current = self.corpus.by_id[doc.id]
        grounded = rng.random() >= cfg.ungrounded_share
        value = current.value if grounded else current.wrong_value()
        statement = current.topic.fact.format(p=current.product, v=value)
        citations = [current.id]
        if rng.random() < cfg.bad_citation_share:
            outside = [d.id for d in self.corpus.docs if d.id not in context_ids]
            citations = [rng.choice(outside)]
        return f"{statement} [{citations[0]}]", citations, grounded

    def _generate(self, model: Model, facts: dict, t_s: float, *, oom: bool) -> tuple[float, dict]:
        """The generate span's duration (ms) and facts: serving details (queue, batch, TTFT, tokens,
        KV use) on top of the request's ``facts``. Also books the GPU work for the simulated GPU."""
        rng, cfg = self.rng, self.cfg
        concurrent, rho = self.utilization(t_s)
        queue_s = rng.expovariate(1.0 / (0.004 + 0.02 * rho / (1.0 - rho)))
        context_text = " ".join(d.text for d, _ in facts["context"])
        input_tokens = tokens(facts["system"]) + tokens(facts["question"]) + tokens(context_text)
        output_tokens = tokens(facts["answer"]) + rng.randint(8, 60)  # reasoning the answer summarises
        warm_prefix = t_s - self.last_cache_cold_s > 10.0
        ttft_s = queue_s + (input_tokens / 1000.0) * model.prefill_ms_per_1k_tokens / 1000.0 * math.exp(
            rng.gauss(0, 0.25)
        )
        kv = min(0.99, 0.06 + 0.028 * concurrent + rng.gauss(0, 0.02))
        if oom:
            ms = (ttft_s + rng.uniform(0.05, 0.2)) * 1000.0
            self.gpu_work.append((ms / 1000.0, 1.0, 1.0))
            facts = {**facts, "answer": None, "citations": []}
            output_tokens = 0
            kv = 1.0
        else:
            decode_ms = output_tokens * model.decode_ms_per_token * math.exp(rng.gauss(0, 0.2)) * (1 + rho)
            ms = ttft_s * 1000.0 + decode_ms
            self.gpu_work.append((ms / 1000.0, kv, 0.0))
        self.kv_usage = round(max(0.0, kv), 4)
        return ms, dict(
            facts,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=tokens(facts["system"]) if warm_prefix else 0,
            queue_s=queue_s,
            ttft_s=ttft_s,
            batch_size=max(
                1, min(2 * cfg.gpu_slots, round(rng.gauss(concurrent, math.sqrt(concurrent + 1))))
            ),
            kv_usage=self.kv_usage,
            max_tokens=512,
        )

    def _feedback(self, plan: TracePlan, root: Step, after_ns: int, good: bool) -> None:
        rng = self.rng
        if rng.random() >= self.cfg.feedback_share:
            return
        up = rng.random() < (0.85 if good else 0.3)
        plan.logs.append(
            LogPlan(
                after_ns + int(rng.uniform(3, 40) * 1e9),
                "INFO",
                "user feedback",
                {
                    "gen_ai.evaluation.name": "user_feedback",
                    "gen_ai.evaluation.score.value": 1.0 if up else 0.0,
                    "gen_ai.evaluation.score.label": "thumbs_up" if up else "thumbs_down",
                },
                event_name="gen_ai.evaluation.result",
                step=root,
            )
        )
