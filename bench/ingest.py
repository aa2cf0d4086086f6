"""Ingest benchmark: RAG-shaped OTLP traces into a real `ragtrail collector` (and, with --peer phoenix,
into Arize Phoenix), one system after the other on the same machine, with the same requests.

Load: bench/_load.py (6-span RAG traces, OpenInference attributes, ~1 KB text, 510 spans/request,
pre-encoded, fresh ids stamped per send). Per case it reports spans/s acknowledged, spans/s
persisted (until a count of the store sees every acknowledged span: ragtrail's `spans` view,
Phoenix's SQLite `spans` table), the lag from the last acknowledgement to all persisted, peak RSS
of the server's process tree, errors and spans lost. ragtrail acknowledges only after fsync;
Phoenix acknowledges on receipt and inserts later, so its two rates differ.

    python bench/ingest.py [--seconds 10] [--concurrency 2,4,8] [--transports http,grpc]
                           [--redaction off,on] [--peer phoenix] [--drain-timeout 60]

Phoenix (arize-phoenix, latest from PyPI) is installed once into bench/.venvs/phoenix.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from _load import SPANS_PER_REQUEST, free_port, make_request, run_senders, tree_cpu, tree_rss, wait_http

REPO = Path(__file__).resolve().parent.parent
VENVS = REPO / "bench" / ".venvs"


class Ragtrail:
    label = "ragtrail"

    def __init__(self, redaction: bool, workers: int):
        self.redaction, self.workers = redaction, workers
        self.label = f"ragtrail redact={'on' if redaction else 'off'}"
        self.read_races = 0

    def start(self) -> None:
        self.data = Path(tempfile.mkdtemp(prefix="ragtrail-bench-"))
        self.grpc_port, self.http_port = free_port(), free_port()
        env = {**os.environ, "RAGTRAIL_REDACTION": "on" if self.redaction else "off"}
        cmd = [sys.executable, "-m", "ragtrail.cli", "collector", "--data", str(self.data),
               "--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port),
               "--workers", str(self.workers)]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO
        )
        wait_http(f"http://127.0.0.1:{self.http_port}/healthz")

    def count(self) -> int:
        from ragtrail.store import db

        for _ in range(10):
            try:
                return db.query(self.data, "SELECT count(*) FROM spans").rows[0][0]
            except db.SqlError as exc:
                # A reader can list a Parquet file that compaction deletes before it is opened
                # ("IO Error: Cannot open file"): count how often, and ask again.
                if "Cannot open file" not in str(exc):
                    raise
                self.read_races += 1
        raise RuntimeError("spans unreadable: every count raced with compaction")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        shutil.rmtree(self.data, ignore_errors=True)


def phoenix_venv() -> Path:
    """bench/.venvs/phoenix with the latest arize-phoenix (created once, then reused)."""
    venv = VENVS / "phoenix"
    exe = venv / "bin" / "phoenix"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "arize-phoenix"], check=True)
    return venv


class Phoenix:
    label = "phoenix"

    def start(self) -> None:
        venv = phoenix_venv()
        self.work = Path(tempfile.mkdtemp(prefix="phoenix-bench-"))
        self.grpc_port, self.http_port = free_port(), free_port()
        env = {**os.environ, "PHOENIX_HOST": "127.0.0.1", "PHOENIX_PORT": str(self.http_port),
               "PHOENIX_GRPC_PORT": str(self.grpc_port), "PHOENIX_WORKING_DIR": str(self.work),
               "PHOENIX_TELEMETRY_ENABLED": "false", "DO_NOT_TRACK": "1"}  # fmt: skip
        self.log = (self.work / "server.log").open("wb")
        self.proc = subprocess.Popen([str(venv / "bin" / "phoenix"), "serve"], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.work)  # fmt: skip
        wait_http(f"http://127.0.0.1:{self.http_port}/healthz", 180)

    def count(self) -> int:
        con = sqlite3.connect(f"file:{self.work / 'phoenix.db'}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute("SELECT count(*) FROM spans").fetchone()[0]
        except sqlite3.OperationalError:  # schema not migrated yet / locked
            return 0
        finally:
            con.close()

    def version(self) -> str:
        out = subprocess.run([str(VENVS / "phoenix" / "bin" / "pip"), "show", "arize-phoenix"],
                             capture_output=True, text=True).stdout  # fmt: skip
        return next((line.split()[1] for line in out.splitlines() if line.startswith("Version")), "?")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.work, ignore_errors=True)


def start_profile(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    """py-spy (collapsed stacks, every process of the tree) for the send phase of a case."""
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    cmd = [spy, "record", "--pid", str(pid), "--subprocesses", "--duration", str(int(seconds)),
           "--rate", "100", "--format", "raw", "--output", str(out)]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top_functions(collapsed: Path, n: int = 15) -> list[tuple[str, float, float]]:
    """(function, self %, total %) from py-spy's raw output, line numbers merged, highest self first."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        k = int(count)
        samples += k
        own[frames[-1]] = own.get(frames[-1], 0) + k
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + k
    top = sorted(own, key=own.get, reverse=True)[:n]
    return [(f, 100 * own[f] / samples, 100 * total[f] / samples) for f in top]


