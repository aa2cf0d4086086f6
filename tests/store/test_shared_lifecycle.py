"""Erasure and retention on a store two collectors write side by side (`--storage`, a shared
directory; tests/store/test_fs.py shows the same operations on s3:// through store.fs): every
writer's files are rewritten or dropped, nobody else's rows move."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from ragtrail.cli import main
from ragtrail.collector import redact
from ragtrail.collector.redact import KEY_FILE
from ragtrail.store import admin_log, db
from tests.conftest import Collector, wait_until
from tests.store.conftest import SETTINGS, feed

RAW = "user-0000"  # the demo's busiest user


def _start(data: Path, shared: Path, writer: str) -> Collector:
    data.mkdir(parents=True, exist_ok=True)
    (data / "ragtrail.toml").write_text(
        SETTINGS + f'\n[retention]\ndays = 30\n\n[collector]\nwriter_id = "{writer}"\n'
    )
    args = ["--storage", str(shared)]
    if writer == "wb":
        args.append("--no-maintenance")  # one maintainer per shared store (docs/SCALE.md)
    return Collector(data, extra_args=args, env={"RAGTRAIL_REDACTION": "on"}).start()


def _spans_by_writer_and_user(shared: Path) -> Counter:
    counts = Counter()
    for path in (shared / "tables" / "spans").rglob("*.parquet"):
        writer = path.stem.rsplit("-", 1)[-1] if path.name.startswith("seg") else path.stem.split("-")[2]
        for user in pq.read_table(path, columns=["user_id"])["user_id"].to_pylist():
            counts[(writer, user)] += 1
    return counts


def test_erase_and_retention_span_every_writers_files(tmp_path):
    shared, a_dir, b_dir = tmp_path / "shared", tmp_path / "a", tmp_path / "b"
    a = _start(a_dir, shared, "wa")
    # Every collector of a store shares the pseudonym key, or one user gets a pseudonym per writer.
    b_dir.mkdir()
    shutil.copy2(a_dir / KEY_FILE, b_dir / KEY_FILE)
    b = _start(b_dir, shared, "wb")
    try:
        sent = feed(a, seed=3, duration=10).requests + feed(b, seed=4, duration=10).requests
        wait_until(
            lambda: db.query(shared, "SELECT count(DISTINCT trace_id) FROM spans").rows[0][0] >= sent,
            timeout=60,
            what="both collectors' traces in the shared store",
        )
    finally:
        a.stop()
        b.stop()

    before = _spans_by_writer_and_user(shared)
    pseudonym = redact.pseudonym((a_dir / KEY_FILE).read_bytes(), RAW)
    assert {w for (w, u) in before if u == pseudonym} == {"wa", "wb"}, (
        "the user must be in both writers' files"
    )

    users_trace_spans = db.query(
        shared,
        f"SELECT count(*) FROM spans WHERE trace_id IN (SELECT trace_id FROM spans WHERE user_id = '{pseudonym}')",
    ).rows[0][0]
    out = CliRunner().invoke(main, ["erase", "--data", str(a_dir), "--storage", str(shared), "--user", RAW])
    assert out.exit_code == 0, out.output
    after = _spans_by_writer_and_user(shared)
    assert not [k for k in after if k[1] == pseudonym]
    # Other users' spans are all there; so is every span of other traces (children carry no user id).
    assert {k: v for k, v in after.items() if k[1]} == {
        k: v for k, v in before.items() if k[1] not in (pseudonym, None)
    }
    assert sum(after.values()) == sum(before.values()) - users_trace_spans
    for path in shared.rglob("*.parquet"):  # every table, every writer: neither the id nor its pseudonym
        blob = str(pq.read_table(path).to_pylist())
        assert pseudonym not in blob and RAW not in blob, path
    assert admin_log.read(a_dir)[-1]["action"] == "erasure"

    # Retention: a partition holding both writers' files past its 30 days goes whole.
    old = shared / "tables" / "spans" / "date=2020-01-01"
    old.mkdir()
    for writer in ("wa", "wb"):
        source = next((shared / "tables" / "spans").rglob(f"*{writer}*.parquet"))
        shutil.copy2(source, old / f"seg000000000001-{writer}.parquet")
    kept = sorted(p.parent.name for p in (shared / "tables").rglob("*.parquet") if p.parent != old)
    out = CliRunner().invoke(main, ["retention", "apply", "--data", str(a_dir), "--storage", str(shared)])
    assert out.exit_code == 0, out.output
    assert not old.exists()
    assert sorted(p.parent.name for p in (shared / "tables").rglob("*.parquet")) == kept
    assert admin_log.read(a_dir)[-1]["details"]["dropped"] == {"spans": ["2020-01-01"]}
