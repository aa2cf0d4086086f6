"""The pattern redaction stage: entities, numbering per trace, pseudonyms, fail closed, and the
end-to-end promise that planted values never reach the data directory."""

from __future__ import annotations

import stat

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

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
}


def redactor(tmp_path):
    return Redactor.from_config(RedactionConfig(), tmp_path)


def test_each_entity_is_replaced_and_counted(tmp_path):
    r = redactor(tmp_path)
    for entity, value in PLANTED.items():
        (out,) = r.redact_texts([f"please use {value} for this"], ["t1"])
        assert value not in out.text and f"<{entity}_1>" in out.text, (entity, out.text)
        assert out.pii == {entity: 1} and not out.failed


def test_numbering_per_trace_and_technical_text_left_alone(tmp_path):
    r = redactor(tmp_path)
    a, b, c = r.redact_texts(
        ["mail a@x.io then b@x.io", "again a@x.io", "c@x.io in another trace"], ["t1", "t1", "t2"]
    )
    assert a.text == "mail <EMAIL_ADDRESS_1> then <EMAIL_ADDRESS_2>"
    assert b.text == "again <EMAIL_ADDRESS_1>"  # same person, same number within the trace
    assert c.text == "<EMAIL_ADDRESS_1> in another trace"
    technical = (
        "model llama-3.1-8b-instruct-awq v2.4.1, uuid 3f2b8c1e-9d4a-4e7b-8f6a-2c1d0e9b7a65, sha 9f86d081884c"
    )
    assert r.redact_texts([technical], ["t3"])[0].text == technical
    assert r.redact_texts(["card 4111 1111 1111 1112 fails Luhn"], ["t"])[0].text.endswith("fails Luhn")


def test_pseudonyms_are_keyed_stable_and_the_key_is_private(tmp_path):
    r1, r2 = redactor(tmp_path), redactor(tmp_path)
    assert r1.pseudonymize("user-42") == r2.pseudonymize("user-42") != r1.pseudonymize("user-43")
    assert r1.pseudonymize(r1.pseudonymize("user-42")) == r1.pseudonymize("user-42")
    assert stat.S_IMODE((tmp_path / "pseudonym.key").stat().st_mode) == 0o600
    other = Redactor(load_or_create_key(tmp_path / "other"), RedactionConfig().entities)
    assert other.pseudonymize("user-42") != r1.pseudonymize("user-42")


def test_fails_closed(tmp_path):
    import re

    r = redactor(tmp_path)

    def broken_validator(match):
        raise RuntimeError("recognizer crashed")

    r._patterns = [("CREDIT_CARD", re.compile(r"\d+"), broken_validator), *r._patterns]
    (out,) = r.redact_texts(["secret jane.doe@example.org, id 12345"], ["t"])
    assert out.text == FAILED_MARKER and out.failed
    tables = {"content": {"text": ["raw 12345 text"], "trace_id": ["t"], "pii": [None], "redaction": ["off"]}}
    redact_tables(tables, r)
    assert tables["content"]["text"] == [FAILED_MARKER] and tables["content"]["redaction"] == ["failed"]


def test_planted_pii_never_reaches_the_data_dir(collector_factory, tmp_path):
    c = collector_factory(None, env={"RAGTRAIL_REDACTION": "on"})
    provider = TracerProvider(resource=Resource.create({"service.name": "pii"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=c.grpc_endpoint, insecure=True))
    )
    tracer = provider.get_tracer("t")
    text = "Hi, reach me at " + ", ".join(PLANTED.values())
    with tracer.start_as_current_span("chat", attributes={
        "openinference.span.kind": "LLM", "input.value": text, "user.id": "user-raw-9931",
        "note": PLANTED["EMAIL_ADDRESS"], "llm.output_messages.0.message.content": text,
    }) as span:  # fmt: skip
        span.record_exception(ValueError(f"lookup failed for {PLANTED['CREDIT_CARD']}"))
    provider.shutdown()
    c.wait_for("SELECT count(*) FROM content", 2)
    assert c.scalar("SELECT count(*) FROM content WHERE text LIKE '%<EMAIL_ADDRESS_1>%'") == 2
    assert c.scalar("SELECT user_id FROM spans").startswith("u_")
    c.stop()
    digit_forms = {v.replace(" ", "").replace("-", "") for v in PLANTED.values()}
    needles = [v.encode() for v in [*PLANTED.values(), *digit_forms, "user-raw-9931"]]
    import pyarrow.parquet as pq

    for path in c.data_dir.rglob("*"):
        if not path.is_file():
            continue
        blobs = [path.read_bytes()]
        if path.suffix == ".parquet":
            blobs.append(pq.read_table(path).to_pandas().to_csv().encode())
        for blob in blobs:
            found = [n for n in needles if n in blob]
            assert not found, f"{found} in {path}"
    log = c.log_path.read_bytes()
    assert not [n for n in needles if n in log]
