"""Tamper evidence: an export of the seeded demo store verifies untouched; one changed byte, a dropped
record, two swapped records or an edited manifest fail, and verify names the spot."""

from __future__ import annotations

import shutil

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ragtrail.cli import main
from ragtrail.store import admin_log, audit, signing


@pytest.fixture(scope="module")
def exported(audit_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "answers.jsonl"
    manifest = audit.export(audit_store.data_dir, out, audit.Filters(since="30d"))
    assert manifest["records"] > 100
    pem = signing.public_pem(signing.load_or_create_key(audit_store.data_dir))
    return out, pem


def _copy(src, dst_dir, name: str):
    dst = dst_dir / name
    shutil.copy(src, dst)
    shutil.copy(audit.manifest_path(src), audit.manifest_path(dst))
    return dst


def _edit_lines(path, edit) -> None:
    lines = path.read_bytes().split(b"\n")[:-1]
    path.write_bytes(b"".join(line + b"\n" for line in edit(lines)))


def _problems(path, pem) -> list[str]:
    result = audit.verify(path, pem)
    assert not result.ok
    return result.problems


def test_untouched_export_verifies(exported, audit_store):
    path, pem = exported
    result = audit.verify(path, pem)
    assert result.ok, result.problems
    manifest = orjson.loads(audit.manifest_path(path).read_bytes())
    assert result.records == manifest["records"] == len(path.read_bytes().splitlines())
    assert (audit_store.data_dir / signing.KEY_FILE).stat().st_mode & 0o777 == 0o600
    pub = CliRunner().invoke(main, ["audit", "public-key", "--data", str(audit_store.data_dir)])
    assert pub.output == pem
    entry = admin_log.read(audit_store.data_dir)[-1]
    assert entry["action"] == "audit_export" and entry["details"]["chain_head"] == manifest["chain_head"]
    runner = CliRunner()
    ok = runner.invoke(main, ["audit", "verify", str(path), "--data", str(audit_store.data_dir)])
    assert ok.exit_code == 0 and "OK" in ok.output


def test_one_changed_byte_names_the_record(exported, tmp_path):
    path, pem = exported
    altered = _copy(path, tmp_path, "byte.jsonl")
    data = bytearray(altered.read_bytes())
    line_starts = [0] + [i + 1 for i, b in enumerate(data) if b == ord("\n")]
    at = data.index(b'"trace_id":"', line_starts[4]) + len(b'"trace_id":"')  # record 5's trace id
    data[at] = ord("a") if data[at] != ord("a") else ord("b")
    altered.write_bytes(bytes(data))
    problems = _problems(altered, pem)
    assert problems[0] == "record 5: content does not match its hash (the record was altered)"
    assert any(p.startswith("file: sha256") for p in problems)


def test_a_byte_that_breaks_the_json_names_the_record(exported, tmp_path):
    path, pem = exported
    altered = _copy(path, tmp_path, "json.jsonl")
    _edit_lines(altered, lambda lines: [*lines[:2], lines[2].replace(b"{", b"[", 1), *lines[3:]])
    assert _problems(altered, pem)[0].startswith("record 3 (line 3): not valid JSON")


def test_dropped_record_is_named(exported, tmp_path):
    path, pem = exported
    altered = _copy(path, tmp_path, "drop.jsonl")
    _edit_lines(altered, lambda lines: lines[:2] + lines[3:])
    assert _problems(altered, pem)[0].startswith("record 3: seq is 4, expected 3")
    last = _copy(path, tmp_path, "drop-last.jsonl")
    _edit_lines(last, lambda lines: lines[:-1])
    assert any("manifest: states" in p for p in _problems(last, pem))


def test_swapped_records_are_named(exported, tmp_path):
    path, pem = exported
    altered = _copy(path, tmp_path, "swap.jsonl")
    _edit_lines(altered, lambda lines: [*lines[:3], lines[6], *lines[4:6], lines[3], *lines[7:]])
    assert _problems(altered, pem)[0].startswith("record 4: seq is 7, expected 4")


def test_edited_manifest_fails_the_signature(exported, tmp_path):
    path, pem = exported
    altered = _copy(path, tmp_path, "manifest.jsonl")
    mpath = audit.manifest_path(altered)
    manifest = orjson.loads(mpath.read_bytes())
    manifest["query"] = {"since": "2000-01-01T00:00:00"}
    mpath.write_bytes(orjson.dumps(manifest))
    assert _problems(altered, pem) == ["manifest: signature does not verify (the manifest was edited)"]
    runner = CliRunner()
    out = runner.invoke(main, ["audit", "verify", str(altered), "--public-key", _pem_file(tmp_path, pem)])
    assert out.exit_code == 1 and "FAIL manifest: signature does not verify" in out.output


def test_another_signers_key_is_refused(exported):
    path, _ = exported
    stranger = signing.public_pem(Ed25519PrivateKey.generate())
    problems = _problems(path, stranger)
    assert problems[0] == "manifest: signed by a different key than the trusted public key"


def test_parquet_export_verifies_and_names_an_edited_record(audit_store, tmp_path):
    out = tmp_path / "answers.parquet"
    audit.export(audit_store.data_dir, out, audit.Filters(since="30d"))
    pem = signing.public_pem(signing.load_or_create_key(audit_store.data_dir))
    assert audit.verify(out, pem).ok
    rows = pq.read_table(out).to_pylist()
    rows[1]["answer"] = "something else entirely"
    altered = _copy(out, tmp_path, "edited.parquet")
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(out)), altered)
    problems = _problems(altered, pem)
    assert problems[0] == "record 2: content does not match its hash (the record was altered)"


def _pem_file(tmp_path, pem: str) -> str:
    path = tmp_path / "signer.pem"
    path.write_text(pem)
    return str(path)


def test_export_filters_through_the_cli(audit_store, tmp_path):
    data = audit_store.data_dir
    pseudonym = audit.pseudonym_for(data, "user-0001")
    assert pseudonym.startswith("u_")

    def export(*args: str) -> list[dict]:
        out = tmp_path / f"x{len(list(tmp_path.iterdir()))}.jsonl"
        result = CliRunner().invoke(main, ["audit", "export", "--data", str(data), "-o", str(out), *args])
        assert result.exit_code == 0, result.output
        assert audit.verify(out, signing.public_pem(signing.load_or_create_key(data))).ok
        return [orjson.loads(line) for line in out.read_bytes().splitlines()]

    mine = export("--user", "user-0001")  # a raw id: matched through its pseudonym
    assert mine and {r["user_id"] for r in mine} == {pseudonym}
    assert len(mine) == audit_store.scalar(f"SELECT count(*) FROM audit WHERE user_id = '{pseudonym}'")
    assert export("--user", pseudonym) == mine
    one = export("--trace-id", mine[0]["trace_id"].upper())
    assert [r["trace_id"] for r in one] == [mine[0]["trace_id"]]
    by_doc = export("--doc-id", "kb-001", "--since", "2000-01-01", "--until", "2100-01-01")
    assert {r["trace_id"] for r in by_doc} == {
        t for (t,) in audit_store.sql(
            "SELECT DISTINCT trace_id FROM audit WHERE trace_id IN (SELECT trace_id FROM documents WHERE doc_id = 'kb-001')"
        )
    }  # fmt: skip
    assert export("--until", "2000-01-01") == []
    manifest = orjson.loads(audit.manifest_path(tmp_path / "x0.jsonl").read_bytes())
    assert manifest["query"] == {"user_id": pseudonym} and "user-0001" not in str(manifest)
    assert "user-0001" not in (data / admin_log.LOG_FILE).read_text()
