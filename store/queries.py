"""Dashboard queries: plain functions ``(con, filters, ...) -> pandas.DataFrame`` over the views.

Every SQL string the dashboard runs lives here (pages only call these functions), so the queries
are testable and benchmarkable without Streamlit. ``con`` is a connection from ``db.connect``;
user-supplied values are always bound as parameters, never formatted into the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd


@dataclass(frozen=True)
class Filters:
    """What the sidebar selects: a time range [start, end) (None: open) and services (empty: all)."""

    start: datetime | None = None
    end: datetime | None = None
    services: tuple[str, ...] = field(default_factory=tuple)
    environments: tuple[str, ...] = field(default_factory=tuple)
    variants: tuple[str, ...] = field(default_factory=tuple)

    def where(
        self, time_col: str = "time", service_col: str | None = "service_name", level: str | None = "spans"
    ) -> tuple[str, list]:
        """A SQL condition (never empty) and its parameters.

        ``level`` says how environment and variant apply: "traces" (columns of the traces view,
        optionally qualified: "t."), "spans" (environment on every span; variant is set on some
        spans of a trace, so it selects whole traces), None for tables without them (documents,
        content, quality, gpu), which those filters then skip.
        """
        parts, params = ["true"], []
        if self.start is not None:
            parts.append(f"{time_col} >= ?")
            params.append(self.start)
        if self.end is not None:
            parts.append(f"{time_col} < ?")
            params.append(self.end)
        if self.services and service_col:
            parts.append(f"{service_col} IN ({_marks(self.services)})")
            params.extend(self.services)
        if level is not None:
            prefix = level.removeprefix("traces") if level.startswith("traces") else ""
            if self.environments:
                parts.append(f"{prefix}environment IN ({_marks(self.environments)})")
                params.extend(self.environments)
            if self.variants and level == "spans":
                parts.append(
                    f"trace_id IN (SELECT trace_id FROM spans WHERE variant IN ({_marks(self.variants)}))"
                )
                params.extend(self.variants)
            elif self.variants:
                parts.append(f"{prefix}variant IN ({_marks(self.variants)})")
                params.extend(self.variants)
        return " AND ".join(parts), params


def _marks(values) -> str:
    return ", ".join("?" for _ in values)


def _df(con, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def _bucket(bucket_s: int, col: str = "time") -> str:
    return f"time_bucket(to_seconds({max(1, int(bucket_s))}::BIGINT), {col})"


# --- sidebar -------------------------------------------------------------------------------------


def services(con) -> list[str]:
    rows = con.execute("SELECT DISTINCT service_name FROM spans WHERE service_name IS NOT NULL ORDER BY 1")
    return [r[0] for r in rows.fetchall()]


def filter_values(con) -> dict[str, list[str]]:
    """The values the sidebar offers: services, environments and variants seen in the spans."""
    out = {}
    for column in ("service_name", "environment", "variant"):
        rows = con.execute(f"SELECT DISTINCT {column} FROM spans WHERE {column} IS NOT NULL ORDER BY 1")
        out[column] = [r[0] for r in rows.fetchall()]
    return out


def time_extent(con) -> tuple[datetime | None, datetime | None]:
    return con.execute("SELECT min(time), max(time) FROM spans").fetchone()


# --- overview ------------------------------------------------------------------------------------


def overview(con, f: Filters) -> pd.DataFrame:
    """One row: requests, errors, error_rate, request rate per second, p50/p95/p99 of duration_ms."""
    cond, params = f.where(level="traces")
    return _df(
        con,
        f"""
        SELECT count(*) AS requests,
               count(*) FILTER (WHERE status = 'ERROR') AS errors,
               coalesce(avg((status = 'ERROR')::INT), 0) AS error_rate,
               count(*) / greatest(1e-3, (epoch_us(max(time)) - epoch_us(min(time))) / 1e6) AS rate_per_s,
               quantile_cont(duration_ms, 0.50) AS p50_ms,
               quantile_cont(duration_ms, 0.95) AS p95_ms,
               quantile_cont(duration_ms, 0.99) AS p99_ms,
               count(*) FILTER (WHERE fallback) AS fallbacks,
               sum(input_tokens) AS input_tokens,
               sum(output_tokens) AS output_tokens
        FROM traces WHERE {cond}
        """,
        params,
    )


def overview_over_time(con, f: Filters, bucket_s: int) -> pd.DataFrame:
    cond, params = f.where(level="traces")
    return _df(
        con,
        f"""
        SELECT {_bucket(bucket_s)} AS bucket, count(*) AS requests,
               count(*) / {max(1, int(bucket_s))} AS rate_per_s,
               avg((status = 'ERROR')::INT) AS error_rate,
               quantile_cont(duration_ms, 0.50) AS p50_ms,
               quantile_cont(duration_ms, 0.95) AS p95_ms,
               quantile_cont(duration_ms, 0.99) AS p99_ms
        FROM traces WHERE {cond} GROUP BY 1 ORDER BY 1
        """,
        params,
    )


# SLO defaults when ragtrail.toml has no [slo] section (DESIGN: p95 < 1 s search, < 3 s chat).
DEFAULT_SLO = {"availability": 0.99, "latency_p95_ms": 3000.0}
BURN_WINDOWS_S = (300, 3600, 6 * 3600)  # multi-window burn rate (SRE workbook: 5 m, 1 h, 6 h)


def slo_targets(slo: dict | None, service: str | None = None) -> tuple[float, float]:
    """(availability target, p95 latency target in ms) for a service from the [slo] table.

    ``latency_p95_ms`` is either one number or a table service -> ms (key "default" for the rest).
    """
    slo = slo or {}
    availability = float(slo.get("availability", DEFAULT_SLO["availability"]))
    latency = slo.get("latency_p95_ms", DEFAULT_SLO["latency_p95_ms"])
    if isinstance(latency, dict):
        latency = latency.get(service or "", latency.get("default", DEFAULT_SLO["latency_p95_ms"]))
    return availability, float(latency)


def burn_rate(error_rate: float, availability: float) -> float:
    """How fast the error budget burns: 1.0 spends exactly the budget over the SLO period."""
    budget = max(1e-9, 1.0 - availability)
    return float(error_rate) / budget


def window_error_rates(con, f: Filters, windows_s: tuple[int, ...] = BURN_WINDOWS_S) -> pd.DataFrame:
    """Error rate over trailing windows that end at the newest trace in the filters' range."""
    cond, params = f.where(level="traces")
    selects = ", ".join(
        f"count(*) FILTER (WHERE time > newest - to_seconds({int(w)}::BIGINT)) AS n_{int(w)}, "
        f"avg((status = 'ERROR')::INT) FILTER (WHERE time > newest - to_seconds({int(w)}::BIGINT)) AS e_{int(w)}"
        for w in windows_s
    )
    row = con.execute(
        f"""
        WITH t AS (SELECT * FROM traces WHERE {cond}),
             n AS (SELECT max(time) AS newest FROM t)
        SELECT {selects} FROM t, n
        """,
        params,
    ).fetchone()
    return pd.DataFrame(
        [
            {"window_s": w, "requests": row[2 * i], "error_rate": row[2 * i + 1]}
            for i, w in enumerate(windows_s)
        ]
    )


