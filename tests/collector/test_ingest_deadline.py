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
from ragtrail.collector.ingest import Ingest
from ragtrail.config import WalConfig


def _body() -> bytes:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2

    span = trace_pb2.Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="s", start_time_unix_nano=1)
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
