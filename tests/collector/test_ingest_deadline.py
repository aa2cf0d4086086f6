"""Request deadline: a request that waited too long inside the collector (a backlog under
overload) is refused with a retryable error and not committed, so the client's retry is the only
copy stored; a fresh one is committed as usual."""

from __future__ import annotations

import asyncio
import time

import pytest

from ragtrail.collector import wal
from ragtrail.collector.encoding import Format
from ragtrail.collector.errors import Overloaded
from ragtrail.collector.ingest import Ingest, RecentRequests
from ragtrail.config import WalConfig


def _body(name: str = "s") -> bytes:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2

    span = trace_pb2.Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name=name, start_time_unix_nano=1)
    req = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=[span])])]
    )
    return req.SerializeToString()


@pytest.fixture
def ingest(tmp_path):
    log = wal.WriteAheadLog(tmp_path, WalConfig(segment_seconds=60), 1, on_seal=lambda s: None)
    yield Ingest(log, token=None, max_decompressed=1 << 24, max_inflight_bytes=1 << 24, deadline=2.0)
    log.close()


def test_a_request_past_its_deadline_is_refused_and_not_committed(ingest):
    stale = time.monotonic() - 3.0
    with pytest.raises(Overloaded) as refused:
        ingest.export("traces", _body(), Format.PROTOBUF, None, stale)
    assert refused.value.retry_after and "waited" in str(refused.value)
    with pytest.raises(Overloaded):
        asyncio.run(ingest.export_async("traces", _body(), Format.PROTOBUF, None, stale))
    assert ingest.wal.unflushed_bytes == 0  # nothing reached the WAL
    assert ingest.counters["expired"] == 2 and ingest.counters["accepted"] == 0
    assert ingest._inflight == 0  # the admission budget was given back


def test_a_fresh_request_is_committed(ingest):
    result = ingest.export("traces", _body(), Format.PROTOBUF, None, time.monotonic())
    assert result.accepted == 1 and ingest.wal.unflushed_bytes > 0 and ingest.counters["expired"] == 0


def test_the_pipeline_runs_off_the_event_loop_and_skips_requests_that_queued_too_long(ingest, monkeypatch):
    """Without worker processes the pipeline runs on its own thread: the event loop keeps reading
    requests while it works, and a request that queued for it past the deadline (2 s here) is
    refused before any CPU is spent on it."""
    from ragtrail.collector import ingest as ingest_module

    real, ran = ingest_module.process_export, []

    def slow(*args):
        ran.append(time.monotonic())
        time.sleep(0.8)
        return real(*args)

    monkeypatch.setattr(ingest_module, "process_export", slow)

    async def four_requests_at_once():
        t0 = time.monotonic()
        tick = asyncio.create_task(asyncio.sleep(0.2))
        jobs = [
            asyncio.create_task(
                ingest.export_async("traces", _body(f"s{i}"), Format.PROTOBUF, None, time.monotonic())
            )
            for i in range(4)
        ]
        await tick
        loop_free_after = time.monotonic() - t0
        return loop_free_after, await asyncio.gather(*jobs, return_exceptions=True)

    loop_free_after, results = asyncio.run(four_requests_at_once())
    assert loop_free_after < 0.6, "the event loop was blocked by the pipeline"
    # 1: 0-0.8 s, 2: 0.8-1.6 s committed; 3: 1.6-2.4 s, past the deadline once done; 4: refused unrun
    assert [type(r).__name__ for r in results] == ["Processed", "Processed", "Overloaded", "Overloaded"]
    assert len(ran) == 3 and ingest.counters["expired"] == 2 and ingest._inflight == 0


def test_a_retry_of_a_stored_request_is_acknowledged_again_and_not_stored_twice(ingest, monkeypatch):
    """OTel exporters resend the same bytes when a reply comes late: the copy gets the first reply
    and adds nothing to the WAL; a copy racing the first is refused as retryable; a copy of a
    request that was refused (not stored) is stored."""
    first = ingest.export("traces", _body("a"), Format.PROTOBUF, None, time.monotonic())
    in_wal = ingest.wal.unflushed_bytes
    again = asyncio.run(ingest.export_async("traces", _body("a"), Format.PROTOBUF, None, time.monotonic()))
    assert (again.accepted, again.rejected, again.payload) == (first.accepted, first.rejected, None)
    assert ingest.wal.unflushed_bytes == in_wal and ingest.counters["duplicates"] == 1
    assert ingest.counters["accepted"] == 1

    # The same bytes to another signal's endpoint, or with another encoding, are another request.
    keys = {RecentRequests.key(sig, _body("a"), enc) for sig in ("traces", "logs") for enc in (None, "gzip")}
    assert len(keys) == 4

    # A copy arriving while the first is still being stored: refused, retryable.
    from ragtrail.collector import ingest as ingest_module

    real = ingest_module.process_export

    def slow(*args):
        time.sleep(0.5)
        return real(*args)

    monkeypatch.setattr(ingest_module, "process_export", slow)

    async def two_at_once():
        one = asyncio.create_task(
            ingest.export_async("traces", _body("b"), Format.PROTOBUF, None, time.monotonic())
        )
        while not ingest.recent._pending:  # the first copy has claimed its bytes
            await asyncio.sleep(0.01)
        two = asyncio.create_task(
            ingest.export_async("traces", _body("b"), Format.PROTOBUF, None, time.monotonic())
        )
        return await asyncio.gather(one, two, return_exceptions=True)

    one, two = asyncio.run(two_at_once())
    assert one.accepted == 1 and isinstance(two, Overloaded) and two.retry_after

    # A request refused at its deadline was not stored: its retry is.
    stale = time.monotonic() - 3.0
    with pytest.raises(Overloaded):
        ingest.export("traces", _body("c"), Format.PROTOBUF, None, stale)
    before = ingest.wal.unflushed_bytes
    assert ingest.export("traces", _body("c"), Format.PROTOBUF, None, time.monotonic()).payload is not None
    assert ingest.wal.unflushed_bytes > before
