"""CPU per span of the collector's pure pipeline stages on the ingest benchmark's request.

No sockets, files or threads: decode (protobuf), normalize (OTLP -> rows) and the whole
process_export (decode + normalize + Arrow encode for the WAL), redaction off, each timed with
time.process_time over --runs runs; medians per span. What bounds ingest once both cores are busy.

    python bench/pipeline_cpu.py [--runs 60]
"""

from __future__ import annotations

import argparse

from _load import SPANS_PER_REQUEST, make_request
from trace_parts import cpu_median

from ragtrail.collector import encoding, normalize, pipeline
from ragtrail.collector.encoding import Format


def per_span_us(fn, runs: int) -> float:
    return cpu_median(fn, runs) / SPANS_PER_REQUEST * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=60)
    args = ap.parse_args()
    body, _ = make_request(1)
    pipeline.init_worker(None)  # redaction off
    request = encoding.decode("traces", body, Format.PROTOBUF)
    stages = {
        "decode": lambda: encoding.decode("traces", body, Format.PROTOBUF),
        "normalize": lambda: normalize.normalize_traces(request, 0),
        "process_export (all)": lambda: pipeline.process_export(
            "traces", body, Format.PROTOBUF, None, 0, 1 << 30
        ),
    }
    print(f"{SPANS_PER_REQUEST} spans/request, {len(body) / 1024:.0f} KiB; median CPU of {args.runs} runs")
    for name, fn in stages.items():
        print(f"{name:22} {per_span_us(fn, args.runs):6.2f} us/span")


if __name__ == "__main__":
    main()
