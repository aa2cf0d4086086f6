"""The Redactor seam on single texts: entities and their validators, numbering per trace, pseudonyms,
the findings cache, fail closed. (Batches: test_redact_tables.py; corpora: test_redact_recall.py;
end to end: test_redact_e2e.py.)"""

from __future__ import annotations

import re
import stat

import pytest

from ragtrail.collector import redact_patterns
from ragtrail.collector.redact import FAILED_MARKER, Redactor, load_or_create_key, redact_tables
from ragtrail.config import RedactionConfig

PLANTED = {
    "EMAIL_ADDRESS": "jane.doe@example.org",
    "PHONE_NUMBER": "(415) 555-0132",
    "CREDIT_CARD": "4111 1111 1111 1111",
    "US_SSN": "078-05-1120",
    "IBAN_CODE": "DE89 3704 0044 0532 0130 00",
    "IP_ADDRESS": "203.0.113.77",
    "SECRET": "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e",
    "PERSON": "Maria Lopez",
    "LOCATION": "Berlin",
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One NER redactor for the module (spaCy takes seconds to load); each test uses its own scopes."""
    return Redactor.from_config(RedactionConfig(), tmp_path_factory.mktemp("key"))


def test_each_entity_is_replaced_and_counted(shared):
    sentences = {"PERSON": "please ask {} for this", "LOCATION": "we met in {} last year"}
    for entity, value in PLANTED.items():
        text = sentences.get(entity, "please use {} for this").format(value)
        (out,) = shared.redact_texts([text], [entity])
        assert value not in out.text and f"<{entity}_1>" in out.text, (entity, out.text)
        assert out.pii == {entity: 1} and not out.failed


def test_numbering_per_trace_and_technical_text_left_alone(shared):
    a, b, c = shared.redact_texts(
        ["mail a@x.io then b@x.io", "again a@x.io", "c@x.io in another trace"], ["n1", "n1", "n2"]
    )
    assert a.text == "mail <EMAIL_ADDRESS_1> then <EMAIL_ADDRESS_2>"
    assert b.text == "again <EMAIL_ADDRESS_1>"  # same value, same number within the trace
    assert c.text == "<EMAIL_ADDRESS_1> in another trace"
    (later,) = shared.redact_texts(["b@x.io replied"], ["n1"])  # a later batch of the same trace
    assert later.text == "<EMAIL_ADDRESS_2> replied"
    technical = [
        "model llama-3.1-8b-instruct-awq v2.4.1 on GPU 0, f(x) = 3, uuid 3f2b8c1e-9d4a-4e7b-8f6a-2c1d0e9b7a65",
        "card 4111 1111 1111 1112 fails the check",
        "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total capacity)",
        "class EmbeddingService(BaseModel): model_name = 'Qwen2.5-72B-Instruct'",
    ]
    assert [x.text for x in shared.redact_texts(technical, ["n3"] * 4)] == technical


def test_names_found_once_are_redacted_everywhere_in_the_trace(shared):
    a, b = shared.redact_texts(
        [
            "Hi, my name is Gregory Smith and I live in Lyon.",
            "Thanks Gregory, noted. Smith's file is updated.",
        ],
        ["p1", "p1"],
    )
    assert a.text == "Hi, my name is <PERSON_1> and I live in <LOCATION_1>."
    assert "Gregory" not in b.text and "Smith" not in b.text


def test_names_the_model_misses_are_caught_by_context(shared):
    texts = [
        "answered: Thanks Ettore Villarosa, the refund is scheduled.",  # after a salutation
        "the refund for Sonia Hansen is scheduled",  # two Title-case words inside a sentence
        "## Getting Started Guide\nInstall the package and run it.",  # a heading is not a name
    ]
    a, b, c = shared.redact_texts(texts, ["m1", "m2", "m3"])
    assert a.text == "answered: Thanks <PERSON_1>, the refund is scheduled."
    assert b.text == "the refund for <PERSON_1> is scheduled"
    assert c.text == texts[2]


def test_digit_runs_need_a_validator_or_context(shared):
    kept = [
        "epoch 1732518930 and 1732518930123 ms",  # timestamps: not NANP, not a card network
        "build 9f86d081884c7d659a2feaa0c55ad015 at 2024-11-25T10:00:00Z",
        "order 123456789 shipped",  # 9 digits without an SSN word nearby
        "listening on 0.0.0.0:8080 and 127.0.0.1",  # identify no one
        "version 10.0.0.1 and v1.2.3.4",
        "std::vector<int> a::b",
    ]
    assert [x.text for x in shared.redact_texts(kept, ["d0"] * len(kept))] == kept
    redacted = {
        "SSN 078051120": "SSN <US_SSN_1>",
        "call me at 0145656341": "call me at <PHONE_NUMBER_1>",
        "maestro 060438339693 ok": "maestro <CREDIT_CARD_1> ok",
        "ext 604.565.6341x123.": "ext <PHONE_NUMBER_1>.",
        "postgres://admin:S3cretPw@db:5432/app": "postgres://<SECRET_1>@db:5432/app",
        'password="hunter2hunter2"': 'password="<SECRET_1>"',
        "at fe80::1ff:fe23:4567:890a now": "at <IP_ADDRESS_1> now",
        "id 4829103847 here": "id <PHONE_NUMBER_1> here",  # a valid NANP number: privacy first
    }
    for i, (text, expected) in enumerate(redacted.items()):
        assert shared.redact_texts([text], [f"d{i + 1}"])[0].text == expected


def test_cache_returns_the_same_findings_numbered_per_trace(shared):
    text = "You help Acme customers. Escalate to Maria Lopez (maria@acme.example)."
    a, b = shared.redact_texts([text, text], ["c1", "c2"])
    assert a.text == b.text == "You help Acme customers. Escalate to <PERSON_1> (<EMAIL_ADDRESS_1>)."
    assert a.pii == b.pii == {"PERSON": 1, "EMAIL_ADDRESS": 1}


def test_pseudonyms_are_keyed_stable_and_the_key_is_private(tmp_path):
    config = RedactionConfig(ner=False)
    r1, r2 = Redactor.from_config(config, tmp_path), Redactor.from_config(config, tmp_path)
    assert r1.pseudonymize("user-42") == r2.pseudonymize("user-42") != r1.pseudonymize("user-43")
    assert re.fullmatch(r"u_[0-9a-f]{16}", r1.pseudonymize("user-42"))
    assert r1.pseudonymize(r1.pseudonymize("user-42")) == r1.pseudonymize("user-42")
    assert stat.S_IMODE((tmp_path / "pseudonym.key").stat().st_mode) == 0o600
    other = Redactor(load_or_create_key(tmp_path / "other"), config.entities, ner=False)
    assert other.pseudonymize("user-42") != r1.pseudonymize("user-42")


def test_fails_closed_when_a_recognizer_raises(tmp_path, monkeypatch):
    r = Redactor.from_config(RedactionConfig(ner=False), tmp_path)

    def broken_validator(text, match):
        raise RuntimeError("recognizer crashed")

    broken = ("CREDIT_CARD", re.compile(r"12345"), broken_validator)
    monkeypatch.setattr(redact_patterns, "PATTERNS", [broken, *redact_patterns.PATTERNS])
    ok, bad = r.redact_texts(
        ["mail jane.doe@example.org", "secret jane.doe@example.org, id 12345"], ["t", "t"]
    )
    assert ok.text == "mail <EMAIL_ADDRESS_1>" and not ok.failed
    assert bad.text == FAILED_MARKER and bad.failed and r.failures == 1
    tables = {"content": {"text": ["raw 12345 text"], "trace_id": ["t"], "pii": [None], "redaction": ["off"]}}
    redact_tables(tables, r)
    assert tables["content"]["text"] == [FAILED_MARKER] and tables["content"]["redaction"] == ["failed"]


def test_a_text_the_model_rejects_fails_closed_alone(shared):
    # One window longer than spaCy's max_length: spaCy raises for that text, the others go through.
    huge = "Ada Lovelace " * (shared._ner._engine.nlp["en"].max_length // 13 + 1)
    ok, bad = shared.redact_texts(["Grace Hopper wrote it", huge], ["h1", "h1"])
    assert ok.text == "<PERSON_1> wrote it" and not ok.failed
    assert bad.text == FAILED_MARKER and bad.failed


def test_a_stalled_batch_fails_closed(tmp_path):
    r = Redactor.from_config(RedactionConfig(timeout_seconds=0), tmp_path)
    out = r.redact_texts(["Ask Maria Lopez at maria@example.org"], ["t"])
    assert [(x.text, x.failed) for x in out] == [(FAILED_MARKER, True)]
