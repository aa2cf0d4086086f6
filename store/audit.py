"""Audit questions over the store: provenance impact, and tamper-evident exports with their check.

``impact``: every request whose trace retrieved, reranked or cited a document (optionally one version,
or a version and later), with user pseudonyms and times.

``export``: the ``audit`` view's rows (already redacted) for a filter, as JSON Lines or Parquet, each
record chained to the one before (store.chain), plus ``<file>.manifest.json`` holding the chain head,
the record count, the file's sha256, the query and the time, signed with Ed25519 (store.signing).
``verify`` checks all of it and names the first bad record or the manifest problem. Exports are
written to the admin audit log (store.admin_log); they never contain a raw user id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ragtrail.collector import redact
from ragtrail.store import admin_log, chain, db, signing

MANIFEST_SUFFIX = ".manifest.json"
EXPORT_FORMAT = "ragtrail-audit-export/1"
PSEUDONYM = re.compile(r"^u_[0-9a-f]{16}$")
_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """ISO date/datetime (UTC) or a look-back like ``7d``, ``12h``; returns a naive UTC datetime."""
    if not text:
        return None
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if m := _RELATIVE.match(text.strip()):
        return now - dt.timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    value = dt.datetime.fromisoformat(text.strip())
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def subject_ref(data_dir: str | Path, pseudonym: str) -> str:
    """A keyed reference to a user for the admin audit log: HMAC(pseudonym key, "subject " + pseudonym).

    The log must survive the user's erasure without holding their pseudonym; whoever holds the raw
    id and the key can recompute the reference and find the entries that concern them."""
    key_path = Path(data_dir) / redact.KEY_FILE
    key = key_path.read_bytes() if key_path.exists() else b""
    return hmac.new(key, b"subject " + pseudonym.encode(), hashlib.sha256).hexdigest()[:32]


def pseudonym_for(data_dir: str | Path, user: str) -> str:
    """The pseudonym the collector stores for ``user`` (a raw id or already a pseudonym)."""
    if PSEUDONYM.match(user):
        return user
    key_path = Path(data_dir) / redact.KEY_FILE
    if not key_path.exists():
        return user  # redaction never ran: ids are stored as sent
    return redact.pseudonym(key_path.read_bytes(), user)


# --- impact ------------------------------------------------------------------------------------------


def _version_filter(version: str | None) -> tuple[str, list]:
    if not version:
        return "", []
    if version.endswith("+"):
        number = int(re.sub(r"\D", "", version[:-1]) or 0)
        return " AND TRY_CAST(regexp_extract(doc_version, '(\\d+)', 1) AS BIGINT) >= ?", [number]
    return " AND doc_version = ?", [version]


def impact(data_dir: str | Path, doc_id: str, *, version: str | None = None, since: str | None = None):
    """Requests that used ``doc_id``: trace_id, time, user_id, service_name, stages, versions, answer.

    ``version`` is exact (``v3``) or ``v3+`` for that version and later (numeric part compared)."""
    vcond, vparams = _version_filter(version)
    start = parse_time(since)
    tcond = " AND time >= ?" if start else ""
    sql = f"""
        WITH hit AS (
            SELECT DISTINCT trace_id FROM documents WHERE doc_id = ?{vcond}{tcond}
        )
        SELECT d.trace_id, min(d.time) AS time, any_value(t.user_id) AS user_id,
               any_value(t.service_name) AS service_name,
               list(DISTINCT d.stage ORDER BY d.stage) AS stages,
               list(DISTINCT d.doc_version ORDER BY d.doc_version) FILTER (WHERE d.doc_version IS NOT NULL)
                   AS versions,
               any_value(a.answer) AS answer
        FROM documents d JOIN hit USING (trace_id)
        LEFT JOIN traces t USING (trace_id)
        LEFT JOIN audit a USING (trace_id)
        WHERE d.doc_id = ?
        GROUP BY d.trace_id ORDER BY time, d.trace_id
    """
    params = [doc_id, *vparams, *([start] if start else []), doc_id]
    con = db.connect(data_dir, locked=False)
    try:
        cursor = con.execute(sql, params)
        return db.Result([c[0] for c in cursor.description], cursor.fetchall())
    finally:
        con.close()


# --- export ------------------------------------------------------------------------------------------


@dataclass
class Filters:
    since: str | None = None
    until: str | None = None
    user: str | None = None  # raw id or pseudonym
    trace_id: str | None = None
    doc_id: str | None = None

    def where(self, data_dir: str | Path) -> tuple[str, list, dict]:
        """SQL condition over the audit view, its parameters, and the query as the manifest states it
        (the user as its pseudonym: a manifest holds no raw id)."""
        conds, params, stated = ["true"], [], {}
        if start := parse_time(self.since):
            conds.append("time >= ?")
            params.append(start)
            stated["since"] = start.isoformat()
        if end := parse_time(self.until):
            conds.append("time < ?")
            params.append(end)
            stated["until"] = end.isoformat()
        if self.user:
            stated["user_id"] = pseudonym_for(data_dir, self.user)
            conds.append("user_id = ?")
            params.append(stated["user_id"])
        if self.trace_id:
            stated["trace_id"] = self.trace_id.lower()
            conds.append("trace_id = ?")
            params.append(stated["trace_id"])
        if self.doc_id:
            stated["doc_id"] = self.doc_id
            conds.append("trace_id IN (SELECT trace_id FROM documents WHERE doc_id = ?)")
            params.append(self.doc_id)
        return " AND ".join(conds), params, stated


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def audit_records(data_dir: str | Path, filters: Filters) -> tuple[list[dict[str, Any]], dict]:
    cond, params, stated = filters.where(data_dir)
    con = db.connect(data_dir, locked=False)
    try:
        cursor = con.execute(f"SELECT * FROM audit WHERE {cond} ORDER BY time, trace_id", params)
        columns = [c[0] for c in cursor.description]
        rows = cursor.fetchall()
    finally:
        con.close()
    return [{c: _jsonable(v) for c, v in zip(columns, row, strict=True)} for row in rows], stated


def manifest_path(export_path: str | Path) -> Path:
    p = Path(export_path)
    return p.with_name(p.name + MANIFEST_SUFFIX)


def _file_format(path: Path) -> str:
    if path.suffix == ".jsonl":
        return "jsonl"
    if path.suffix == ".parquet":
        return "parquet"
    raise ValueError(f"{path.name}: the export file must end in .jsonl or .parquet")


def export(data_dir: str | Path, out: str | Path, filters: Filters, *, actor: str = "cli") -> dict[str, Any]:
    """Write the chained records and the signed manifest; returns the manifest."""
    out = Path(out)
    fmt = _file_format(out)
    records, stated = audit_records(data_dir, filters)
    chained = list(chain.link(records))
    if fmt == "jsonl":
        out.write_bytes(b"".join(chain.canonical(r) + b"\n" for r in chained))
    else:
        pq.write_table(pa.Table.from_pylist(chained), out, compression="zstd")
    key = signing.load_or_create_key(data_dir)
    manifest = {
        "format": EXPORT_FORMAT,
        "file": out.name,
        "file_format": fmt,
        "file_sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "records": len(chained),
        "chain_genesis": chain.GENESIS,
        "chain_head": chained[-1]["hash"] if chained else chain.GENESIS,
        "view": "audit",
        "query": stated,
        "first_time": records[0]["time"] if records else None,
        "last_time": records[-1]["time"] if records else None,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "public_key": signing.public_pem(key),
    }
    manifest["signature"] = signing.sign(key, chain.canonical(manifest))
    manifest_path(out).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    logged = dict(stated)
    if "user_id" in logged:  # the admin log outlives an erasure: no pseudonym in it
        logged["user_ref"] = subject_ref(data_dir, logged.pop("user_id"))
    admin_log.append(
        data_dir,
        "audit_export",
        {
            "actor": actor,
            "file": out.name,
            "records": len(chained),
            "chain_head": manifest["chain_head"],
            "query": logged,
            "file_sha256": manifest["file_sha256"],
        },
    )
    return manifest


# --- verify ------------------------------------------------------------------------------------------


@dataclass
class Verification:
    records: int = 0
    problems: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def _read_records(path: Path, fmt: str) -> tuple[list[dict], str | None]:
    """The file's records, and the first problem that stopped reading them (or None)."""
    if fmt == "parquet":
        try:
            return pq.read_table(path).to_pylist(), None
        except (pa.ArrowException, OSError) as exc:
            return [], f"file: not a readable Parquet file ({type(exc).__name__})"
    records = []
    for line_no, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not line:
            continue
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            return (
                records,
                f"record {len(records) + 1} (line {line_no}): not valid JSON (the record was altered)",
            )
    return records, None


