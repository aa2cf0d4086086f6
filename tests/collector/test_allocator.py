"""The collector's processes allocate Arrow memory from jemalloc (returns freed memory to the OS;
bench/overload.py), unless ARROW_DEFAULT_MEMORY_POOL says otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "import pyarrow as pa; from ragtrail.collector import pipeline; "
    "pipeline.use_returning_allocator(); print(pa.default_memory_pool().backend_name)"
)


@pytest.mark.parametrize(("pool", "expected"), [(None, "jemalloc"), ("system", "system")])
def test_collector_processes_use_jemalloc_unless_told_otherwise(pool, expected):
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if pool:
        env["ARROW_DEFAULT_MEMORY_POOL"] = pool
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