def run_case(
    system,
    transport: str,
    concurrency: int,
    seconds: float,
    drain_timeout: float,
    profile: Path | None = None,
) -> dict:
    system.start()
    try:
        ps = psutil.Process(system.proc.pid)
        spy = None
        if profile is not None:
            out = (
                profile / f"{system.label.replace(' ', '_').replace('=', '-')}_{transport}_c{concurrency}.txt"
            )
            spy = start_profile(system.proc.pid, seconds, out)
        peak = [tree_rss(ps)]
        cpu0 = tree_cpu(ps)

        def sample():
            peak[0] = max(peak[0], tree_rss(ps))

        port = system.http_port if transport == "http" else system.grpc_port
        t0 = time.monotonic()
        result, send_seconds = run_senders(concurrency, transport, port, seconds, sample)
        if spy is not None:
            spy.wait(30)
            print(f"profile {out.name}: top functions by own time (self %, total %)")
            for func, own, tot in top_functions(out):
                print(f"  {own:5.1f} {tot:5.1f}  {func}")
        acked = result.acked_spans
        stored = system.count()
        while stored < acked and time.monotonic() - t0 < send_seconds + drain_timeout:
            sample()
            time.sleep(0.25)
            stored = system.count()
        persisted_seconds = time.monotonic() - t0
        cpu = tree_cpu(ps) - cpu0
        errors = sum(n for code, n in result.codes.items() if code not in ("200", "OK"))
        return {
            "system": system.label,
            "transport": transport,
            "conc": concurrency,
            "acked": acked,
            "acked_spans_s": acked / send_seconds,
            "stored": stored,
            "persisted_spans_s": stored / persisted_seconds,
            "lag_s": persisted_seconds - send_seconds,
            "drained": stored >= acked,
            "p50_ms": statistics.median(result.latencies) * 1000 if result.latencies else float("nan"),
            "peak_rss_mb": peak[0] / 2**20,
            "errors": errors,
            "error_codes": {code: n for code, n in result.codes.items() if code not in ("200", "OK")},
            "lost": max(0, acked - stored),
            # CPU of the server's process tree from first send to last count, per persisted span
            "cpu_us_span": cpu / max(stored, 1) * 1e6,
        }
    finally:
        system.stop()


HEADER = (f"{'system':20} {'transport':9} {'conc':>4} {'acked spans/s':>13} {'persisted spans/s':>17} "
          f"{'lag s':>6} {'p50 ms':>7} {'peak RSS MB':>11} {'errors':>6} {'lost':>6} {'CPU us/span':>11}")  # fmt: skip


def fmt_row(r: dict) -> str:
    lag = f"{r['lag_s']:.1f}" if r["drained"] else f">{r['lag_s']:.0f}"
    lost = str(r["lost"]) if r["drained"] else "?"  # not known until the server has drained
    line = (f"{r['system']:20} {r['transport']:9} {r['conc']:>4} {r['acked_spans_s']:>13,.0f} "
            f"{r['persisted_spans_s']:>17,.0f} {lag:>6} {r['p50_ms']:>7.1f} {r['peak_rss_mb']:>11.0f} "
            f"{r['errors']:>6} {lost:>6} {r['cpu_us_span']:>11.1f}")  # fmt: skip
    if r["errors"]:
        line += (
            "  (errors: " + ", ".join(f"{code} x {n}" for code, n in sorted(r["error_codes"].items())) + ")"
        )
    if not r["drained"]:
        line += f"  (persisted {r['stored']:,} of {r['acked']:,} after {r['lag_s']:.0f} s: wait capped)"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", default="2,4,8")
    parser.add_argument("--transports", default="http,grpc")
    parser.add_argument("--redaction", default="off", help="off, on or off,on")
    parser.add_argument("--workers", type=int, default=0, help="collector pipeline worker processes")
    parser.add_argument("--peer", choices=["phoenix"], help="also run Arize Phoenix, side by side")
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=60,
        help="cap on the wait for a server to persist what it acknowledged (s)",
    )
    parser.add_argument("--profile", type=Path, help="py-spy each server during the send phase into this folder")  # fmt: skip
    args = parser.parse_args()
    systems = [Ragtrail(mode == "on", args.workers) for mode in args.redaction.split(",")]
    if args.peer == "phoenix":
        phoenix_venv()
        systems.append(Phoenix())
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")  # fmt: skip
    print(f"machine: {os.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          f"shared with other jobs (figures are noisy: compare rows of one run); "
          f"{SPANS_PER_REQUEST} spans/request, {len(make_request(0)[0]) / 1024:.0f} KiB/request")  # fmt: skip
    if args.peer == "phoenix":
        print(f"peer: arize-phoenix {Phoenix().version()} (SQLite, default settings)")
    print(HEADER)
    print("-" * len(HEADER))
    rows = []
    for transport in args.transports.split(","):
        for conc in [int(c) for c in args.concurrency.split(",")]:
            for system in systems:
                r = run_case(system, transport, conc, args.seconds, args.drain_timeout, args.profile)
                rows.append(r)
                print(fmt_row(r), flush=True)
    if args.peer:
        print_ratios(rows)


def print_ratios(rows: list[dict]) -> None:
    """ragtrail / Phoenix per transport and concurrency, and the median over all cases."""
    print("\nratios ragtrail / phoenix (acked spans/s, persisted spans/s):")
    by_case: dict[tuple, dict] = {}
    for r in rows:
        by_case.setdefault((r["transport"], r["conc"]), {})[r["system"]] = r
    ratios: dict[str, list[tuple[float, float]]] = {}
    for (transport, conc), case in by_case.items():
        peer = case.get("phoenix")
        if not peer:
            continue
        for name, r in case.items():
            if name == "phoenix":
                continue
            a = r["acked_spans_s"] / max(peer["acked_spans_s"], 1e-9)
            p = r["persisted_spans_s"] / max(peer["persisted_spans_s"], 1e-9)
            ratios.setdefault(name, []).append((a, p))
            print(f"  {name:20} {transport:5} conc {conc:>2}: acked x{a:.1f}, persisted x{p:.1f}")
    for name, values in ratios.items():
        print(f"  {name:20} median: acked x{statistics.median(v[0] for v in values):.1f}, "
              f"persisted x{statistics.median(v[1] for v in values):.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
