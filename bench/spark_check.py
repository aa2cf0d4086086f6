"""Spark SQL over a ragtrail store: the dashboard's key questions, compared with `ragtrail sql`.

The store's Hive-partitioned Parquet (tables/<table>/date=YYYY-MM-DD/*.parquet, every writer's
files side by side) is the interchange: Spark reads it as it is, with no export step. This runs
per-stage p95 latency, cache hit rate per layer and answers per cited document in pyspark (local
mode) and in DuckDB through ragtrail's locked reader, and prints both with their timings.

    python bench/spark_check.py ./ragtrail-data            # a data directory or shared store dir
    python bench/spark_check.py s3://bucket/prefix         # Spark via s3a:// (hadoop-aws on the classpath)

Only ``*.parquet`` names are read: in-flight files (``.tmp``, ``.pending``) never match.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

# (DuckDB via `ragtrail sql`, Spark SQL): the same question; percentile() and quantile_cont() both
# interpolate linearly between the closest ranks, so p95 agrees to rounding.
QUESTIONS: dict[str, tuple[str, str]] = {
    "p95 ms per stage": (
        "SELECT stage, quantile_cont(duration_ms, 0.95) AS p95_ms, count(*) AS spans "
        "FROM spans WHERE stage IS NOT NULL GROUP BY 1 ORDER BY 1",
        "SELECT stage, percentile(duration_ms, 0.95) AS p95_ms, count(*) AS spans "
        "FROM spans WHERE stage IS NOT NULL GROUP BY 1 ORDER BY 1",
    ),
    "cache hit rate per layer": (
        "SELECT cache_layer, avg(cache_hit::INT) AS hit_rate, count(*) AS lookups FROM spans "
        "WHERE cache_layer IS NOT NULL AND cache_hit IS NOT NULL GROUP BY 1 ORDER BY 1",
        "SELECT cache_layer, avg(CAST(cache_hit AS INT)) AS hit_rate, count(*) AS lookups FROM spans "
        "WHERE cache_layer IS NOT NULL AND cache_hit IS NOT NULL GROUP BY 1 ORDER BY 1",
    ),
    "answers per document": (
        "SELECT doc_id, count(DISTINCT trace_id) AS answers FROM documents WHERE stage = 'cite' "
        "GROUP BY 1 ORDER BY 2 DESC, 1",
        "SELECT doc_id, count(DISTINCT trace_id) AS answers FROM documents WHERE stage = 'cite' "
        "GROUP BY 1 ORDER BY 2 DESC, 1",
    ),
}
TABLES = ("spans", "documents")


def spark_session(app: str = "ragtrail-spark-check"):
    """A small local SparkSession (2 cores, no UI); s3a settings from the AWS environment."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[2]")
        .appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.session.timeZone", "UTC")
    )
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:  # S3-compatible servers: path-style addressing at that endpoint
        builder = builder.config("spark.hadoop.fs.s3a.endpoint", endpoint).config(
            "spark.hadoop.fs.s3a.path.style.access", "true"
        )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def spark_root(location: str) -> str:
    """The store root as Spark names it: s3:// becomes s3a://; a directory becomes absolute."""
    if location.startswith("s3://"):
        return "s3a://" + location.removeprefix("s3://").rstrip("/")
    return str(Path(location).resolve())


def register_views(spark, location: str) -> None:
    """One temp view per table over every writer's files, with the date partition column."""
    root = spark_root(location)
    for table in TABLES:
        base = f"{root}/tables/{table}"
        frame = (
            spark.read.option("basePath", base)
            .option("mergeSchema", "true")  # files written before a column existed lack it
            .parquet(f"{base}/date=*/*.parquet")
        )
        frame.createOrReplaceTempView(table)


def run_spark(spark, location: str) -> dict[str, tuple[list[tuple], float]]:
    register_views(spark, location)
    out = {}
    for name, (_, sql) in QUESTIONS.items():
        t0 = time.perf_counter()
        rows = [tuple(r) for r in spark.sql(sql).collect()]
        out[name] = (rows, time.perf_counter() - t0)
    return out


def run_duckdb(location: str) -> dict[str, tuple[list[tuple], float]]:
    from ragtrail.store import db

    out = {}
    for name, (sql, _) in QUESTIONS.items():
        t0 = time.perf_counter()
        rows = db.query(location, sql, max_rows=10**6).rows
        out[name] = (rows, time.perf_counter() - t0)
    return out


def same(a: list[tuple], b: list[tuple], rel: float = 1e-9) -> bool:
    """Row-by-row equality, floats to a relative tolerance."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b, strict=True):
        for x, y in zip(ra, rb, strict=True):
            if isinstance(x, float) or isinstance(y, float):
                if not math.isclose(float(x), float(y), rel_tol=rel, abs_tol=1e-12):
                    return False
            elif x != y:
                return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("store", help="data directory, shared store directory or s3://bucket/prefix")
    parser.add_argument("--rows", type=int, default=10, help="rows of each answer to print")
    args = parser.parse_args()
    t0 = time.perf_counter()
    spark = spark_session()
    start_s = time.perf_counter() - t0
    try:
        spark_out = run_spark(spark, args.store)
    finally:
        spark.stop()
    duck_out = run_duckdb(args.store)
    print(f"Spark session start: {start_s:.1f} s")
    ok = True
    for name in QUESTIONS:
        (s_rows, s_s), (d_rows, d_s) = spark_out[name], duck_out[name]
        match = same(s_rows, d_rows)
        ok &= match
        print(f"\n{name}: Spark {s_s:.2f} s, DuckDB {d_s:.2f} s, {len(s_rows)} rows, "
              f"{'same answers' if match else 'DIFFERENT answers'}")  # fmt: skip
        for row in s_rows[: args.rows]:
            print("  ", row)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
