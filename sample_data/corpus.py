"""The planted knowledge base the sample RAG service answers from.

Forty short documents (eight products x five policy facts), generated deterministically so every
run, test and benchmark sees the same ids and texts. Each fact holds one checkable value (a number
or a plan tier): a grounded answer repeats it, an ungrounded one states another value, so a lexical
groundedness scorer has something to find. A corpus update moves some facts to a new value and a
new document version, the way a re-indexed knowledge base does.

No I/O, no randomness outside the fixed seed below.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PRODUCTS = (
    "Atlas CRM",
    "Beacon Analytics",
    "Cobalt Storage",
    "Delta Payments",
    "Ember Mail",
    "Flux Deploy",
    "Granite DB",
    "Harbor VPN",
)


@dataclass(frozen=True)
class Topic:
    key: str
    question: str  # {p} = product
    fact: str  # {p} = product, {v} = value
    values: tuple[str, ...]


TOPICS = (
    Topic(
        "rate-limit",
        "What is the API rate limit for {p}?",
        "The {p} API rate limit is {v} requests per minute per workspace.",
        ("60", "120", "300", "600", "1200"),
    ),
    Topic(
        "retention",
        "How long does {p} keep deleted data?",
        "{p} keeps deleted data for {v} days before it is permanently removed.",
        ("7", "14", "30", "60", "90"),
    ),
    Topic(
        "refunds",
        "What is the refund window for {p} annual plans?",
        "Annual {p} plans can be refunded within {v} days of purchase.",
        ("14", "30", "45", "60"),
    ),
    Topic(
        "sso",
        "Which {p} plan includes single sign-on?",
        "Single sign-on for {p} is included from the {v} plan upward.",
        ("Team", "Business", "Enterprise"),
    ),
    Topic(
        "uptime",
        "What uptime does {p} guarantee?",
        "{p} guarantees {v}% monthly uptime and pays service credits below that.",
        ("99.5", "99.9", "99.95", "99.99"),
    ),
)

# Fixed: the corpus is part of the product, not of a run's --seed.
_CORPUS_SEED = 20240611


@dataclass(frozen=True)
class Document:
    id: str
    version: int
    product: str
    topic: Topic
    value: str

    @property
    def version_tag(self) -> str:
        return f"v{self.version}"

    @property
    def title(self) -> str:
        return f"{self.product}: {self.topic.key}"

    @property
    def uri(self) -> str:
        slug = self.product.lower().replace(" ", "-")
        return f"kb://{slug}/{self.topic.key}"

    @property
    def text(self) -> str:
        return self.topic.fact.format(p=self.product, v=self.value)

    @property
    def question(self) -> str:
        return self.topic.question.format(p=self.product)

    def wrong_value(self) -> str:
        """A plausible value that this document does not state (for ungrounded answers)."""
        values = self.topic.values
        return values[(values.index(self.value) + 1) % len(values)]


class Corpus:
    """The documents by id; ``update`` re-versions a share of them, as a re-index would."""

    def __init__(self) -> None:
        rng = random.Random(_CORPUS_SEED)
        self.docs: list[Document] = []
        for p_idx, product in enumerate(PRODUCTS):
            for t_idx, topic in enumerate(TOPICS):
                doc_id = f"kb-{p_idx * len(TOPICS) + t_idx:03d}"
                self.docs.append(Document(doc_id, 1, product, topic, rng.choice(topic.values)))
        self.by_id = {d.id: d for d in self.docs}
        self.version = 1  # bumps on every update; part of every cache key that depends on documents

    def update(self, rng: random.Random, share: float = 0.5) -> list[str]:
        """Move ``share`` of the documents to a new value and version; return the changed ids."""
        changed = rng.sample(self.docs, round(len(self.docs) * share))
        for doc in changed:
            new = Document(doc.id, doc.version + 1, doc.product, doc.topic, doc.wrong_value())
            self.by_id[doc.id] = new
        self.docs = [self.by_id[d.id] for d in self.docs]
        self.version += 1
        return sorted(d.id for d in changed)

    def related(self, doc: Document) -> list[Document]:
        """Documents a vector search would plausibly return next to ``doc``: same product or topic."""
        return [d for d in self.docs if d.id != doc.id and (d.product == doc.product or d.topic == doc.topic)]
