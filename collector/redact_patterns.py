"""redact_patterns: structured PII and secrets found by regular expressions plus validators.

Pure functions over one string: ``find(text, entities) -> [(start, end, entity)]``. This is the cheap
stage (tens of microseconds a text); names and places are redact_ner's job.

Precision rules live next to each pattern, because technical text (ids, hashes, timestamps, versions)
is full of digit runs: card numbers must pass Luhn and start with a card-network digit, bare digit
runs count as phones or SSNs only with a context word nearby, IBANs must pass ISO 7064 mod 97, IPs
must parse. Every pattern is linear-time (no nested quantifiers over the same characters), so one
hostile text cannot stall the collector.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable

Finding = tuple[int, int, str]  # (start, end, entity)
Validator = Callable[[str, re.Match], bool]

_CONTEXT_CHARS = 48  # how far before a bare digit run a context word may appear
_PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:phone|tel|telephone|cell|mobile|call|text|sms|whatsapp|fax|number|no\.|reach|contact)\b"
)
_SSN_CONTEXT = re.compile(r"(?i)\b(?:ssn|social security|social|tax ?id|tin|itin)\b")
_MAESTRO_12 = ("0604", "50", "56", "57", "58", "63", "67")  # Maestro ranges (0604: UK Maestro)


def _context(pattern: re.Pattern, text: str, m: re.Match) -> bool:
    return pattern.search(text, max(0, m.start() - _CONTEXT_CHARS), m.start()) is not None


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(text: str, m: re.Match) -> bool:
    digits = _digits(m.group(0))
    # Networks issue cards starting 2-6; a Luhn-valid 1xxx… run is an epoch timestamp (1 in 10 pass).
    if not luhn_ok(digits) or not (digits[0] in "23456" or digits.startswith(_MAESTRO_12)):
        return False
    # Only Maestro has 12-digit cards: require its ranges so 12-digit ids stay ids.
    return len(digits) > 12 or digits.startswith(_MAESTRO_12)


def _ssn(text: str, m: re.Match) -> bool:
    return not m.group(0).isdigit() or _context(_SSN_CONTEXT, text, m)


def _phone(text: str, m: re.Match) -> bool:
    value = m.group(0)
    if not value.isdigit():
        return True
    # Bare 10/11 digits: a valid NANP number (area code and exchange start 2-9) or a context word.
    national = value[-10:]
    nanp = national[0] in "23456789" and national[3] in "23456789" and value[:-10] in ("", "1")
    return nanp or _context(_PHONE_CONTEXT, text, m)


def _intl_phone(text: str, m: re.Match) -> bool:
    return 8 <= len(_digits(m.group(0))) <= 15


def _iban(text: str, m: re.Match) -> bool:
    s = m.group(0).replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _ip(text: str, m: re.Match) -> bool:
    value = m.group(0)
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    if ip.is_unspecified or ip.is_loopback:  # 0.0.0.0, 127.0.0.1, ::1 identify no one
        return False
    if ":" in value:  # IPv6: ignore C++/Rust paths like a::b and hex-only words
        return value.count(":") >= 3 and any(ch.isdigit() for ch in value)
    # A dotted quad right after "v"/"version" is a version number.
    return not re.search(r"(?i)(?:\bv|version)\s*$", text[max(0, m.start() - 9) : m.start()])


_BOUND_L = r"(?<![\w.+-])"  # not inside a word, a number or a dotted/dashed token
_BOUND_R = r"(?![\w-]|\.\d)"

# (entity, pattern, validator). Earlier patterns win overlaps (secrets first: a key may hold digits).
PATTERNS: list[tuple[str, re.Pattern, Validator | None]] = [
    ("SECRET", re.compile(r"(?i)\bbearer\s+[a-z0-9._~+/=-]{12,}"), None),
    ("SECRET", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), None),  # JWT
    ("SECRET", re.compile(r"\b(?:sk|pk|rk)[-_](?:[a-z]{2,8}[-_])?[A-Za-z0-9_-]{16,}"), None),
    (
        "SECRET",
        re.compile(
            r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b|\bgh[pousr]_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{30,}"
            r"|\bxox[abprs]-[A-Za-z0-9-]{10,}|\bAIza[0-9A-Za-z_-]{35}|\bglpat-[A-Za-z0-9_-]{20,}"
        ),
        None,
    ),
    (
        "SECRET",
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]{0,8192}?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
        ),
        None,
    ),
    ("SECRET", re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"), None),  # user:password@ in URLs
    # password=…, "api_key": "…", secret: … — the value (group "value") only; the key stays readable.
    (
        "SECRET",
        re.compile(
            r"""(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token)"""
            r"""["']?\s{0,3}[:=]\s{0,3}["']?(?P<value>[^\s"',;&]{6,})"""
        ),
        None,
    ),
    (
        "EMAIL_ADDRESS",
        re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
        None,
    ),
    ("IBAN_CODE", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), _iban),
    ("CREDIT_CARD", re.compile(_BOUND_L + r"\d(?:[ -]?\d){11,18}" + _BOUND_R), _card),
    (
        "US_SSN",
        re.compile(_BOUND_L + r"(?!000|666|9\d\d)\d{3}([- ]?)(?!00)\d{2}\1(?!0000)\d{4}" + _BOUND_R),
        _ssn,
    ),
    (
        "PHONE_NUMBER",
        re.compile(
            r"(?<![\w+.-])(?:(?:\+?1|001)[ .-]?)?(?:\(\d{3}\)\s?|\d{3}[ .-]?)\d{3}[ .-]?\d{4}"
            r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w-]|\.\d)"
        ),
        _phone,
    ),
    (
        "PHONE_NUMBER",
        re.compile(r"(?<![\w+])\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}(?![\w-]|\.\d)"),
        _intl_phone,
    ),
    ("IP_ADDRESS", re.compile(_BOUND_L + r"(?:\d{1,3}\.){3}\d{1,3}" + _BOUND_R), _ip),
    ("IP_ADDRESS", re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"), _ip),
]
ENTITIES = frozenset(entity for entity, _, _ in PATTERNS)


def find(text: str, entities: Iterable[str] = ENTITIES, allow: frozenset[str] = frozenset()) -> list[Finding]:
    """Non-overlapping findings in ``text``, earlier patterns first; ``allow`` values are skipped."""
    wanted = set(entities)
    found: list[Finding] = []
    for entity, pattern, validate in PATTERNS:
        if entity not in wanted:
            continue
        for m in pattern.finditer(text):
            start, end = m.span("value") if "value" in pattern.groupindex else m.span()
            if start == end or text[start:end] in allow or (validate is not None and not validate(text, m)):
                continue
            if not any(s < end and start < e for s, e, _ in found):
                found.append((start, end, entity))
    return found
