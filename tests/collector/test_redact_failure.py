"""Redaction fails closed: when the redactor raises or runs out of time on a text, the stored text is
``<REDACTION_FAILED>`` and the raw text appears nowhere: not in the WAL, not in any file under the data
dir (Parquet decoded, not just its compressed bytes), not in the collector's stdout/stderr.

The failure is injected from outside the product (tests/collector/faults/sitecustomize.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ragtrail.collector import rows, wal
from ragtrail.collector.redact import FAILED_MARKER
from tests.collector.test_bad_input import post
from tests.conftest import wait_until

FAULTS = Path(__file__).resolve().parent / "faults"
TRACE = "0af7651916cd43dd8448eb211c80319c"
CANARY = "FAULT-CANARY raw words Quixotic-Zebra-4471 must never be stored"
SECRET_TOKEN = b"Quixotic-Zebra-4471"  # the part of CANARY we look for, everywhere
CONTROL = "control text stays as it was"


def attr(key, value):
    return {"key": key, "value": {"stringValue": value}}


def bodies() -> dict[str, bytes]:
    span = {
        "traceId": TRACE, "spanId": "b7ad6b7169203331", "name": "generate",
        "startTimeUnixNano": "1764050000000000000", "endTimeUnixNano": "1764050000500000000",
        "status": {"code": 2, "message": CANARY},
        "attributes": [attr("openinference.span.kind", "LLM"), attr("input.value", CANARY),
                       attr("output.value", CONTROL), attr("app.note", CANARY)],
        "events": [{"name": "exception", "timeUnixNano": "1764050000100000000",
                    "attributes": [attr("exception.message", CANARY)]}],
    }  # fmt: skip
    log = {"timeUnixNano": "1764050000200000000", "traceId": TRACE, "body": {"stringValue": CANARY}}
    return {
        "/v1/traces": json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode(),
        "/v1/logs": json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [log]}]}]}).encode(),
    }


def scan(data_dir: Path, log_text: str) -> dict[str, int]:
    """Look for the raw text in every byte under the data dir, in decoded WAL records and Parquet
    files, and in the log. Returns how many files of each kind were read (all must be clean)."""
    seen = {"files": 0, "wal_records": 0, "parquet_files": 0}
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        assert SECRET_TOKEN not in raw, f"raw text in {path}"
        seen["files"] += 1
        if path.suffix == wal.SUFFIX:
            for payload in wal.read_segment(path)[0]:
                for table in rows.decode_payload(payload).values():
                    assert SECRET_TOKEN.decode() not in str(table.to_pylist()), f"raw text in {path}"
                seen["wal_records"] += 1
        elif path.suffix == ".parquet":
            assert SECRET_TOKEN.decode() not in str(pq.read_table(path).to_pylist()), f"raw text in {path}"
            seen["parquet_files"] += 1
    assert SECRET_TOKEN.decode() not in log_text, "raw text in the collector log"
    return seen


@pytest.mark.parametrize("fault", ["raise", "stall"])
def test_redaction_failure_stores_the_marker_and_the_raw_text_nowhere(collector_factory, tmp_path, fault):
    config = tmp_path / "redaction.toml"
    # ner off keeps start-up fast (the fault hits the pattern stage every text goes through);
    # a long segment age keeps the records in the WAL until we have scanned it.
    config.write_text("[redaction]\nner = false\ntimeout_seconds = 0.3\n[wal]\nsegment_seconds = 60\n")
    env = {"RAGTRAIL_REDACTION": "on", "RAGTRAIL_TEST_FAULT": fault, "RAGTRAIL_TEST_FAULT_SECONDS": "0.6",
           "PYTHONPATH": str(FAULTS)}  # fmt: skip
    c = collector_factory(None, "--config", str(config), env=env)
    for path, body in bodies().items():
        status, reply, _ = post(c, path, body, "application/json")
        assert status == 200, reply

    in_wal = scan(c.data_dir, c.log_text())
    assert in_wal["wal_records"] == 2  # acknowledged = in the WAL, and already redacted there

    c.stop()  # SIGTERM: a graceful stop seals and flushes the WAL to Parquet
    assert c.proc.returncode == 0 and "write-ahead log sealed and flushed" in c.log_text()
    in_parquet = scan(c.data_dir, c.log_text())
    assert in_parquet["parquet_files"] >= 3 and in_parquet["wal_records"] == 0

    c.start()
    content = dict(wait_until(lambda: c.sql("SELECT field, text FROM content WHERE field = 'input.value'")))
    assert content == {"input.value": FAILED_MARKER}
    assert c.sql("SELECT redaction FROM content WHERE field = 'input.value'") == [("failed",)]
    (status_message, attributes, events) = c.sql("SELECT status_message, attributes, events FROM spans")[0]
    assert status_message == FAILED_MARKER
    assert json.loads(attributes)["app.note"] == FAILED_MARKER
    assert json.loads(events)[0]["attributes"]["exception.message"] == FAILED_MARKER
    assert c.sql("SELECT body FROM logs") == [(FAILED_MARKER,)]
    if fault == "raise":  # only the failing texts are replaced; the rest is redacted as usual
        assert c.sql("SELECT text FROM content WHERE field = 'output.value'") == [(CONTROL,)]
    scan(c.data_dir, c.log_text())
