"""`ragtrail gpu-agent` as a user runs it: a subprocess exporting to a collector subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ragtrail.sample_data.gpu import NoGpuError, NvmlSource


def agent(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ragtrail.cli", "gpu-agent", *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_simulated_samples_land_in_the_gpu_view(collector):
    done = agent(
        "--simulate", "--endpoint", collector.grpc_endpoint, "--interval", "0.2", "--duration", "1.5"
    )
    assert done.returncode == 0, done.stderr
    collector.wait_for("SELECT count(*) >= 7 FROM gpu", True)
    samples, simulated, names, lo, hi, total, ooms = collector.sql(
        "SELECT count(*), bool_and(simulated), count(DISTINCT gpu_name), min(utilization), max(utilization), "
        "max(memory_total_bytes), max(ooms) FROM gpu"
    )[0]
    assert simulated and names == 1 and 0 < lo <= hi <= 1 and total == 80 * 1024**3 and ooms == 0
    # Every reading of a sample was folded into one row: no sample lacks power or temperature.
    assert collector.scalar("SELECT count(*) FROM gpu WHERE power_w IS NULL OR temperature_c IS NULL") == 0


def test_without_a_gpu_it_says_so_and_fails():
    try:
        NvmlSource().close()
        pytest.skip("this machine has an NVIDIA GPU")
    except NoGpuError:
        pass
    done = agent("--endpoint", "127.0.0.1:9", "--duration", "1")
    assert done.returncode != 0
    assert "no GPU to sample" in done.stderr and "--simulate" in done.stderr
