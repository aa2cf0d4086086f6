"""Typed configuration, loaded once and passed down.

Precedence (last wins): built-in defaults < ``ragtrail.toml`` (in the data directory, or the file
named by ``--config`` / ``RAGTRAIL_CONFIG``) < ``RAGTRAIL_*`` environment variables < CLI flags.
Nothing below the CLI reads the environment or a global: it gets a ``Config``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass
class CollectorConfig:
    host: str = "127.0.0.1"
    grpc_port: int = 4317
    http_port: int = 4318
    token: str | None = None  # bearer token required for ingest; mandatory off loopback
    tls_cert: str | None = None
    tls_key: str | None = None
    max_body_bytes: int = 16 * 1024 * 1024  # compressed request body (413 above)
    max_decompressed_bytes: int = 64 * 1024 * 1024  # gzip bombs stop here (413)
    workers: int = 0  # decode/normalize/redact processes; 0 = in the receiving process
    # A request not committed this long after it reached the collector is refused (503 /
    # UNAVAILABLE) instead of stored: OTel exporters give up after 10 s and send again, so storing
    # it later would store it twice.
    request_deadline_seconds: float = 4.0
    writer_id: str | None = None  # set to name this collector's files when several share a store


@dataclass
class WalConfig:
    segment_bytes: int = 32 * 1024 * 1024  # seal a segment at this size ...
    segment_seconds: float = 1.0  # ... or this age, so data is queryable within seconds
    max_pending_bytes: int = 96 * 1024 * 1024  # unflushed bytes before ingest answers 503
    admission_wait_seconds: float = 0.5  # how long a request may wait for WAL space before that 503
    fsync: bool = True  # only for benchmarks that isolate fsync cost; never turn off in production


@dataclass
class FlushConfig:
    compact_min_files: int = 16  # compact a partition once it holds this many small files
    compact_target_bytes: int = 128 * 1024 * 1024
    compact_interval_seconds: float = 30.0
    row_group_rows: int = 122_880


@dataclass
class RedactionConfig:
    enabled: bool = True
    entities: list[str] = field(
        default_factory=lambda: [
            "PERSON",
            "EMAIL_ADDRESS",
            "PHONE_NUMBER",
            "CREDIT_CARD",
            "US_SSN",
            "IBAN_CODE",
            "IP_ADDRESS",
            "LOCATION",
            "SECRET",
        ]
    )
    # Patterns run on every string; NER also on other string attributes at least this long.
    min_attribute_chars: int = 24
    allow_list: list[str] = field(default_factory=list)  # exact values never redacted (names, products)
    ner: bool = True  # Presidio + spaCy NER for PERSON / LOCATION; patterns alone when false
    # Time budget per 10,000 characters of a batch; texts not done in time are stored as
    # <REDACTION_FAILED> (fail closed), never raw.
    timeout_seconds: float = 5.0
    cache_entries: int = 50_000  # texts whose findings are cached (keyed hash -> offsets); 0 = off


@dataclass
class StorageConfig:
    # Where published Parquet lives: a local directory or s3://bucket/prefix (store.fs; endpoint,
    # region and credentials from the AWS_* environment). Default: the data directory itself.
    # The WAL, writer id and keys stay in the local data directory either way.
    uri: str | None = None
    # Compaction and other maintenance of the store. On a store shared by several collectors,
    # exactly one runs with this on (docs/SCALE.md); it also takes the store's maintenance lease.
    maintenance: bool = True


@dataclass
class SqlConfig:
    time_limit_seconds: float = 30.0
    max_rows: int = 100_000
    memory_limit: str = "2GB"


@dataclass
class Config:
    data_dir: Path = Path("ragtrail-data")
    collector: CollectorConfig = field(default_factory=CollectorConfig)
    wal: WalConfig = field(default_factory=WalConfig)
    flush: FlushConfig = field(default_factory=FlushConfig)
    redaction: RedactionConfig = field(default_factory=RedactionConfig)
    sql: SqlConfig = field(default_factory=SqlConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    # Free-form sections other components own (slo, prices, retention, dashboard); kept as tables.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tables_dir(self) -> Path:
        return self.data_dir / "tables"

    @property
    def wal_dir(self) -> Path:
        return self.data_dir / "wal"

    @property
    def storage_uri(self) -> str:
        return self.storage.uri or str(self.data_dir)

    def validate(self) -> None:
        c = self.collector
        if c.host not in LOOPBACK_HOSTS and not c.token:
            raise ConfigError(
                f"refusing to listen on {c.host}: ingest off loopback needs a bearer token "
                "(--token or RAGTRAIL_TOKEN)"
            )
        if bool(c.tls_cert) != bool(c.tls_key):
            raise ConfigError("TLS needs both --tls-cert and --tls-key")


class ConfigError(ValueError):
    pass


_SECTIONS = {
    "collector": CollectorConfig,
    "wal": WalConfig,
    "flush": FlushConfig,
    "redaction": RedactionConfig,
    "sql": SqlConfig,
    "storage": StorageConfig,
}


def _apply(obj: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        setattr(obj, key, value)


def load(
    data_dir: str | Path | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Build the Config: defaults, then the TOML file, then RAGTRAIL_* env, then ``overrides``.

    ``overrides`` maps section -> {setting: value} and skips None values (unset CLI flags).
    """
    env = os.environ if environ is None else environ
    cfg = Config()
    cfg.data_dir = Path(data_dir or env.get("RAGTRAIL_DATA") or cfg.data_dir)
    path = Path(config_file or env.get("RAGTRAIL_CONFIG") or cfg.data_dir / "ragtrail.toml")
    if path.exists():
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
        for section, values in doc.items():
            if section in _SECTIONS:
                _apply(getattr(cfg, section), values, f"{path} [{section}]")
            else:
                cfg.extra[section] = values
    if env.get("RAGTRAIL_TOKEN"):
        cfg.collector.token = env["RAGTRAIL_TOKEN"]
    if env.get("RAGTRAIL_STORAGE"):
        cfg.storage.uri = env["RAGTRAIL_STORAGE"]
    if env.get("RAGTRAIL_REDACTION"):
        cfg.redaction.enabled = env["RAGTRAIL_REDACTION"].lower() not in {"0", "off", "false", "no"}
    for section, values in (overrides or {}).items():
        _apply(getattr(cfg, section), {k: v for k, v in values.items() if v is not None}, "flag")
    return cfg