def slo_by_service(con, f: Filters) -> pd.DataFrame:
    cond, params = f.where(level="traces")
    return _df(
        con,
        f"""
        SELECT service_name, count(*) AS requests, avg((status = 'ERROR')::INT) AS error_rate,
               quantile_cont(duration_ms, 0.95) AS p95_ms
        FROM traces WHERE {cond} GROUP BY 1 ORDER BY 1
        """,
        params,
    )


def tokens_by_model(con, f: Filters) -> pd.DataFrame:
    cond, params = f.where()
    return _df(
        con,
        f"""
        SELECT model, count(*) AS calls, coalesce(sum(input_tokens), 0) AS input_tokens,
               coalesce(sum(output_tokens), 0) AS output_tokens
        FROM spans WHERE {cond} AND model IS NOT NULL AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL)
        GROUP BY 1 ORDER BY 1
        """,
        params,
    )


def with_cost(tokens: pd.DataFrame, prices: dict | None) -> pd.DataFrame:
    """Add cost = tokens x prices; ``prices`` maps model -> {input_per_1m, output_per_1m} (ragtrail.toml)."""
    prices = prices or {}
    out = tokens.copy()

    def price(model: str, key: str) -> float:
        entry = prices.get(model, prices.get("default", {}))
        return float(entry.get(key, 0.0)) if isinstance(entry, dict) else 0.0

    out["cost"] = [
        (r.input_tokens * price(r.model, "input_per_1m") + r.output_tokens * price(r.model, "output_per_1m"))
        / 1e6
        for r in out.itertuples()
    ]
    return out


