"""The collector process: wires recovery, WAL, flusher, pipeline workers and both transports.

Start-up order matters for exactly-once: finish interrupted compactions and flush every WAL
segment left by the previous run *before* accepting traffic, and number new segments after every
segment id already published, so a new segment can never reuse an old file name.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import uvicorn

from ragtrail.collector import flush, otlp_grpc, pipeline, wal
from ragtrail.collector.ingest import Ingest
from ragtrail.collector.otlp_http import OtlpHttpApp
from ragtrail.config import Config
from ragtrail.store import layout
from ragtrail.store.fs import open_store

log = logging.getLogger("ragtrail.collector")


class Collector:
    def __init__(self, config: Config):
        config.validate()
        self.config = config
        self.data_dir = Path(config.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.writer = layout.writer_id(self.data_dir, config.collector.writer_id)
        self._stopped = threading.Event()

        self.store = open_store(config.storage_uri)
        maintenance = config.storage.maintenance
        replayed = flush.recover(
            self.store, config.wal_dir, self.writer, config.flush, wal.replay, maintenance
        )
        if replayed:
            log.info("replayed %d rows from the write-ahead log", replayed)
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
        c = config.collector
        self.ingest = Ingest(
            self.wal,
            token=c.token,
            max_decompressed=c.max_decompressed_bytes,
            max_inflight_bytes=max(4 * c.max_body_bytes, 128 * 1024 * 1024),
            executor=self.executor,
        )
        self.tls = None
        if c.tls_cert and c.tls_key:
            self.tls = (Path(c.tls_key).read_bytes(), Path(c.tls_cert).read_bytes())

    def _release(self, segment: wal.Segment) -> None:
        self.wal.release(segment)

    def health(self) -> tuple[bool, str]:
        if self._stopped.is_set():
            return False, "stopping"
        return True, f"ok writer={self.writer} unflushed_bytes={self.wal.unflushed_bytes}"

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
        try:
            asyncio.run(http_server.serve())
        finally:
            self._stopped.set()
            grpc_server.stop(grace=5).wait(10)
            self.close()

    def close(self) -> None:
        self.wal.close()
        self.flusher.close()
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)


def run(config: Config) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    Collector(config).serve()  # uvicorn turns SIGINT/SIGTERM into a graceful shutdown
