"""redact_tables on real normalized batches: OTLP/JSON requests through collector.pipeline (decode ->
normalize -> redact -> encode), in this process and in a process pool built with init_worker."""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor

import orjson
import pytest

from ragtrail.collector import pipeline, rows
from ragtrail.collector.encoding import Format
from ragtrail.config import RedactionConfig

TRACE = "5b8efff798038103d269b633813fc60c"
PROMPT = "Hi, I am Maria Lopez from Berlin. Card 4111 1111 1111 1111, mail maria.lopez@example.org."


def attr(key, value):
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, dict):
        return {"key": key, "value": {"kvlistValue": {"values": [attr(k, v) for k, v in value.items()]}}}
    return {"key": key, "value": {"stringValue": value}}


def traces_body() -> bytes:
    span = {
        "traceId": TRACE,
        "spanId": "eee19b7ec3c1b174",
        "name": "generate",
        "startTimeUnixNano": "1732500000000000000",
        "endTimeUnixNano": "1732500001000000000",
        "status": {"code": 2, "message": "upstream rejected maria.lopez@example.org"},
        "attributes": [
            attr("openinference.span.kind", "LLM"),
            attr("llm.model_name", "llama-3.1-8b-instruct-awq"),
            attr("input.value", PROMPT),
            attr("output.value", "Sorry Maria Lopez, the card was declined."),
            attr("user.id", "user-raw-9931"),
            attr("retrieval.documents.0.document.id", "doc-4111111111111111"),
            attr("app.note", "cc bob@example.com"),  # short: patterns still run
            attr("app.summary", "Escalated by Gregory Smith after the second call"),  # long: NER too
            attr("app.customer.phone", 6045550132),  # a phone sent as an integer
            attr("app.retries", 3),
            attr("app.profile", {"enduser.id": "alice-77", "city_note": "she moved to Lyon last spring"}),
        ],
        "events": [
            {
                "name": "exception",
                "timeUnixNano": "1732500000500000000",
                "attributes": [
                    attr("exception.type", "ValueError"),
                    attr("exception.message", "no account for Maria Lopez"),
                    attr("exception.stacktrace", 'File "/srv/app.py", line 3\nValueError: 078-05-1120'),
                ],
            }
        ],
    }
    body = {"resourceSpans": [{"resource": {"attributes": [attr("service.name", "rag")]}, "scopeSpans": [{"spans": [span]}]}]}  # fmt: skip
    return json.dumps(body).encode()


def logs_body() -> bytes:
    record = {
        "timeUnixNano": "1732500000000000000",
        "traceId": TRACE,
        "body": {"stringValue": "refund for Maria Lopez to DE89 3704 0044 0532 0130 00"},
        "attributes": [attr("enduser.id", "alice-77"), attr("client.address", "203.0.113.77")],
    }
    body = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": [record]}]}]}
    return json.dumps(body).encode()


def export(signal: str, body: bytes) -> dict:
    result = pipeline.process_export(signal, body, Format.JSON, None, time.time_ns(), 1 << 24)
    return {name: table.to_pylist() for name, table in rows.decode_payload(result.payload).items()}


@pytest.fixture(scope="module")
def redacting(tmp_path_factory):
    pipeline.init_worker(RedactionConfig(), tmp_path_factory.mktemp("data"))
    yield pipeline._redactor
    pipeline.init_worker(None)


def test_every_free_text_field_of_a_span(redacting):
    tables = export("traces", traces_body())
    (span,) = tables["spans"]
    content = {row["field"]: row for row in tables["content"]}
    prompt = content["input.value"]
    assert prompt["text"] == (
        "Hi, I am <PERSON_1> from <LOCATION_1>. Card <CREDIT_CARD_1>, mail <EMAIL_ADDRESS_1>."
    )
    assert orjson.loads(prompt["pii"]) == {"PERSON": 1, "LOCATION": 1, "CREDIT_CARD": 1, "EMAIL_ADDRESS": 1}
    assert prompt["redaction"] == "ok"
    # One numbering per trace across fields: Maria is <PERSON_1> in the answer, the exception too.
    assert content["output.value"]["text"] == "Sorry <PERSON_1>, the card was declined."
    assert span["status_message"] == "upstream rejected <EMAIL_ADDRESS_1>"
    attrs = orjson.loads(span["attributes"])
    assert attrs["app.note"] == "cc <EMAIL_ADDRESS_2>"
    assert attrs["app.summary"] == "Escalated by <PERSON_2> after the second call"
    assert attrs["app.customer.phone"] == "<PHONE_NUMBER_1>" and attrs["app.retries"] == 3
    assert attrs["app.profile"]["enduser.id"] == redacting.pseudonymize("alice-77")
    assert attrs["app.profile"]["city_note"] == "she moved to <LOCATION_2> last spring"
    (event,) = orjson.loads(span["events"])
    assert event["attributes"]["exception.message"] == "no account for <PERSON_1>"
    assert event["attributes"]["exception.stacktrace"].endswith("ValueError: <US_SSN_1>")
    assert event["attributes"]["exception.type"] == "ValueError"
    # Structured ids and model names are not text.
    assert span["user_id"] == redacting.pseudonymize("user-raw-9931")
    assert span["trace_id"] == TRACE and span["model"] == "llama-3.1-8b-instruct-awq"
    assert [d["doc_id"] for d in tables["documents"]] == ["doc-4111111111111111"]


def test_log_bodies_and_attributes(redacting):
    (log,) = export("logs", logs_body())["logs"]
    assert log["body"] == "refund for <PERSON_1> to <IBAN_CODE_1>"
    assert orjson.loads(log["attributes"]) == {
        "enduser.id": redacting.pseudonymize("alice-77"),
        "client.address": "<IP_ADDRESS_1>",
    }


def _redacted_prompt(body: bytes) -> str:
    result = pipeline.process_export("traces", body, Format.JSON, None, time.time_ns(), 1 << 24)
    content = rows.decode_payload(result.payload)["content"].to_pylist()
    return next(row["text"] for row in content if row["field"] == "input.value")


def test_the_redactor_is_built_in_a_pool_worker(tmp_path):
    """The collector's --workers pool: each worker builds its redactor in the initializer."""
    with ProcessPoolExecutor(
        1, initializer=pipeline.init_worker, initargs=(RedactionConfig(), tmp_path)
    ) as pool:
        text = pool.submit(_redacted_prompt, traces_body()).result(timeout=120)
    assert text.startswith("Hi, I am <PERSON_1> from <LOCATION_1>.")
    assert (tmp_path / "pseudonym.key").stat().st_size == 32