# --- latency -------------------------------------------------------------------------------------


def stage_summary(con, f: Filters) -> pd.DataFrame:
    cond, params = f.where()
    return _df(
        con,
        f"""
        SELECT stage, count(*) AS spans,
               quantile_cont(duration_ms, 0.50) AS p50_ms, quantile_cont(duration_ms, 0.95) AS p95_ms
        FROM spans WHERE {cond} AND stage IS NOT NULL GROUP BY 1 ORDER BY p95_ms DESC
        """,
        params,
    )


def stage_latency_over_time(con, f: Filters, bucket_s: int) -> pd.DataFrame:
    cond, params = f.where()
    return _df(
        con,
        f"""
        SELECT {_bucket(bucket_s)} AS bucket, stage, count(*) AS spans,
               quantile_cont(duration_ms, 0.50) AS p50_ms, quantile_cont(duration_ms, 0.95) AS p95_ms
        FROM spans WHERE {cond} AND stage IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2
        """,
        params,
    )


def slowest_traces(con, f: Filters, limit: int = 20) -> pd.DataFrame:
    cond, params = f.where(level="traces")
    return _df(
        con,
        f"""
        SELECT trace_id, time, duration_ms, root_name, service_name, status, variant, model,
               embed_ms, retrieve_ms, rerank_ms, generate_ms, guardrail_ms
        FROM traces WHERE {cond} ORDER BY duration_ms DESC NULLS LAST LIMIT ?
        """,
        [*params, int(limit)],
    )


def trace_spans(con, trace_id: str) -> pd.DataFrame:
    """One trace's spans for a waterfall: offset_ms from the trace start, in start order."""
    return _df(
        con,
        """
        SELECT span_id, parent_span_id, name, stage, status, service_name, model,
               (epoch_us(time) - epoch_us(min(time) OVER ())) / 1000.0 AS offset_ms,
               duration_ms, time, end_time
        FROM spans WHERE trace_id = ? ORDER BY time, end_time DESC
        """,
        [trace_id.strip().lower()],
    )


# --- caches --------------------------------------------------------------------------------------


def cache_summary(con, f: Filters) -> pd.DataFrame:
    cond, params = f.where()
    return _df(
        con,
        f"""
        SELECT cache_layer, count(*) AS lookups, count(*) FILTER (WHERE cache_hit) AS hits,
               avg(cache_hit::INT) AS hit_rate
        FROM spans WHERE {cond} AND cache_layer IS NOT NULL AND cache_hit IS NOT NULL
        GROUP BY 1 ORDER BY 1
        """,
        params,
    )


