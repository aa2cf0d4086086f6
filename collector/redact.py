"""redact: PII out of every free-text field before the WAL; user ids become keyed HMAC pseudonyms.

Two detectors feed one replacement step: redact_patterns (structured entities and secrets, every
string) and redact_ner (PERSON / LOCATION via Presidio + spaCy, on free text and on attribute strings
of at least ``min_attribute_chars``). Matches become placeholders numbered per trace
(``<PERSON_1>``): the same value in the same trace keeps its number across fields and batches
handled by this process, so a reader can follow who is who without the value.

``redact_tables`` gathers every text of a normalized batch into one ``redact_texts`` call, so NER
runs once per batch. Findings (offsets only) are cached under a keyed hash of the text: repeated
system prompts and documents cost a dictionary lookup. Neither the cache nor the numbering holds a
raw value.

Fail closed: a text whose redaction raises, or is not done before the batch's time budget
(``timeout_seconds`` per 10,000 characters) runs out, is stored as ``<REDACTION_FAILED>``, never raw. Nothing here logs content.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtrail.collector import redact_patterns
from ragtrail.collector.redact_patterns import Finding

FAILED_MARKER = "<REDACTION_FAILED>"
KEY_FILE = "pseudonym.key"
PSEUDONYM_PREFIX = "u_"
USER_ID_KEYS = frozenset(
    {
        "user.id",
        "enduser.id",
        "user_id",
        "traceloop.association.properties.user_id",
        "ragtrail.user.id",
        "langfuse.user.id",
        "gen_ai.user.id",
    }
)
NER_ENTITIES = frozenset({"PERSON", "LOCATION"})
_MAX_SCOPES = 4096  # traces whose numbering is remembered (LRU)


@dataclass
class Redacted:
    text: str
    pii: dict[str, int]
    failed: bool


@dataclass
class _Scope:
    """Placeholder numbering for one trace: the same value gets the same number.

    Values are remembered by keyed digest, never in clear."""

    numbers: dict[tuple[str, bytes], int] = field(default_factory=dict)
    next_by_entity: dict[str, int] = field(default_factory=dict)
    names: dict[bytes, str] = field(default_factory=dict)  # digest of a name NER found -> entity

    def placeholder(self, entity: str, digest: bytes) -> str:
        key = (entity, digest)
        if key not in self.numbers:
            n = self.next_by_entity.get(entity, 0) + 1
            self.next_by_entity[entity] = n
            self.numbers[key] = n
        return f"<{entity}_{self.numbers[key]}>"


def load_or_create_key(data_dir: Path) -> bytes:
    """The HMAC key for pseudonyms: 32 random bytes, created once with mode 0600."""
    path = Path(data_dir) / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process (a pool worker) created it first
        return path.read_bytes()
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(32))
        fh.flush()
        os.fsync(fh.fileno())
    return path.read_bytes()


def pseudonym(key: bytes, user_id: str) -> str:
    """The keyed HMAC pseudonym of a user id (``u_`` + 16 hex); erasure and exports derive it too."""
    if user_id.startswith(PSEUDONYM_PREFIX) and len(user_id) == len(PSEUDONYM_PREFIX) + 16:
        return user_id  # already a pseudonym (idempotent on replays and re-exports)
    digest = hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:16]


class Redactor:
    def __init__(
        self,
        key: bytes,
        entities: Sequence[str],
        allow_list: Sequence[str] = (),
        min_attribute_chars: int = 24,
        *,
        ner: bool = True,
        timeout_seconds: float = 5.0,
        cache_entries: int = 50_000,
    ):
        self._key = key
        self._entities = frozenset(entities)
        self._allow = frozenset(allow_list)
        self.min_attribute_chars = min_attribute_chars
        self.timeout_seconds = timeout_seconds
        self._ner = None
        if ner and self._entities & {"PERSON", "LOCATION"}:
            from ragtrail.collector.redact_ner import NerDetector  # spaCy: ~1 s to load

            self._ner = NerDetector(self._entities, allow_list)
        # Separate keys per use, derived from the pseudonym key: a digest in one place says nothing
        # about another. The cache key is per process, so cached offsets never outlive it.
        self._value_key = hmac.new(key, b"ragtrail placeholder values", hashlib.sha256).digest()
        self._cache_key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, tuple[Finding, ...]] = OrderedDict()
        self._cache_entries = cache_entries
        self._scopes: OrderedDict[str | None, _Scope] = OrderedDict()
        self.failures = 0

    @classmethod
    def from_config(cls, config, data_dir: Path) -> Redactor:
        return cls(
            load_or_create_key(data_dir),
            config.entities,
            config.allow_list,
            config.min_attribute_chars,
            ner=config.ner,
            timeout_seconds=config.timeout_seconds,
            cache_entries=config.cache_entries,
        )

    def pseudonymize(self, user_id: str) -> str:
        return pseudonym(self._key, user_id)

    def redact_texts(
        self, texts: Sequence[str], scopes: Sequence[str | None], ner: Sequence[bool] | None = None
    ) -> list[Redacted]:
        """Redact ``texts``; ``scopes[i]`` (the trace id) numbers placeholders, ``ner[i]`` (default
        all True) says whether names and places are looked for in ``texts[i]``."""
        # The time budget grows with the batch: timeout_seconds per 10,000 characters, about 20x
        # what NER needs on a loaded core, so only a stalled detector runs out of it.
        chars = sum(map(len, texts))
        deadline = time.monotonic() + self.timeout_seconds * max(1.0, chars / 10_000)
        want_ner = [True] * len(texts) if ner is None else list(ner)
        findings = self._detect(texts, want_ner, deadline)
        if self._ner is not None:
            findings = self._propagate(texts, scopes, findings)
        out = []
        for text, scope, found in zip(texts, scopes, findings, strict=True):
            if found is None:
                self.failures += 1
                out.append(Redacted(FAILED_MARKER, {}, True))
            else:
                out.append(self._replace(text, found, self._scope(scope)))
        return out

    def _propagate(self, texts: Sequence[str], scopes: Sequence[str | None], findings: list) -> list:
        """Redact, in every text of a trace, the names and places NER found in any of them.

        The model misses a name in one sentence ("Thanks Gregory Smith") that it found in another,
        or in an earlier batch of the trace. Each trace remembers the digests of its names (and of
        a PERSON's first and last names alone); every run of Title-case words in its texts is
        checked against them. Case-sensitive, whole words, no raw value kept."""
        for text, scope, found in zip(texts, scopes, findings, strict=True):
            for start, end, entity in found or ():
                if entity in NER_ENTITIES:
                    names = self._scope(scope).names
                    names.setdefault(self._digest(text[start:end]), entity)
                    for part in text[start:end].split() if entity == "PERSON" else ():
                        if len(part) > 2:
                            names.setdefault(self._digest(part), entity)
        out = []
        for text, scope, found in zip(texts, scopes, findings, strict=True):
            names = self._scopes[scope].names if scope in self._scopes else None
            if found is None or not names:
                out.append(found)
                continue
            extra = []
            for start, end in self._ner.name_spans(text):
                entity = names.get(self._digest(text[start:end]))
                if entity is not None and not any(s < end and start < e for s, e, _ in extra):
                    extra.append((start, end, entity))
            out.append(tuple(sorted(_merge(list(found), extra))) if extra else found)
        return out

    def _digest(self, value: str) -> bytes:
        return hmac.new(self._value_key, value.encode(), hashlib.sha256).digest()[:16]

    def _detect(self, texts: Sequence[str], ner: list[bool], deadline: float) -> list[tuple | None]:
        """Findings per text (None = failed, fail closed). Cache hits and repeats within the batch
        (one system prompt on every span) skip both detectors."""
        found: list[tuple | None] = [None] * len(texts)
        keys: list[bytes] = []
        todo: list[int] = []
        first: dict[bytes, int] = {}
        repeats: list[tuple[int, int]] = []
        for i, text in enumerate(texts):
            use_ner = ner[i] and self._ner is not None
            keys.append(
                hashlib.blake2b(text.encode(), key=self._cache_key, person=b"n" if use_ner else b"p").digest()
            )
            hit = self._cache.get(keys[i])
            if hit is not None:
                self._cache.move_to_end(keys[i])
                found[i] = hit
            elif keys[i] in first:
                repeats.append((i, first[keys[i]]))
            else:
                first[keys[i]] = i
                todo.append(i)
        patterns: dict[int, list[Finding]] = {}
        for i in todo:
            if time.monotonic() > deadline:
                break
            patterns[i] = _guard(lambda t=texts[i]: redact_patterns.find(t, self._entities, self._allow))
            if time.monotonic() > deadline:  # finished past the budget: a stalled detector, not trusted
                patterns[i] = None
                break
        named = self._names(
            [i for i in patterns if ner[i] and patterns[i] is not None], texts, patterns, deadline
        )
        for i, pattern_found in patterns.items():
            if pattern_found is None or (i in named and named[i] is None):
                continue
            merged = tuple(sorted(_merge(pattern_found, named.get(i) or [])))
            found[i] = merged
            self._remember(keys[i], merged)
        for i, j in repeats:
            found[i] = found[j]
        return found

    def _names(self, idx: list[int], texts, patterns, deadline: float) -> dict[int, list[Finding] | None]:
        """NER findings for texts ``idx`` (None = failed); texts without a Title-case word skip it."""
        if self._ner is None or not idx:
            return {}
        windows = {i: _guard(lambda i=i: self._ner.windows(texts[i], patterns[i])) for i in idx}
        failed = {i: None for i in idx if windows[i] is None}
        idx = [i for i in idx if windows[i]]
        if idx and time.monotonic() > deadline:
            return failed | dict.fromkeys(idx)
        if not idx:
            return failed
        batch = _guard(
            lambda: self._ner.find(
                [texts[i] for i in idx], [windows[i] for i in idx], [bool(patterns[i]) for i in idx]
            )
        )
        if batch is None:  # one bad text must not fail its whole batch: retry them one by one
            batch = [
                _guard(lambda i=i: self._ner.find([texts[i]], [windows[i]], [bool(patterns[i])])[0])
                for i in idx
            ]
        if time.monotonic() > deadline:
            return failed | dict.fromkeys(idx)
        return failed | dict(zip(idx, batch, strict=True))

    def _remember(self, key: bytes, found: tuple[Finding, ...]) -> None:
        if self._cache_entries <= 0:
            return
        self._cache[key] = found
        if len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)

    def _scope(self, trace_id: str | None) -> _Scope:
        scope = self._scopes.get(trace_id)
        if scope is None:
            scope = self._scopes[trace_id] = _Scope()
            if len(self._scopes) > _MAX_SCOPES:
                self._scopes.popitem(last=False)
        else:
            self._scopes.move_to_end(trace_id)
        return scope

    def _replace(self, text: str, found: Sequence[Finding], scope: _Scope) -> Redacted:
        if not found:
            return Redacted(text, {}, False)
        pieces, counts, pos = [], {}, 0
        for start, end, entity in found:
            pieces += [text[pos:start], scope.placeholder(entity, self._digest(text[start:end]))]
            counts[entity] = counts.get(entity, 0) + 1
            pos = end
        pieces.append(text[pos:])
        return Redacted("".join(pieces), counts, False)


def _guard(fn: Callable[[], Any]) -> Any:
    """``fn()``, or None if it raised: the caller turns None into the failure marker."""
    try:
        return fn()
    except Exception:  # fail closed; the exception may quote the text, so it is not logged
        return None


def _merge(first: list[Finding], second: list[Finding]) -> list[Finding]:
    """``first`` plus the findings of ``second`` that overlap none of it (patterns beat NER)."""
    return first + [f for f in second if not any(s < f[1] and f[0] < e for s, e, _ in first)]


# --- batches -----------------------------------------------------------------------------------------

# Free-text columns: (table, column). NER always runs on them.
TEXT_COLUMNS = (
    ("content", "text"),
    ("logs", "body"),
    ("spans", "status_message"),
    ("quality", "explanation"),
)
# Attribute-like JSON columns walked key by key.
ATTRIBUTE_COLUMNS = (
    ("spans", "attributes"),
    ("spans", "events"),
    ("logs", "attributes"),
    ("metrics", "attributes"),
)
# Event attributes that are free text whatever their length.
ALWAYS_TEXT_KEYS = frozenset({"exception.message", "exception.stacktrace", "message", "body"})
# Keys whose values are identifiers or model names: patterns only (an id may still hold an email).
_ID_SUFFIXES = (".id", "_id", ".model", "model_name", ".version", "_version")


class _Pending:
    """A string sent for redaction; its result replaces this marker in the attribute tree."""

    __slots__ = ("index", "was_int")

    def __init__(self, index: int, was_int: bool = False):
        self.index = index
        self.was_int = was_int


class _Batch:
    """Every text of one normalized batch, redacted with a single ``redact_texts`` call."""

    def __init__(self, redactor: Redactor):
        self.redactor = redactor
        self.texts: list[str] = []
        self.scopes: list[str | None] = []
        self.ner: list[bool] = []
        self.results: list[Redacted] = []

    def add(self, text: str, scope: str | None, ner: bool, was_int: bool = False) -> _Pending:
        self.texts.append(text)
        self.scopes.append(scope)
        self.ner.append(ner)
        return _Pending(len(self.texts) - 1, was_int)

    def walk(self, value: Any, scope: str | None, key: str = "") -> Any:
        """Copy of an attribute tree with strings queued; user ids pseudonymized right away."""
        if isinstance(value, dict):
            return {k: self.walk(v, scope, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, scope, key) for v in value]
        if isinstance(value, str) and value:
            if key in USER_ID_KEYS:
                return self.redactor.pseudonymize(value)
            ner = key in ALWAYS_TEXT_KEYS or (
                len(value) >= self.redactor.min_attribute_chars and not key.endswith(_ID_SUFFIXES)
            )
            return self.add(value, scope, ner)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**8:
            # A phone, card or SSN sent as an integer attribute is still PII.
            return self.add(str(value), scope, False, was_int=True)
        return value

    def run(self) -> None:
        if self.texts:
            self.results = self.redactor.redact_texts(self.texts, self.scopes, self.ner)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, _Pending):
            text = self.results[value.index].text
            return int(text) if value.was_int and text == self.texts[value.index] else text
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value


def redact_tables(tables: dict[str, dict[str, list]], redactor: Redactor) -> None:
    """Redact, in place, every free-text field of a normalized batch (before Arrow encoding)."""
    batch = _Batch(redactor)
    for table, column in TEXT_COLUMNS + ATTRIBUTE_COLUMNS:
        cols = tables.get(table)
        if not cols or not cols.get(column):
            continue
        scopes = cols.get("trace_id") or [None] * len(cols[column])
        if (table, column) in TEXT_COLUMNS:
            cols[column] = [
                batch.add(v, s, True) if isinstance(v, str) and v else v
                for v, s in zip(cols[column], scopes, strict=True)
            ]
        elif column == "events":
            cols[column] = [
                [{**ev, "attributes": batch.walk(ev.get("attributes"), s)} for ev in evs] if evs else evs
                for evs, s in zip(cols[column], scopes, strict=True)
            ]
        else:
            cols[column] = [batch.walk(v, s) for v, s in zip(cols[column], scopes, strict=True)]
    spans = tables.get("spans")
    if spans and spans.get("user_id"):
        spans["user_id"] = [redactor.pseudonymize(u) if u else u for u in spans["user_id"]]

    batch.run()
    content = tables.get("content")
    if content and content.get("text"):
        outcomes = [batch.results[p.index] if isinstance(p, _Pending) else None for p in content["text"]]
        content["pii"] = [(r.pii or None) if r else None for r in outcomes]
        content["redaction"] = ["failed" if r and r.failed else "ok" for r in outcomes]
    for table, column in TEXT_COLUMNS + ATTRIBUTE_COLUMNS:
        cols = tables.get(table)
        if cols and cols.get(column):
            cols[column] = [batch.resolve(v) for v in cols[column]]
