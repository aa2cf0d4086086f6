"""redact: PII out of every free-text field before the WAL; user ids become keyed HMAC pseudonyms.

This is the pattern stage: structured entities (email, phone, card with Luhn check, US SSN, IBAN,
IP address) and secrets (API keys, bearer tokens, passwords in URLs). Matches become placeholders
numbered per trace (``<EMAIL_ADDRESS_1>``), so a reader can follow who is who without the value.
Names and places (PERSON, LOCATION) need NER; the Presidio stage for them is issue 4's work and
plugs in behind ``Redactor.redact_texts``.

Fail closed: if redacting a text raises, the stored text is ``<REDACTION_FAILED>``, never the raw
text, and nothing here logs content.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAILED_MARKER = "<REDACTION_FAILED>"
KEY_FILE = "pseudonym.key"
PSEUDONYM_PREFIX = "u_"
USER_ID_KEYS = frozenset(
    {"user.id", "enduser.id", "traceloop.association.properties.user_id", "ragtrail.user.id"}
)


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(match: re.Match) -> bool:
    digits = re.sub(r"\D", "", match.group(0))
    return 13 <= len(digits) <= 19 and _luhn_ok(digits)


# (entity, pattern, validator). Order matters: earlier entities claim their text first.
PATTERNS: list[tuple[str, re.Pattern, Any]] = [
    ("SECRET", re.compile(r"(?i)\bbearer\s+[a-z0-9._~+/=-]{12,}"), None),
    ("SECRET", re.compile(r"\b(?:sk|pk|rk)[-_](?:live[-_]|test[-_]|proj[-_])?[A-Za-z0-9_-]{16,}\b"), None),
    (
        "SECRET",
        re.compile(
            r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b|\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bxox[abpr]-[A-Za-z0-9-]{10,}"
        ),
        None,
    ),
    ("SECRET", re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"), None),  # user:password@ in URLs
    ("EMAIL_ADDRESS", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"), None),
    ("IBAN_CODE", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), None),
    ("CREDIT_CARD", re.compile(r"\b\d(?:[ -]?\d){12,18}\b"), _card),
    ("US_SSN", re.compile(r"\b(?!000|666|9\d\d)\d{3}[- ]?(?!00)\d{2}[- ]?(?!0000)\d{4}\b"), None),
    (
        "PHONE_NUMBER",
        re.compile(
            r"(?:(?<!\w)\+?1[ .-]?)?\(?\b\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}\b(?:\s*(?:x|ext\.?)\s*\d{1,5})?"
        ),
        None,
    ),
    ("PHONE_NUMBER", re.compile(r"(?<!\w)\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}\b"), None),
    (
        "IP_ADDRESS",
        re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"),
        None,
    ),
]


@dataclass
class Redacted:
    text: str
    pii: dict[str, int]
    failed: bool


@dataclass
class _Scope:
    """Placeholder numbering for one trace: the same value gets the same number."""

    numbers: dict[tuple[str, str], int] = field(default_factory=dict)
    next_by_entity: dict[str, int] = field(default_factory=dict)

    def placeholder(self, entity: str, value: str) -> str:
        key = (entity, value)
        if key not in self.numbers:
            n = self.next_by_entity.get(entity, 0) + 1
            self.next_by_entity[entity] = n
            self.numbers[key] = n
        return f"<{entity}_{self.numbers[key]}>"


def load_or_create_key(data_dir: Path) -> bytes:
    """The HMAC key for pseudonyms: 32 random bytes, created once with mode 0600."""
    path = Path(data_dir) / KEY_FILE
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


class Redactor:
    def __init__(
        self,
        key: bytes,
        entities: Sequence[str],
        allow_list: Sequence[str] = (),
        min_attribute_chars: int = 24,
    ):
        self._key = key
        wanted = set(entities)
        self._patterns = [p for p in PATTERNS if p[0] in wanted]
        self._allow = frozenset(allow_list)
        self.min_attribute_chars = min_attribute_chars

    @classmethod
    def from_config(cls, config, data_dir: Path) -> Redactor:
        return cls(
            load_or_create_key(data_dir), config.entities, config.allow_list, config.min_attribute_chars
        )

    def pseudonymize(self, user_id: str) -> str:
        if user_id.startswith(PSEUDONYM_PREFIX) and len(user_id) == len(PSEUDONYM_PREFIX) + 16:
            return user_id  # already a pseudonym (idempotent on replays and re-exports)
        digest = hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:16]

    def redact_texts(self, texts: Sequence[str], scopes: Sequence[str | None]) -> list[Redacted]:
        by_scope: dict[str | None, _Scope] = {}
        out = []
        for text, scope in zip(texts, scopes, strict=True):
            try:
                out.append(self._redact_one(text, by_scope.setdefault(scope, _Scope())))
            except Exception:  # fail closed: never the raw text
                out.append(Redacted(FAILED_MARKER, {}, True))
        return out

    def _redact_one(self, text: str, scope: _Scope) -> Redacted:
        spans: list[tuple[int, int, str]] = []
        for entity, pattern, validate in self._patterns:
            for m in pattern.finditer(text):
                if validate is not None and not validate(m):
                    continue
                if m.group(0) in self._allow or any(s < m.end() and m.start() < e for s, e, _ in spans):
                    continue
                spans.append((m.start(), m.end(), entity))
        if not spans:
            return Redacted(text, {}, False)
        spans.sort()
        pieces, counts, pos = [], {}, 0
        for start, end, entity in spans:
            pieces.append(text[pos:start])
            pieces.append(scope.placeholder(entity, text[start:end]))
            counts[entity] = counts.get(entity, 0) + 1
            pos = end
        pieces.append(text[pos:])
        return Redacted("".join(pieces), counts, False)


def redact_tables(tables: dict[str, dict[str, list]], redactor: Redactor) -> None:
    """Redact, in place, every free-text field of a normalized batch (before Arrow encoding)."""
    content = tables.get("content")
    if content and content["text"]:
        results = redactor.redact_texts(content["text"], content["trace_id"])
        content["text"] = [r.text for r in results]
        content["pii"] = [r.pii or None for r in results]
        content["redaction"] = ["failed" if r.failed else "ok" for r in results]
    for table, column in (("logs", "body"), ("spans", "status_message"), ("quality", "explanation")):
        cols = tables.get(table)
        if cols and cols.get(column):
            _redact_column(cols, column, redactor)
    for table in ("spans", "logs", "metrics"):
        cols = tables.get(table)
        if not cols:
            continue
        scopes = cols.get("trace_id") or [None] * len(cols["attributes"])
        cols["attributes"] = [
            _redact_value(a, redactor, s) for a, s in zip(cols["attributes"], scopes, strict=True)
        ]
        if table == "spans":
            cols["events"] = [
                _redact_value(e, redactor, s) for e, s in zip(cols["events"], scopes, strict=True)
            ]
        if "user_id" in cols:
            cols["user_id"] = [redactor.pseudonymize(u) if u else u for u in cols["user_id"]]


def _redact_column(cols: dict[str, list], column: str, redactor: Redactor) -> None:
    values = cols[column]
    idx = [i for i, v in enumerate(values) if isinstance(v, str) and v]
    scopes = cols.get("trace_id") or [None] * len(values)
    for i, r in zip(
        idx, redactor.redact_texts([values[i] for i in idx], [scopes[i] for i in idx]), strict=True
    ):
        values[i] = r.text


def _redact_value(value: Any, redactor: Redactor, scope: str | None, key: str = "") -> Any:
    """Walk attribute dicts/lists: pseudonymize user ids, redact every string (patterns are cheap;
    ``min_attribute_chars`` is for the costlier NER stage)."""
    if isinstance(value, dict):
        return {k: _redact_value(v, redactor, scope, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, redactor, scope, key) for v in value]
    if isinstance(value, str) and value:
        if key in USER_ID_KEYS:
            return redactor.pseudonymize(value)
        return redactor.redact_texts([value], [scope])[0].text
    return value