def cache_hit_rate_over_time(con, f: Filters, bucket_s: int) -> pd.DataFrame:
    cond, params = f.where()
    return _df(
        con,
        f"""
        SELECT {_bucket(bucket_s)} AS bucket, cache_layer, count(*) AS lookups,
               avg(cache_hit::INT) AS hit_rate
        FROM spans WHERE {cond} AND cache_layer IS NOT NULL AND cache_hit IS NOT NULL
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        params,
    )


# --- GPU -----------------------------------------------------------------------------------------


def gpu_over_time(con, f: Filters) -> pd.DataFrame:
    cond, params = f.where(service_col=None, level=None)  # GPU samples come from agents, not the RAG services
    return _df(
        con,
        f"""
        SELECT time, host, gpu_id, host || '/' || gpu_id AS gpu, utilization,
               memory_used_bytes / 1e9 AS memory_used_gb, memory_total_bytes / 1e9 AS memory_total_gb,
               power_w, temperature_c, ooms
        FROM gpu WHERE {cond} ORDER BY time, host, gpu_id
        """,
        params,
    )


def generate_latency_over_time(con, f: Filters, bucket_s: int) -> pd.DataFrame:
    cond, params = f.where()
    return _df(
        con,
        f"""
        SELECT {_bucket(bucket_s)} AS bucket, quantile_cont(duration_ms, 0.95) AS generate_p95_ms,
               avg(queue_ms) AS queue_ms
        FROM spans WHERE {cond} AND stage = 'generate' GROUP BY 1 ORDER BY 1
        """,
        params,
    )


# --- quality -------------------------------------------------------------------------------------


def quality_summary(con, f: Filters) -> pd.DataFrame:
    cond, params = f.where(level=None)
    return _df(
        con,
        f"""
        SELECT metric, count(*) AS scores, avg(score) AS mean_score
        FROM quality WHERE {cond} GROUP BY 1 ORDER BY 1
        """,
        params,
    )


def quality_over_time(con, f: Filters, bucket_s: int) -> pd.DataFrame:
    cond, params = f.where(level=None)
    return _df(
        con,
        f"""
        SELECT {_bucket(bucket_s)} AS bucket, metric, count(*) AS scores, avg(score) AS mean_score
        FROM quality WHERE {cond} GROUP BY 1, 2 ORDER BY 1, 2
        """,
        params,
    )


def pii_counts(con, f: Filters) -> pd.DataFrame:
    """Entities found by redaction: content.pii is a JSON object entity type -> count."""
    cond, params = f.where(level=None)
    return _df(
        con,
        f"""
        WITH keyed AS (
            SELECT pii, unnest(json_keys(pii)) AS entity
            FROM content WHERE {cond} AND pii IS NOT NULL AND pii NOT IN ('', '{{}}', 'null')
        )
        SELECT entity, sum(CAST(json_extract(pii, '$."' || entity || '"') AS BIGINT)) AS count
        FROM keyed GROUP BY 1 ORDER BY 2 DESC, 1
        """,
        params,
    )


def quality_by_variant(con, f: Filters) -> pd.DataFrame:
    cond, params = f.where("q.time", "q.service_name", level=None)
    return _df(
        con,
        f"""
        SELECT coalesce(t.variant, '(none)') AS variant, q.metric, count(*) AS scores, avg(q.score) AS mean_score
        FROM quality q JOIN traces t USING (trace_id) WHERE {cond} GROUP BY 1, 2 ORDER BY 1, 2
        """,
        params,
    )


def requests_per_user(con, f: Filters, limit: int = 20) -> pd.DataFrame:
    """The busiest users (pseudonyms once redaction is on): requests, errors, first and last seen."""
    cond, params = f.where(level="traces")
    return _df(
        con,
        f"""
        SELECT user_id, count(*) AS requests, count(*) FILTER (WHERE status = 'ERROR') AS errors,
               min(time) AS first_seen, max(time) AS last_seen
        FROM traces WHERE {cond} AND user_id IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?
        """,
        [*params, int(limit)],
    )


# --- variants ------------------------------------------------------------------------------------


def variants(con, f: Filters) -> pd.DataFrame:
    cond, params = f.where(level="traces")
    return _df(
        con,
        f"""
        SELECT coalesce(variant, '(none)') AS variant, coalesce(quantization, '(none)') AS quantization,
               count(*) AS requests,
               quantile_cont(duration_ms, 0.50) AS p50_ms, quantile_cont(duration_ms, 0.95) AS p95_ms,
               avg((status = 'ERROR')::INT) AS error_rate,
               avg(groundedness) AS groundedness
        FROM traces WHERE {cond} GROUP BY 1, 2 ORDER BY 1, 2
        """,
        params,
    )


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sound for small n and rates near 0)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def with_error_ci(table: pd.DataFrame) -> pd.DataFrame:
    """Add error_rate_lo / error_rate_hi (95% Wilson) from ``requests`` and ``error_rate``."""
    out = table.copy()
    bounds = [
        wilson_interval(round(r * n), n) for r, n in zip(out["error_rate"], out["requests"], strict=True)
    ]
    out["error_rate_lo"] = [b[0] for b in bounds]
    out["error_rate_hi"] = [b[1] for b in bounds]
    return out


# --- audit ---------------------------------------------------------------------------------------


def search_traces(
    con, f: Filters, *, trace_id: str = "", user_id: str = "", doc_id: str = "", limit: int = 200
) -> pd.DataFrame:
    cond, params = f.where("t.time", "t.service_name", "traces.t.")
    if trace_id.strip():
        cond += " AND t.trace_id = ?"
        params.append(trace_id.strip().lower())
    if user_id.strip():
        cond += " AND t.user_id = ?"
        params.append(user_id.strip())
    if doc_id.strip():
        cond += " AND t.trace_id IN (SELECT trace_id FROM documents WHERE doc_id = ?)"
        params.append(doc_id.strip())
    return _df(
        con,
        f"""
        SELECT t.trace_id, t.time, t.user_id, t.service_name, t.status, t.model, t.prompt_version,
               t.variant, t.duration_ms, t.groundedness
        FROM traces t WHERE {cond} ORDER BY t.time DESC LIMIT ?
        """,
        [*params, int(limit)],
    )


def trace_content(con, trace_id: str) -> pd.DataFrame:
    return _df(
        con,
        """
        SELECT time, span_id, role, seq, text, pii, redaction
        FROM content WHERE trace_id = ? ORDER BY time, role, seq
        """,
        [trace_id.strip().lower()],
    )


def trace_documents(con, trace_id: str) -> pd.DataFrame:
    return _df(
        con,
        """
        SELECT stage, rank, doc_id, doc_version, score, uri, span_id
        FROM documents WHERE trace_id = ? ORDER BY stage, rank
        """,
        [trace_id.strip().lower()],
    )


# Starting points offered by the dashboard's SQL console (any single read-only SELECT is allowed).
EXAMPLE_QUERIES: dict[str, str] = {
    "Requests per service": "SELECT service_name, count(*) AS requests, avg((status = 'ERROR')::INT) AS error_rate\n"
    "FROM traces GROUP BY 1 ORDER BY 2 DESC",
    "p95 latency per stage": "SELECT stage, quantile_cont(duration_ms, 0.95) AS p95_ms, count(*) AS spans\n"
    "FROM spans GROUP BY 1 ORDER BY 2 DESC",
    "Cache hit rate per layer": "SELECT cache_layer, avg(cache_hit::INT) AS hit_rate, count(*) AS lookups\n"
    "FROM spans WHERE cache_layer IS NOT NULL GROUP BY 1",
    "Most retrieved documents": "SELECT doc_id, count(*) AS uses FROM documents WHERE stage = 'retrieve'\n"
    "GROUP BY 1 ORDER BY 2 DESC LIMIT 20",
    "Slowest traces": "SELECT trace_id, duration_ms, root_name, model FROM traces ORDER BY duration_ms DESC LIMIT 20",
}