def verify(path: str | Path, public_key_pem: str | bytes | None = None) -> Verification:
    """Check an export against its manifest and the signer's public key (trusted, given by the caller;
    without one, the key the manifest names is used and the result says so)."""
    path = Path(path)
    result = Verification()
    mpath = manifest_path(path)
    try:
        manifest = orjson.loads(mpath.read_bytes())
    except FileNotFoundError:
        result.problems.append(f"manifest: {mpath.name} is missing")
        return result
    except orjson.JSONDecodeError:
        result.problems.append(f"manifest: {mpath.name} is not valid JSON (edited)")
        return result
    body = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        trusted = signing.load_public(public_key_pem or manifest.get("public_key", ""))
    except ValueError:
        result.problems.append("manifest: no usable public key to check the signature")
        return result
    if public_key_pem and manifest.get("public_key") != signing.public_pem(trusted):
        result.problems.append("manifest: signed by a different key than the trusted public key")
    if not signing.verify(trusted, chain.canonical(body), str(manifest.get("signature", ""))):
        result.problems.append("manifest: signature does not verify (the manifest was edited)")
    if not public_key_pem:
        result.note = "signature checked against the manifest's own key; pass --public-key to trust it"
    records, read_problem = _read_records(path, manifest.get("file_format") or _file_format(path))
    try:
        count, head = chain.check(records, prev=manifest.get("chain_genesis", chain.GENESIS))
    except chain.ChainError as exc:
        result.problems.append(str(exc))
        count, head = exc.index, None
    if read_problem:
        result.problems.append(read_problem)
    result.records = count
    if not read_problem and head is not None:
        if count != manifest.get("records"):
            result.problems.append(
                f"manifest: states {manifest.get('records')} records, the file holds {count} "
                f"(records dropped or added after record {min(count, manifest.get('records') or 0)})"
            )
        elif head != manifest.get("chain_head"):
            result.problems.append("manifest: chain head does not match the last record")
    if hashlib.sha256(path.read_bytes()).hexdigest() != manifest.get("file_sha256"):
        result.problems.append(f"file: sha256 of {path.name} differs from the manifest's")
    return result
