"""Seeded corpora for redaction: planted-PII prompt/response pairs (Faker) and technical text.

Shared by tests/collector/test_redact*.py and bench/redact.py, so the figures in docs/REDACTION.md
come from the same texts the tests check. Every planted value is recorded with its entity type and,
for phones, cards and SSNs, its digit-only form, which a leak scan must also not find.
"""

from __future__ import annotations

import random
import re
import string
import uuid
from dataclasses import dataclass, field

from faker import Faker

STRUCTURED = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS", "SECRET")
DIGIT_FORMS = ("PHONE_NUMBER", "CREDIT_CARD", "US_SSN")
CARD_TYPES = ("visa16", "mastercard", "amex", "discover", "jcb16", "diners", "maestro", "visa13")


@dataclass
class Pair:
    trace: int
    user_id: str
    prompt: str
    response: str
    planted: list[tuple[str, str]] = field(default_factory=list)  # (entity, value as written)

    def needles(self) -> list[str]:
        """Every planted value and the digit-only form of phones, cards and SSNs."""
        out = [v for _, v in self.planted] + [self.user_id]
        out += [re.sub(r"\D", "", v) for e, v in self.planted if e in DIGIT_FORMS]
        return out


PROMPTS = [
    "Hi, my name is {PERSON}. I moved to {LOCATION} last month and my card {CREDIT_CARD} was charged "
    "twice. You can reach me at {PHONE_NUMBER} or {EMAIL_ADDRESS}.",
    "Please update the billing account of {PERSON} (SSN {US_SSN}) and send refunds to IBAN {IBAN_CODE}.",
    "Our VPN gateway {IP_ADDRESS} rejects the key {SECRET}; {PERSON} from the {LOCATION} office set it up.",
    "{PERSON} here. The invoice for our {LOCATION} branch should go to {EMAIL_ADDRESS}; my phone number "
    "is {PHONE_DIGITS}.",
    "Can you summarize the complaint from {PERSON}? They called from {PHONE_NUMBER} about the card "
    "{CARD_DIGITS}.",
    "Dear support, I am {PERSON}, social security number {SSN_DIGITS}, and I live in {LOCATION}.",
    "The job fails with postgres://admin:{PASSWORD}@db.internal:5432/app when {PERSON} runs it from "
    "{IP_ADDRESS}.",
    "Write a polite reply to {PERSON} ({EMAIL_ADDRESS}) who asked why the payment with card {CREDIT_CARD} "
    "was declined in {LOCATION}.",
    "My colleague {PERSON} shared her token {SECRET} by mistake, please revoke it. Contact: {PHONE_NUMBER}.",
    "Transfer 250 EUR from {IBAN_CODE} to {PERSON} in {LOCATION}, confirmation to {EMAIL_ADDRESS}.",
]
RESPONSES = [
    "Thanks {PERSON}, I have updated the record and will send a confirmation to {EMAIL_ADDRESS}.",
    "I'm sorry for the trouble, {PERSON}. The duplicate charge on {CREDIT_CARD} has been reversed.",
    "I can't share account details here. {PERSON} can call us back on {PHONE_NUMBER} from {LOCATION}.",
    "The key {SECRET} is revoked. Requests from {IP_ADDRESS} will need a new one.",
    "Done: the refund to IBAN {IBAN_CODE} for {PERSON} is scheduled; SSN {US_SSN} is verified.",
    "Summary: {PERSON} in {LOCATION} reports a declined payment and asks for a call at {PHONE_NUMBER}.",
]
_FIELD = re.compile(r"\{(\w+)\}")
_LOCALES = ("en_US", "en_US", "en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT")


def _secret(rng: random.Random) -> str:
    alnum = string.ascii_letters + string.digits
    pick = rng.randrange(5)
    body = "".join(rng.choice(alnum) for _ in range(40))
    if pick == 0:
        return "sk-proj-" + body
    if pick == 1:
        return "ghp_" + body[:36]
    if pick == 2:
        return "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    if pick == 3:
        return "Bearer " + body
    return "xoxb-" + "-".join(body[i : i + 10] for i in (0, 10, 20))


def _phone(fake: Faker) -> str:
    # Faker writes US numbers as 555-123-4567, (555)123-4567, 555.123.4567x89, +1-555-…, 001-555-…
    return fake.phone_number()


def _city(fake: Faker, rng: random.Random) -> str:
    # Faker's it_IT keeps its towns in a list built from a set, in hash-seed order: draw from the
    # sorted list so the corpus is the same in every process.
    cities = getattr(fake.provider("faker.providers.address"), "cities", None)
    return rng.choice(sorted(set(cities))) if isinstance(cities, list | tuple) else fake.city()


