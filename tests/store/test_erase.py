"""Erasure: a user's rows leave every Parquet file (flushed and compacted) and the write-ahead log;
a scan of every file under the data directory finds neither their raw id nor their pseudonym; other
users' rows are intact; the admin audit log records the erasure without naming them."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from ragtrail.cli import main
from ragtrail.collector import rows, wal
from ragtrail.store import admin_log
from tests.conftest import Collector
from tests.store.conftest import ANSWERED, SCORED, SETTINGS, feed, start_demo_collector

RAW = "user-0000"  # the demo's scraper: many requests, rate-limit logs that quote the raw id
COMPACTING = SETTINGS + "\n[flush]\ncompact_min_files = 2\ncompact_interval_seconds = 0.5\n"


def _pseudonym(data: Path, raw: str) -> str:
    return (
        "u_" + hmac.new((data / "pseudonym.key").read_bytes(), raw.encode(), hashlib.sha256).hexdigest()[:16]
    )


def _tables(data: Path):
    """(table, Arrow table) for every Parquet file and every WAL record under ``data``."""
    for path in sorted((data / "tables").glob("*/*/*.parquet")):  # not tables/_index: no table
        yield path.parts[-3], pq.read_table(path)
    for _, path in wal.list_segments(data / "wal"):
        for payload in wal.read_segment(path)[0]:
            yield from rows.decode_payload(payload).items()


def _row_counts(data: Path, skip_users: set[str]) -> Counter:
    """Rows per (table, owner) — owner = the user of the row's trace — leaving out ``skip_users``."""
    owners = {}
    for table, t in _tables(data):
        if table == "spans":
            for trace_id, user in zip(t["trace_id"].to_pylist(), t["user_id"].to_pylist(), strict=True):
                owners[trace_id] = owners.get(trace_id) or user
    counts = Counter()
    for table, t in _tables(data):
        traces = t["trace_id"].to_pylist() if "trace_id" in t.column_names else [None] * t.num_rows
        for trace_id in traces:
            owner = owners.get(trace_id)
            if owner not in skip_users:
                counts[(table, owner)] += 1
    return counts


def _scan(data: Path, needles: list[str]) -> list[str]:
    """Every file's bytes, and every text cell of every Parquet file and WAL record (zstd hides bytes)."""
    found = []
    for path in data.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            found += [f"{path}: {n}" for n in needles if n.encode() in blob]
    for table, t in _tables(data):
        for column in t.column_names:
            if str(t.schema.field(column).type) == "string":
                for value in t[column].to_pylist():
                    found += [f"{table}.{column}: {n}" for n in needles if value and n in value]
    return found


