"""Shared fixtures: a real `ragtrail collector` subprocess on free loopback ports, and SQL over its store.

Tests wait on conditions (readiness probe, row counts), never on fixed sleeps.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ragtrail.store import db

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05, what: str = ""
):
    """Poll ``predicate`` until it returns a truthy value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the condition may not be checkable yet (no files, no socket)
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}: {last_error!r}")


@dataclass
class Collector:
    """A `ragtrail collector` process on free ports over ``data_dir``."""

    data_dir: Path
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    ca_file: Path | None = None  # set when the collector serves TLS: the cert clients trust

    def __post_init__(self) -> None:
        while self.http_port == self.grpc_port:  # two free_port() calls can return the same port
            self.http_port = free_port()

    @property
    def http_endpoint(self) -> str:
        return f"{'https' if self.ca_file else 'http'}://127.0.0.1:{self.http_port}"

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else None

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout: float = 30.0) -> Collector:
        self.log_path = self.data_dir.parent / f"collector-{self.http_port}.log"
        log = self.log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        env.setdefault("RAGTRAIL_REDACTION", "off")  # redaction tests turn it on explicitly
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ragtrail.cli", "collector", "--data", str(self.data_dir),
             "--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
        )  # fmt: skip
        wait_until(self.ready, timeout=timeout, what=f"collector readiness ({self.log_path})")
        return self

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"collector exited with {self.proc.returncode}; see {self.log_path}")
        try:
            with urllib.request.urlopen(
                f"{self.http_endpoint}/healthz", timeout=1, context=self.ssl_context
            ) as resp:
                return resp.status == 200
        except OSError:
            return False

    def health(self) -> dict[str, str]:
        """The /healthz counters (``ok writer=... quarantined=0 ...``) as a dict."""
        url = f"{self.http_endpoint}/healthz"
        with urllib.request.urlopen(url, timeout=5, context=self.ssl_context) as resp:
            return dict(w.split("=", 1) for w in resp.read().decode().split() if "=" in w)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        """kill -9: no shutdown hook runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def sql(self, query: str) -> list[tuple]:
        """Run ``query`` through the store's read-only connection (what `ragtrail sql` uses)."""
        return db.query(self.data_dir, query).rows

    def scalar(self, query: str):
        return self.sql(query)[0][0]

    def wait_for(self, query: str, expected, timeout: float = 20.0):
        """Wait until the scalar ``query`` equals ``expected`` (e.g. a row count)."""
        seen: list = []

        def check():
            seen.append(self.scalar(query))
            return seen[-1] == expected

        try:
            wait_until(check, timeout=timeout, what=f"{query!r} == {expected!r}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last value {seen[-1] if seen else None!r}") from None


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def collector_factory(tmp_path: Path) -> Iterator[Callable[..., Collector]]:
    """Start collectors with custom args/env; all are stopped at teardown."""
    started: list[Collector] = []

    def make(
        data_dir: Path | None = None,
        *args: str,
        env: dict[str, str] | None = None,
        start: bool = True,
        ca_file: Path | None = None,
    ):
        d = data_dir or tmp_path / "data"
        d.mkdir(parents=True, exist_ok=True)
        c = Collector(d, extra_args=list(args), env=env or {}, ca_file=ca_file)
        started.append(c)
        return c.start() if start else c

    yield make
    for c in started:
        with contextlib.suppress(Exception):
            c.stop()


@pytest.fixture
def collector(collector_factory) -> Collector:
    """A running collector (redaction off) over a fresh data dir."""
    return collector_factory()


@dataclass
class S3:
    """An S3-compatible server (moto) on loopback: ``env`` points AWS clients at it."""

    endpoint: str
    bucket: str
    env: dict[str, str]
    _prefixes: itertools.count = field(default_factory=itertools.count)

    def new_store(self, name: str = "store") -> str:
        """A fresh ``s3://`` store URI (own prefix) in the test bucket."""
        return f"s3://{self.bucket}/{name}-{next(self._prefixes)}"


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    """moto's S3 server on 127.0.0.1 (started here, nothing leaves the machine); skip without moto."""
    server_mod = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # for readers in this process (db.query, store.fs)
    import boto3

    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket="ragtrail-test")
    try:
        yield S3(env["AWS_ENDPOINT_URL"], "ragtrail-test", env)
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