def _value(entity: str, fake: Faker, names: list[Faker], rng: random.Random) -> tuple[str, str]:
    """(entity recorded for recall, value written in the text)."""
    if entity == "PERSON":
        f = rng.choice(names)
        return "PERSON", f"{f.first_name()} {f.last_name()}"
    if entity == "LOCATION":
        return "LOCATION", _city(rng.choice(names), rng)
    if entity == "CREDIT_CARD":
        number = fake.credit_card_number(card_type=rng.choice(CARD_TYPES))
        if rng.random() < 0.5 and len(number) == 16:
            number = " ".join(number[i : i + 4] for i in range(0, 16, 4))
        return "CREDIT_CARD", number
    if entity == "CARD_DIGITS":
        return "CREDIT_CARD", fake.credit_card_number(card_type=rng.choice(CARD_TYPES))
    if entity == "PHONE_NUMBER":
        return "PHONE_NUMBER", _phone(fake)
    if entity == "PHONE_DIGITS":
        return "PHONE_NUMBER", re.sub(r"\D", "", _phone(fake).split("x")[0])
    if entity == "US_SSN":
        return "US_SSN", fake.ssn()
    if entity == "SSN_DIGITS":
        return "US_SSN", fake.ssn().replace("-", "")
    if entity == "IBAN_CODE":
        iban = fake.iban()
        return "IBAN_CODE", " ".join(
            iban[i : i + 4] for i in range(0, len(iban), 4)
        ) if rng.random() < 0.3 else iban
    if entity == "IP_ADDRESS":
        return "IP_ADDRESS", fake.ipv4_public() if rng.random() < 0.8 else fake.ipv6()
    if entity == "EMAIL_ADDRESS":
        return "EMAIL_ADDRESS", fake.email()
    if entity == "PASSWORD":
        return "SECRET", fake.password(length=14, special_chars=False)
    if entity == "SECRET":
        return "SECRET", _secret(rng)
    raise KeyError(entity)


def planted_pairs(n: int = 1000, seed: int = 4) -> list[Pair]:
    """``n`` prompt/response pairs; a response reuses the prompt's values where it names the same type."""
    Faker.seed(seed)
    rng = random.Random(seed)
    fake = Faker("en_US")
    names = [Faker(loc) for loc in _LOCALES]
    pairs = []
    for i in range(n):
        values: dict[str, tuple[str, str]] = {}

        def fill(m: re.Match, values: dict = values) -> str:
            key = m.group(1)
            if key not in values:
                values[key] = _value(key, fake, names, rng)
            return values[key][1]

        prompt = _FIELD.sub(fill, PROMPTS[i % len(PROMPTS)])
        response = _FIELD.sub(fill, rng.choice(RESPONSES))
        pair = Pair(i, f"user-{fake.user_name()}-{i}", prompt, response, list(values.values()))
        pairs.append(pair)
    return pairs


# --- technical text: nothing here is PII, so any change is a false positive ---------------------------

MODELS = [
    "llama-3.1-8b-instruct-awq", "Meta-Llama-3.1-70B-Instruct", "mistral-7b-instruct-v0.3", "Qwen2.5-72B-Instruct",
    "gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022", "bge-large-en-v1.5", "gemma-2-9b-it", "Phi-3-mini-4k-instruct",
    "text-embedding-3-small", "mixtral-8x7b-instruct-v0.1", "e5-mistral-7b-instruct", "ms-marco-MiniLM-L-6-v2",
]  # fmt: skip
TECH = [
    'Traceback (most recent call last):\n  File "/srv/app/{mod}.py", line {n}, in {fn}\n    return self.{fn}(batch)\n'
    '  File "/usr/lib/python3.11/site-packages/torch/nn/modules/module.py", line {n2}, in _call_impl\n'
    "RuntimeError: CUDA out of memory. Tried to allocate {gb}.00 GiB (GPU 0; 79.15 GiB total capacity)",
    "SELECT trace_id, sum(duration_ms) AS ms FROM spans WHERE time > now() - INTERVAL {n} MINUTE "
    "AND model = '{model}' GROUP BY 1 ORDER BY ms DESC LIMIT {n2};",
    "loaded {model} revision {sha} (sha256:{sha256}) in {ms} ms, quantization awq, max_model_len {n2}",
    "request {uuid} routed to {model} v{ver}; cache miss on key {sha}, latency {ms} ms",
    "def {fn}(self, x: torch.Tensor) -> torch.Tensor:\n    # Returns the normalized embedding.\n"
    "    y = F.normalize(self.proj(x), dim=-1)\n    return y.to(torch.float16)",
    "class {cls}(BaseModel):\n    model_name: str = '{model}'\n    top_k: int = {n}\n    threshold: float = 0.{n}",
    "2024-11-{d}T10:{d}:{d}.{ms}Z INFO worker-{n} ready, pid={n2}, listening on 0.0.0.0:{port}, build {sha}",
    "kubectl rollout restart deployment/{mod}-{n} -n inference && helm upgrade {mod} ./charts/{mod} --version {ver}",
    "pip install vllm=={ver} transformers=={ver} && python -m vllm.entrypoints.openai.api_server --model {model}",
    "commit {sha40}\nAuthor: ci-bot\nDate: {ts}\n\n    Bump {mod} to {ver}; fixes #{n2}",
    '{{"model": "{model}", "temperature": 0.{n}, "max_tokens": {n2}, "stop": ["\\n\\n"], "seed": {n}}}',
    "ValueError: expected shape ({n}, {n2}) but got ({n2}, {n}) in {cls}.forward at step {big}",
    "Benchmark: {model} p50 {ms} ms, p99 {n2} ms, throughput {n} req/s on {n} x H100, ts={epoch}",
    "GET /v1/embeddings?model={model}&dims={n2} 200 {ms}ms trace={sha32} span={sha16} at {epoch_ms}",
    "npm ERR! code ERESOLVE while resolving @types/node@{ver} in /home/runner/work/{mod}/{mod}/package.json",
]
_MODULES = ["retriever", "reranker", "embedder", "router", "guardrail", "ingest", "worker", "scheduler"]
_FUNCS = ["forward", "encode_batch", "rerank", "score_chunks", "handle_request", "_flush", "retrieve_docs"]
_CLASSES = ["RerankerConfig", "EmbeddingService", "ChunkRetriever", "GuardrailPolicy", "TokenBudget"]


