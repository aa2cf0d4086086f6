"""Retention: partitions older than each table's period are dropped, newer ones stay, the run is in
the admin audit log; `ragtrail retention apply` reads [retention] from ragtrail.toml."""

from __future__ import annotations

import datetime as dt

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ragtrail.cli import main
from ragtrail.store import admin_log, db, retention
from ragtrail.store.schema import TABLES


def _partition(data, table: str, date: dt.date) -> None:
    t = pa.Table.from_pylist([{"time": dt.datetime.combine(date, dt.time(12))}], schema=TABLES[table])
    path = data / "tables" / table / f"date={date}" / "seg000000000001-wtest.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(t, path)


def test_retention_drops_only_expired_partitions(tmp_path):
    data = tmp_path / "data"
    today = dt.datetime.now(dt.UTC).date()
    ages = (0, 6, 8, 40)
    for table in ("spans", "logs", "gpu"):
        for age in ages:
            _partition(data, table, today - dt.timedelta(days=age))
    (data / "ragtrail.toml").write_text("[retention]\ndays = 30\nlogs = 7\n")
    out = CliRunner().invoke(main, ["retention", "apply", "--data", str(data)])
    assert out.exit_code == 0, out.output
    report = orjson.loads(out.output)
    kept = {t: sorted(p.name for p in (data / "tables" / t).iterdir()) for t in ("spans", "logs", "gpu")}
    day = lambda age: f"date={today - dt.timedelta(days=age)}"  # noqa: E731
    assert kept["spans"] == kept["gpu"] == sorted(day(a) for a in (0, 6, 8))
    assert kept["logs"] == sorted(day(a) for a in (0, 6))
    assert report["dropped"]["logs"] == sorted([str(today - dt.timedelta(days=a)) for a in (40, 8)])
    assert db.query(data, "SELECT count(*) FROM spans").rows == [(3,)]
    entry = admin_log.read(data)[-1]
    assert entry["action"] == "retention" and entry["details"]["files"] == 4
    # A second run finds nothing more to drop.
    assert retention.apply(data, {"days": 30, "logs": 7}, actor="collector")["dropped"] == {}


def test_retention_refuses_unknown_keys():
    with pytest.raises(ValueError, match="unknown key"):
        retention.policy({"trace": 3})
    assert retention.policy(None) == {}


def test_the_collector_applies_retention_on_its_schedule(collector_factory, tmp_path):
    data = tmp_path / "data"
    today = dt.datetime.now(dt.UTC).date()
    for age in (1, 90):
        _partition(data, "spans", today - dt.timedelta(days=age))
    (data / "ragtrail.toml").write_text("[retention]\ndays = 30\n")
    collector = collector_factory(data)
    collector.wait_for("SELECT count(*) FROM spans", 1)
    entry = admin_log.read(data)[-1]
    assert entry["action"] == "retention" and entry["details"]["actor"] == "collector"
