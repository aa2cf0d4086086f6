"""Background work of a running collector over its own store: quality scoring and retention.

Scoring: every ``[quality] interval_seconds`` (default 5) a store.quality.Scorer pass scores the
traces whose root span or answer arrived since the last pass, once both are stored, with ragtrail's
citation accuracy and groundedness; the rows go through the WAL like any ingested row, so they are
durable, flushed, compacted and replayed by the same code. Traces queued but not yet flushed are
remembered so a pass never scores them twice. Retention (store.retention) runs at start-up and then
every ``[retention] interval_hours`` (default 1) when a ``[retention]`` section exists.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from pathlib import Path
from typing import Any

from ragtrail.collector import rows
from ragtrail.collector.errors import Overloaded
from ragtrail.store import quality, retention

log = logging.getLogger("ragtrail.maintenance")
QUEUED_MEMORY_S = 600.0  # forget a queued trace after this long: it is in Parquet by then


class Maintenance:
    def __init__(self, data_dir: Path, wal, extra: dict[str, Any]):
        self.data_dir = Path(data_dir)
        self.wal = wal
        q = extra.get("quality") or {}
        self.score_enabled = bool(q.get("enabled", True))
        self.score_interval = float(q.get("interval_seconds", 5.0))
        self.scorer = quality.Scorer(
            self.data_dir,
            citations_required=bool(q.get("citations_required", True)),
            lookback=dt.timedelta(hours=float(q.get("lookback_hours", 48))),
        )
        self.retention = extra.get("retention")
        if self.retention is not None:
            retention.policy(self.retention)  # fail at start-up on a bad [retention] section
        self.retention_interval = float((self.retention or {}).get("interval_hours", 1.0)) * 3600
        self._queued: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="maintenance", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        next_retention = time.monotonic()  # first run right after start-up
        while True:
            if self.score_enabled:
                try:
                    self.score_once()
                except Overloaded:
                    pass  # ingest comes first; the traces are scored on a later pass
                except Exception as exc:  # a file replaced under the reader, a full disk: next pass retries
                    log.warning("quality scoring pass failed (retried next pass): %s", exc)
            if self.retention is not None and time.monotonic() >= next_retention:
                next_retention = time.monotonic() + self.retention_interval
                try:
                    retention.apply(self.data_dir, self.retention, actor="collector")
                except Exception:
                    log.exception("retention run failed")
            if self._stop.wait(self.score_interval):
                return

    def score_once(self) -> int:
        now = time.monotonic()
        self._queued = {t: at for t, at in self._queued.items() if now - at < QUEUED_MEMORY_S}
        table = self.scorer.run_once(skip=self._queued)
        payload = rows.encode_arrow({"quality": table})
        if payload:
            self.wal.append(payload).result(timeout=60)
        for trace_id in table["trace_id"].to_pylist():
            self._queued[trace_id] = now
        return table.num_rows