def test_erase_user_everywhere(tmp_path):
    data = tmp_path / "data"
    # 1. A first run flushed to Parquet, scored and compacted.
    first = start_demo_collector(data, COMPACTING)
    # Two feeds, each waited for: at least two flushed files per table, whatever the machine's speed
    # (one fast feed can fit in a single WAL segment, and one file is never compacted).
    traces = 0
    for seed in (3, 5):
        traces += feed(first, seed=seed, duration=15).requests
        first.wait_for("SELECT count(DISTINCT trace_id) FROM spans", traces)
    first.wait_for(SCORED, first.scalar(ANSWERED))
    first.wait_for("SELECT count(*) > 0 FROM (SELECT filename FROM read_parquet('"
                   f"{data}/tables/spans/*/cmp*.parquet', filename = true))", True)  # fmt: skip
    first.stop()
    # 2. A second run acknowledged into the WAL only (segments never seal), then kill -9.
    (data / "ragtrail.toml").write_text(COMPACTING + "\n[wal]\nsegment_seconds = 3600.0\n")
    second = Collector(data, env={"RAGTRAIL_REDACTION": "on"}).start()
    feed(second, seed=4, duration=15)
    second.kill()

    pseudonym = _pseudonym(data, RAW)
    before = _row_counts(data, set())
    in_wal = sum(
        1 for table, t in list(_tables(data)) if table == "spans" and pseudonym in t["user_id"].to_pylist()
    )
    assert before[("spans", pseudonym)] > 5 and in_wal, "the user must be in Parquet and in the WAL"
    assert _scan(data, [RAW, pseudonym]), "the scan must see the user before erasure"

    # 3. Erase by raw id, collector stopped: Parquet files and WAL frames are rewritten.
    out = CliRunner().invoke(main, ["erase", "--data", str(data), "--user", RAW])
    assert out.exit_code == 0, out.output
    assert _scan(data, [RAW, pseudonym]) == []
    assert _row_counts(data, {pseudonym}) == before - Counter(
        {k: v for k, v in before.items() if k[1] == pseudonym}
    )

    entry = admin_log.read(data)[-1]
    assert entry["action"] == "erasure" and entry["details"]["collector_running"] is False
    removed = sum(entry["details"]["rows_removed"].values()) + entry["details"]["wal_rows_removed"]
    assert removed == sum(v for (_, owner), v in before.items() if owner == pseudonym)
    assert entry["details"]["wal_rows_removed"] > 0 and entry["details"]["files_rewritten"] > 0
    assert admin_log.verify(data) == len(admin_log.read(data))

    # 4. Restart: the rewritten WAL replays; other users' rows are all there, the user's are not.
    third = start_demo_collector(data, COMPACTING)
    try:
        third.wait_for("SELECT count(*) FROM spans", sum(v for (t, _), v in before.items() if t == "spans")
                       - before[("spans", pseudonym)])  # fmt: skip
        third.wait_for(f"SELECT count(*) FROM spans WHERE user_id = '{pseudonym}'", 0)
        # 5. A second user, by pseudonym, while the collector runs: erasure waits for the WAL flush.
        other = max((u for _, u in before if u and u != pseudonym), key=lambda u: before[("spans", u)])
        out = CliRunner().invoke(main, ["erase", "--data", str(data), "--user", other])
        assert out.exit_code == 0, out.output
        # (wait_for retries: a reader can race the collector's compaction, which runs every 0.5 s here)
        third.wait_for(f"SELECT count(*) FROM spans WHERE user_id = '{other}'", 0)
        assert admin_log.read(data)[-1]["details"]["collector_running"] is True
    finally:
        third.stop()
    # Everyone else's rows are all there (quality grows: the replayed traces were scored since;
    # trace_parts grows: the WAL holds no parts, its replay writes them).
    after = _row_counts(data, {pseudonym, other})
    expected = Counter({k: v for k, v in before.items() if k[1] not in (pseudonym, other)})
    growing = ("quality", "trace_parts")
    assert {k: v for k, v in after.items() if k[0] not in growing} == {
        k: v for k, v in expected.items() if k[0] not in growing
    }
    assert all(after[k] >= v for k, v in expected.items() if k[0] in growing)
    assert _scan(data, [RAW, pseudonym, other]) == []  # scanned once stopped: compaction moves files
    log_text = (data / admin_log.LOG_FILE).read_text()
    assert [e["action"] for e in admin_log.read(data)].count("erasure") == 2
    assert RAW not in log_text and pseudonym not in log_text and other not in log_text


def test_erase_follows_a_trace_split_between_parquet_and_the_wal(tmp_path):
    """The root span (with the user id) is flushed; a child's text is still in the WAL (kill -9)."""
    from ragtrail.collector.flush import write_parquet_atomic
    from ragtrail.store import layout
    from ragtrail.store.schema import empty_columns

    def table(table_name: str, **row):
        cols = empty_columns(table_name)
        for key in cols:
            cols[key].append(row.get(key))
        return rows.to_arrow(table_name, cols)

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    root = table("spans", time=now, trace_id="t1", span_id="s1", name="root", user_id="u_0123456789abcdef")
    write_parquet_atomic(
        root, layout.partition_dir(tmp_path, "spans", now.date()) / "seg000000000001-w1.parquet", 10
    )
    payload = rows.encode_arrow({"content": table("content", time=now, trace_id="t1", span_id="s2", role="response",
                                                  text="the answer"),
                                 "logs": table("logs", time=now, trace_id="t2", body="someone else")})  # fmt: skip
    (tmp_path / "wal").mkdir()
    (tmp_path / "wal" / "000000000002.wal").write_bytes(wal.MAGIC + wal.frame_header(payload) + payload)

    out = CliRunner().invoke(main, ["erase", "--data", str(tmp_path), "--user", "u_0123456789abcdef"])
    assert out.exit_code == 0, out.output
    left = [(name, t.num_rows) for name, t in _tables(tmp_path)]
    assert left == [("logs", 1)]  # the user's text left the WAL; the other trace's log stayed
