"""The collector process: wires recovery, WAL, flusher, pipeline workers and both transports.

Start-up order matters for exactly-once: finish interrupted compactions and flush every WAL
segment left by the previous run *before* accepting traffic, and number new segments after every
segment id already published, so a new segment can never reuse an old file name.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import uvicorn

from ragtrail.collector import flush, otlp_grpc, pipeline, wal
from ragtrail.collector.ingest import Ingest
from ragtrail.collector.maintenance import Maintenance
from ragtrail.collector.otlp_http import OtlpHttpApp
from ragtrail.config import Config
from ragtrail.store import layout, locks
from ragtrail.store.fs import open_store

log = logging.getLogger("ragtrail.collector")


class Collector:
    def __init__(self, config: Config):
        config.validate()
        pipeline.use_returning_allocator()
        self.config = config
        self.data_dir = Path(config.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.writer = layout.writer_id(self.data_dir, config.collector.writer_id)
        self._stopped = threading.Event()
        self._presence = contextlib.ExitStack()  # tells erasure a live collector owns the WAL
        self._presence.enter_context(locks.collector_presence(self.data_dir))

        self.store = open_store(config.storage_uri)
        maintenance = config.storage.maintenance
        # Under the data dir's maintenance lock: an erasure that found no collector may be rewriting
        # the WAL. The maintainer of a store elsewhere also takes that store's lease to finish
        # compactions a crash interrupted (a local store at the data dir shares the lock above).
        with locks.maintenance_lock(self.data_dir), contextlib.ExitStack() as stack:
            finish = maintenance and (
                self.store.uri == str(self.data_dir.resolve())
                or stack.enter_context(locks.maintenance_lease(self.store, self.writer))
            )
            replayed, quarantined = flush.recover(
                self.store, config.wal_dir, self.writer, config.flush, wal.replay, finish
            )
        if replayed:
            log.info("replayed %d rows from the write-ahead log", replayed)
        if quarantined:
            log.error("quarantined %d damaged files at start-up (see quarantine/)", quarantined)
        config.wal_dir.mkdir(parents=True, exist_ok=True)
        first_segment = flush.max_published_segment(self.store, self.writer) + 1

        self.executor = None
        if config.collector.workers > 0:
            self.executor = ProcessPoolExecutor(
                config.collector.workers,
                initializer=functools.partial(pipeline.init_worker, pool_worker=True),
                initargs=(config.redaction, self.data_dir),
            )
            # Start every worker (each loads the NER model: seconds) before /healthz says ready,
            # so the first clients are not the ones who wait for it.
            warm = [self.executor.submit(pipeline.warm_worker) for _ in range(config.collector.workers)]
            for future in warm:
                future.result()
        else:
            pipeline.init_worker(config.redaction, self.data_dir)

        self.flusher = flush.Flusher(
            self.store, self.writer, config.flush, release=self._release, maintenance=maintenance
        )
        self.wal = wal.WriteAheadLog(config.wal_dir, config.wal, first_segment, on_seal=self.flusher.submit)
        self.maintenance = Maintenance(
            self.data_dir, self.wal, config.extra, config.storage.uri, maintainer=config.storage.maintenance
        )
        c = config.collector
        self.ingest = Ingest(
            self.wal,
            token=c.token,
            max_decompressed=c.max_decompressed_bytes,
            max_inflight_bytes=max(3 * c.max_body_bytes, 48 * 1024 * 1024),
            executor=self.executor,
            admission_wait=config.wal.admission_wait_seconds,
            deadline=c.request_deadline_seconds,
        )
        self.tls = None
        if c.tls_cert and c.tls_key:
            self.tls = (Path(c.tls_key).read_bytes(), Path(c.tls_cert).read_bytes())

    def _release(self, segment: wal.Segment) -> None:
        self.wal.release(segment)

    def health(self) -> tuple[bool, str]:
        """Readiness plus the counters an operator (and the fault tests) watch."""
        if self._stopped.is_set():
            return False, "stopping"
        counters = {
            "writer": self.writer,
            "unflushed_bytes": self.wal.unflushed_bytes,
            "refused": self.ingest.counters["refused"] + self.wal.overloaded,
            "wal_write_failures": self.wal.write_failures,
            "flush_failures": self.flusher.failures,
            "quarantined": len(layout.quarantined_files(self.data_dir)),
        }
        return True, "ok " + " ".join(f"{k}={v}" for k, v in counters.items())

    def serve(self) -> None:
        """Run until SIGTERM/SIGINT; then stop taking requests, seal the WAL and flush it."""
        c = self.config.collector
        grpc_server = otlp_grpc.make_server(self.ingest, c.host, c.grpc_port, c.max_body_bytes, self.tls)
        grpc_server.start()
        app = OtlpHttpApp(self.ingest, c.max_body_bytes, self.health)
        uv_config = uvicorn.Config(
            app,
            host=c.host,
            port=c.http_port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_level="warning",
            ssl_certfile=c.tls_cert,
            ssl_keyfile=c.tls_key,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=5,  # a stuck client must not hold up sealing and flushing the WAL
            backlog=2048,
        )
        http_server = uvicorn.Server(uv_config)
        log.info(
            "ragtrail collector writer=%s data=%s store=%s OTLP/gRPC %s:%d OTLP/HTTP %s:%d redaction=%s",
            self.writer,
            self.data_dir,
            self.store.uri,
            c.host,
            c.grpc_port,
            c.host,
            c.http_port,
            "on" if self.config.redaction.enabled else "off",
        )
        # uvicorn re-raises the SIGTERM / SIGINT it handled once it has stopped; with the default
        # handlers that would kill the process (or raise KeyboardInterrupt) before the WAL is sealed
        # and flushed below. Make the re-raise a no-op.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: None)
        try:
            asyncio.run(http_server.serve())
        finally:
            self._stopped.set()
            grpc_server.stop(grace=5).wait(10)
            self.close()
            log.info("stopped: write-ahead log sealed and flushed")

    def close(self) -> None:
        self.ingest.close()
        self.maintenance.close()
        self.wal.close()
        self.flusher.close()
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)
        self._presence.close()


def run(config: Config) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    Collector(config).serve()  # uvicorn turns SIGINT/SIGTERM into a graceful shutdown