def technical_texts(n: int = 500, seed: int = 4) -> list[str]:
    rng = random.Random(seed)

    def hexs(k: int) -> str:
        return "".join(rng.choice("0123456789abcdef") for _ in range(k))

    out = []
    for i in range(n):
        values = {
            "mod": rng.choice(_MODULES),
            "fn": rng.choice(_FUNCS),
            "cls": rng.choice(_CLASSES),
            "model": rng.choice(MODELS),
            "n": rng.randint(1, 99),
            "n2": rng.randint(100, 99999),
            "big": rng.randint(10**8, 10**12),
            "gb": rng.randint(1, 40),
            "ms": rng.randint(1, 999),
            "d": rng.randint(10, 28),
            "port": rng.randint(1024, 65535),
            "ver": f"{rng.randint(0, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
            "sha": hexs(12),
            "sha16": hexs(16),
            "sha32": hexs(32),
            "sha40": hexs(40),
            "sha256": hexs(64),
            "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
            "ts": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:00:00 +0000",
            "epoch": rng.randint(1_600_000_000, 1_800_000_000),
            "epoch_ms": rng.randint(1_600_000_000_000, 1_800_000_000_000),
        }
        out.append(TECH[i % len(TECH)].format(**values))
    return out


def leaks(pair: Pair, stored: str) -> list[tuple[str, str]]:
    """(entity, value) of every planted value still readable in ``stored`` (digit-only forms too)."""
    digits_only = re.sub(r"\D", "", stored)
    out = []
    for entity, value in pair.planted:
        digits = re.sub(r"\D", "", value)
        if value in stored or (
            entity in DIGIT_FORMS and digits in digits_only and digits in _digit_runs(stored)
        ):
            out.append((entity, value))
    return out


def _digit_runs(text: str) -> str:
    """Digit runs with their separators dropped ("4111 1111" -> "41111111"), one per line."""
    return "\n".join(re.sub(r"[ .()+-]", "", run) for run in re.findall(r"[\d][\d .()+-]*\d", text))


def recall(pairs: list[Pair], stored: list[str]) -> dict[str, tuple[int, int]]:
    """entity -> (values no longer readable, values planted); ``stored[i]`` is pair i after redaction."""
    totals: dict[str, list[int]] = {}
    for pair, text in zip(pairs, stored, strict=True):
        leaked = leaks(pair, text)
        for entity, value in pair.planted:
            t = totals.setdefault(entity, [0, 0])
            t[1] += 1
            t[0] += (entity, value) not in leaked
    return {entity: (found, total) for entity, (found, total) in sorted(totals.items())}


# --- held out: sentences written after the NER context rules were tuned on the corpus above ------------

HELD_OUT = [
    "My colleague {P} will join the call from {L} tomorrow.",
    "Can you check why {P}'s order never arrived? It shipped to {L}.",
    "{P} asked whether the {L} warehouse is open on Sundays.",
    "Please forward this to {P}, who manages our accounts near {L}.",
    "According to {P}, the outage in {L} started at 9am.",
    "I am writing on behalf of my mother, {P}, who lives in {L}.",
    "Our driver {P} got stuck outside {L} because of the snow.",
    "The contract was signed by {P} at the {L} branch last week.",
    "Is {P} still the contact person for the {L} region?",
    "Yesterday {P} visited {L} and reported the broken terminal.",
]


def held_out_texts(n: int = 500, seed: int = 11) -> list[tuple[str, str, str]]:
    """(text, person, place): one name and one place per text and no other PII, so no pattern
    finding helps the context rules along."""
    rng = random.Random(seed)
    fakers = [Faker(loc) for loc in ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES")]
    for f in fakers:
        f.seed_instance(seed)
    out = []
    for _ in range(n):
        f = rng.choice(fakers)
        person, place = f"{f.first_name()} {f.last_name()}", _city(rng.choice(fakers), rng)
        out.append((rng.choice(HELD_OUT).format(P=person, L=place), person, place))
    return out
