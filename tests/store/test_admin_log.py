"""The admin audit log is append-only in effect: edits, drops and a re-chained forgery are caught."""

from __future__ import annotations

import orjson
import pytest

from ragtrail.store import admin_log, chain


def _rewrite(data, entries) -> None:
    (data / admin_log.LOG_FILE).write_bytes(b"".join(chain.canonical(e) + b"\n" for e in entries))


def test_admin_log_detects_edits_drops_and_forgery(tmp_path):
    for i in range(3):
        admin_log.append(tmp_path, "retention", {"run": i})
    assert admin_log.verify(tmp_path) == 3
    assert oct((tmp_path / admin_log.LOG_FILE).stat().st_mode & 0o777) == "0o600"
    entries = admin_log.read(tmp_path)

    edited = [dict(e) for e in entries]
    edited[1]["details"] = {"run": 99}
    _rewrite(tmp_path, edited)
    with pytest.raises(chain.ChainError, match="record 2: content does not match its hash"):
        admin_log.verify(tmp_path)

    _rewrite(tmp_path, [entries[0], entries[2]])
    with pytest.raises(chain.ChainError, match="record 2: seq is 3, expected 2"):
        admin_log.verify(tmp_path)

    # A forger who re-chains the edited log still cannot sign it.
    bodies = [
        {k: v for k, v in e.items() if k not in ("seq", "prev_hash", "hash", "signature")} for e in edited
    ]
    forged = list(chain.link(bodies))
    for original, new in zip(entries, forged, strict=True):
        new["signature"] = original["signature"]
    _rewrite(tmp_path, forged)
    with pytest.raises(chain.ChainError, match="record 2: signature does not verify"):
        admin_log.verify(tmp_path)
    assert orjson.loads((tmp_path / admin_log.LOG_FILE).read_bytes().splitlines()[0])["seq"] == 1
