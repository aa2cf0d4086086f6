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
    """What the sidebar selects: a time range [start, end) (None: open) and, per dimension, the
    values to keep (empty: all)."""

    start: datetime | None = None
    end: datetime | None = None
    services: tuple[str, ...] = field(default_factory=tuple)
    environments: tuple[str, ...] = field(default_factory=tuple)
    variants: tuple[str, ...] = field(default_factory=tuple)
    models: tuple[str, ...] = field(default_factory=tuple)  # generation models
    routes: tuple[str, ...] = field(default_factory=tuple)

    def where(
        self, time_col: str = "time", service_col: str | None = "service_name", level: str | None = "spans"
    ) -> tuple[str, list]:
        """A SQL condition (never empty) and its parameters.

        ``level`` says how environment, variant, model and route apply, optionally with a table
        alias after a dot ("traces.t." qualifies columns with "t."):
        - "traces": the traces view's environment and variant columns;
        - "spans": environment on every span; variant is set on some spans of a trace, so it
          selects whole traces;
        - "linked": tables with only a trace_id (documents, content, quality) select whole traces;
        - None: tables without traces (gpu) skip these filters.
        Model (of a generate span) and route select whole traces at every level.
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
        if level is None:
            return " AND ".join(parts), params
        kind, _, prefix = level.partition(".")
        selectors: list[tuple[str, tuple]] = []  # conditions on spans, each selecting whole traces
        # (values, column on the traces view or None, condition on the spans that select a trace)
        for values, trace_col, span_cond in (
            (self.environments, "environment", "environment IN ({})"),
            (self.variants, "variant", "variant IN ({})"),
            (self.models, None, "stage = 'generate' AND model IN ({})"),
            (self.routes, None, "route IN ({})"),
        ):
            if not values:
                continue
            if (kind == "traces" and trace_col) or (kind == "spans" and trace_col == "environment"):
                parts.append(f"{prefix}{trace_col} IN ({_marks(values)})")
                params.extend(values)
            else:
                selectors.append((f"({span_cond.format(_marks(values))})", values))
        if len(selectors) == 1:
            ((cond, values),) = selectors
            parts.append(f"{prefix}trace_id IN (SELECT trace_id FROM spans WHERE {cond})")
            params.extend(values)
        elif selectors:
            # One pass over the spans for all of them: a trace qualifies when each holds on some span.
            conds = [c for c, _ in selectors]
            parts.append(
                f"{prefix}trace_id IN (SELECT trace_id FROM spans WHERE {' OR '.join(conds)} "
                f"GROUP BY trace_id HAVING {' AND '.join(f'bool_or({c})' for c in conds)})"
            )
            params.extend([v for _, values in selectors for v in values] * 2)
        return " AND ".join(parts), params


def _marks(values) -> str:
    return ", ".join("?" for _ in values)


def _df(con, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def _bucket(bucket_s: int, col: str = "time") -> str:
    return f"time_bucket(to_seconds({max(1, int(bucket_s))}::BIGINT), {col})"


def _attr(key: str) -> str:
    """A span attribute kept in the attributes JSON column (no column of its own), as text."""
    return f"json_extract_string(attributes, '$.\"{key}\"')"


# --- sidebar -------------------------------------------------------------------------------------


def services(con) -> list[str]:
    rows = con.execute("SELECT DISTINCT service_name FROM spans WHERE service_name IS NOT NULL ORDER BY 1")
    return [r[0] for r in rows.fetchall()]


def filter_values(con) -> dict[str, list[str]]:
    """The values the sidebar offers, as seen in the spans: services, environments, variants,
    generation models and routes."""
    out = {}
    for column, cond in (
        ("service_name", "true"),
        ("environment", "true"),
        ("variant", "true"),
        ("model", "stage = 'generate'"),
        ("route", "true"),
    ):
        rows = con.execute(
            f"SELECT DISTINCT {column} FROM spans WHERE {cond} AND {column} IS NOT NULL ORDER BY 1"
        )
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
        FROM trace_rows WHERE {cond}
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
        FROM trace_rows WHERE {cond} GROUP BY 1 ORDER BY 1
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
        WITH t AS (SELECT * FROM trace_rows WHERE {cond}),
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
        FROM trace_rows WHERE {cond} GROUP BY 1 ORDER BY 1
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
        FROM trace_rows WHERE {cond} ORDER BY duration_ms DESC NULLS LAST LIMIT ?
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


MISS_REASON = _attr("ragtrail.cache.miss_reason")


def cache_misses_by_reason(con, f: Filters) -> pd.DataFrame:
    """Misses per layer and cause (ragtrail.cache.miss_reason: cold, ttl, version, bypass)."""
    cond, params = f.where()
    return _df(
        con,
        f"""
        SELECT cache_layer, coalesce({MISS_REASON}, 'unknown') AS reason, count(*) AS misses
        FROM spans WHERE {cond} AND cache_layer IS NOT NULL AND NOT cache_hit
        GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2
        """,
        params,
    )


def cache_misses_over_time(con, f: Filters, bucket_s: int) -> pd.DataFrame:
    cond, params = f.where()
    return _df(
        con,
        f"""
        SELECT {_bucket(bucket_s)} AS bucket, coalesce({MISS_REASON}, 'unknown') AS reason, count(*) AS misses
        FROM spans WHERE {cond} AND cache_layer IS NOT NULL AND NOT cache_hit
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        params,
    )


def cache_savings(con, f: Filters) -> pd.DataFrame:
    """Per layer and outcome (hit / miss): lookups, the end-to-end latency of those requests
    (root span) and their tokens (all spans of the trace), to estimate what hits save.

    ``saved_ms`` = hits x (median miss latency - median hit latency); ``saved_tokens`` = hits x
    (mean tokens of a miss request - of a hit request): estimates, from requests that did and did
    not hit at that layer.
    """
    cond, params = f.where()
    frame = _df(
        con,
        f"""
        WITH lookups AS (
            SELECT trace_id, cache_layer, cache_hit FROM spans
            WHERE {cond} AND cache_layer IS NOT NULL AND cache_hit IS NOT NULL
        )
        SELECT l.cache_layer, l.cache_hit, count(*) AS lookups,
               quantile_cont(t.root_duration_ms, 0.5) AS median_request_ms,
               avg(t.input_tokens + t.output_tokens) AS mean_tokens
        FROM lookups l JOIN trace_rows t USING (trace_id) GROUP BY 1, 2
        """,
        params,
    )
    rows = []
    for layer, g in frame.groupby("cache_layer", sort=True):
        hit, miss = g[g["cache_hit"]], g[~g["cache_hit"]]
        hits = int(hit["lookups"].sum())
        row = {"cache_layer": layer, "hits": hits, "misses": int(miss["lookups"].sum())}
        row["hit_median_ms"] = hit["median_request_ms"].iloc[0] if len(hit) else float("nan")
        row["miss_median_ms"] = miss["median_request_ms"].iloc[0] if len(miss) else float("nan")
        row["hit_mean_tokens"] = hit["mean_tokens"].iloc[0] if len(hit) else float("nan")
        row["miss_mean_tokens"] = miss["mean_tokens"].iloc[0] if len(miss) else float("nan")
        row["saved_ms"] = hits * (row["miss_median_ms"] - row["hit_median_ms"])
        row["saved_tokens"] = hits * (row["miss_mean_tokens"] - row["hit_mean_tokens"])
        rows.append(row)
    return pd.DataFrame(rows, columns=CACHE_SAVINGS_COLUMNS)


CACHE_SAVINGS_COLUMNS = [
    "cache_layer", "hits", "misses", "hit_median_ms", "miss_median_ms", "hit_mean_tokens",
    "miss_mean_tokens", "saved_ms", "saved_tokens",
]  # fmt: skip


def cached_tokens(con, f: Filters) -> pd.DataFrame:
    """Prompt tokens the serving engine read from its prefix / KV cache, per model."""
    cond, params = f.where()
    return _df(
        con,
        f"""
        SELECT model, coalesce(sum(input_tokens), 0) AS input_tokens,
               coalesce(sum(cache_read_tokens), 0) AS cached_tokens,
               coalesce(sum(cache_read_tokens), 0) / greatest(1, coalesce(sum(input_tokens), 0)) AS cached_share
        FROM spans WHERE {cond} AND stage = 'generate' AND model IS NOT NULL GROUP BY 1 ORDER BY 1
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


def gpu_utilization_over_time(con, f: Filters, bucket_s: int) -> pd.DataFrame:
    cond, params = f.where(service_col=None, level=None)
    return _df(
        con,
        f"""
        SELECT {_bucket(bucket_s)} AS bucket, host || '/' || gpu_id AS gpu, avg(utilization) AS utilization
        FROM gpu WHERE {cond} GROUP BY 1, 2 ORDER BY 1, 2
        """,
        params,
    )


BATCH_SIZE = _attr("ragtrail.batch.size")


def serving_over_time(con, f: Filters, bucket_s: int) -> pd.DataFrame:
    """Generate spans per bucket: latency percentiles, queue time (vLLM time_in_queue), TTFT and
    the batch size the serving engine ran them in (ragtrail.batch.size)."""
    cond, params = f.where()
    return _df(
        con,
        f"""
        SELECT {_bucket(bucket_s)} AS bucket, count(*) AS generations,
               quantile_cont(duration_ms, 0.50) AS generate_p50_ms,
               quantile_cont(duration_ms, 0.95) AS generate_p95_ms,
               avg(queue_ms) AS queue_ms, quantile_cont(queue_ms, 0.95) AS queue_p95_ms,
               avg(ttft_ms) AS ttft_ms, avg(TRY_CAST({BATCH_SIZE} AS DOUBLE)) AS batch_size
        FROM spans WHERE {cond} AND stage = 'generate' GROUP BY 1 ORDER BY 1
        """,
        params,
    )


# --- quality -------------------------------------------------------------------------------------


def quality_summary(con, f: Filters) -> pd.DataFrame:
    """Per metric: scores, mean, sample standard deviation and whether every score is 0 or 1
    (for ``with_mean_ci``)."""
    cond, params = f.where(level="linked")
    return _df(
        con,
        f"""
        SELECT metric, count(score) AS scores, avg(score) AS mean_score, stddev_samp(score) AS sd,
               bool_and(score IN (0, 1)) AS binary
        FROM quality WHERE {cond} GROUP BY 1 ORDER BY 1
        """,
        params,
    )


def quality_over_time(con, f: Filters, bucket_s: int) -> pd.DataFrame:
    cond, params = f.where(level="linked")
    return _df(
        con,
        f"""
        SELECT {_bucket(bucket_s)} AS bucket, metric, count(score) AS scores, avg(score) AS mean_score
        FROM quality WHERE {cond} GROUP BY 1, 2 ORDER BY 1, 2
        """,
        params,
    )


def quality_by_variant(con, f: Filters) -> pd.DataFrame:
    """Per arm (variant, model, quantization of the trace) and metric: scores, mean, sd, binary."""
    cond, params = f.where("q.time", "q.service_name", level="linked.q.")
    return _df(
        con,
        f"""
        SELECT coalesce(t.variant, '(none)') AS variant, coalesce(t.model, '(none)') AS model,
               coalesce(t.quantization, '(none)') AS quantization, q.metric,
               count(q.score) AS scores, avg(q.score) AS mean_score, stddev_samp(q.score) AS sd,
               bool_and(q.score IN (0, 1)) AS binary
        FROM quality q JOIN trace_rows t USING (trace_id) WHERE {cond} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        """,
        params,
    )


def pii_counts(con, f: Filters) -> pd.DataFrame:
    """Entities found by redaction: content.pii is a JSON object entity type -> count."""
    cond, params = f.where(level="linked")
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


GUARDRAIL_OUTCOME = _attr("ragtrail.guardrail.outcome")
# Outcomes that let the text through; any other outcome is a trigger.
GUARDRAIL_PASS = ("pass", "passed", "allow", "allowed", "ok")
# Triggers that stop the request (the user gets a refusal instead of an answer).
GUARDRAIL_REFUSAL = ("refused", "refuse", "blocked", "block", "deny", "denied")


def guardrail_outcomes(con, f: Filters) -> pd.DataFrame:
    """Guardrail spans per direction, outcome and reason (ragtrail.guardrail.* attributes)."""
    cond, params = f.where()
    return _df(
        con,
        f"""
        SELECT coalesce({_attr("ragtrail.guardrail.direction")}, '(unknown)') AS direction,
               coalesce({GUARDRAIL_OUTCOME}, '(unknown)') AS outcome,
               coalesce({_attr("ragtrail.guardrail.reason")}, '') AS reason,
               count(*) AS checks
        FROM spans WHERE {cond} AND stage = 'guardrail' GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3
        """,
        params,
    )


def safety_over_time(con, f: Filters, bucket_s: int) -> pd.DataFrame:
    """Per bucket: requests (root spans), guardrail triggers (any outcome but a pass) and refusals."""
    cond, params = f.where()
    passes, refusals = _marks(GUARDRAIL_PASS), _marks(GUARDRAIL_REFUSAL)
    return _df(
        con,
        f"""
        SELECT {_bucket(bucket_s)} AS bucket, count(*) FILTER (WHERE parent_span_id IS NULL) AS requests,
               count(*) FILTER (WHERE stage = 'guardrail' AND lower({GUARDRAIL_OUTCOME}) NOT IN ({passes}))
                   AS triggers,
               count(*) FILTER (WHERE stage = 'guardrail' AND lower({GUARDRAIL_OUTCOME}) IN ({refusals}))
                   AS refusals
        FROM spans WHERE {cond} AND (stage = 'guardrail' OR parent_span_id IS NULL) GROUP BY 1 ORDER BY 1
        """,
        [*GUARDRAIL_PASS, *GUARDRAIL_REFUSAL, *params],
    )


def requests_per_user(con, f: Filters, limit: int = 20) -> pd.DataFrame:
    """The busiest users (pseudonyms once redaction is on): requests, their rate over the user's
    active period (at least a minute), errors, rate-limited requests, first and last seen."""
    cond, params = f.where(level="traces")
    return _df(
        con,
        f"""
        SELECT user_id, count(*) AS requests,
               count(*) * 60.0 / greatest(60, (epoch_us(max(time)) - epoch_us(min(time))) / 1e6)
                   AS requests_per_min,
               count(*) FILTER (WHERE status = 'ERROR') AS errors,
               min(time) AS first_seen, max(time) AS last_seen
        FROM trace_rows WHERE {cond} AND user_id IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?
        """,
        [*params, int(limit)],
    )


# --- variants ------------------------------------------------------------------------------------

Z95 = 1.959963984540054


def variants(con, f: Filters) -> pd.DataFrame:
    """Per arm (variant, generation model, quantization): requests, latency with a 95% CI on p95,
    error rate, tokens (for cost) and the groundedness / citation accuracy of scored requests.

    The p95 interval is distribution-free: the order statistics at ranks n*0.95 -/+ z*sqrt(n*0.95*0.05)
    (normal approximation to the binomial); p95_hi is NULL when that rank is beyond the sample.
    """
    cond, params = f.where(level="traces")
    return _df(
        con,
        f"""
        WITH t AS (
            SELECT coalesce(variant, '(none)') AS variant, coalesce(model, '(none)') AS model,
                   coalesce(quantization, '(none)') AS quantization, duration_ms, status,
                   input_tokens, output_tokens
            FROM trace_rows WHERE {cond}
        ),
        arms AS (
            -- each arm's sorted durations, indexed by rank below (cheaper than a window's sort)
            SELECT variant, model, quantization, count(*) AS n,
                   quantile_cont(duration_ms, 0.50) AS p50_ms, quantile_cont(duration_ms, 0.95) AS p95_ms,
                   list_sort(list(duration_ms), 'ASC', 'NULLS LAST') AS sorted,
                   avg((status = 'ERROR')::INT) AS error_rate,
                   sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
            FROM t GROUP BY 1, 2, 3
        ),
        ranks AS (
            SELECT *, greatest(1, floor(n * 0.95 - {Z95} * sqrt(n * 0.0475)))::BIGINT AS lo_rank,
                   (ceil(n * 0.95 + {Z95} * sqrt(n * 0.0475)) + 1)::BIGINT AS hi_rank
            FROM arms
        )
        SELECT variant, model, quantization, n AS requests, p50_ms, p95_ms,
               list_min(list_slice(sorted, lo_rank, n)) AS p95_lo,
               CASE WHEN n >= hi_rank THEN list_max(list_slice(sorted, 1, hi_rank)) END AS p95_hi,
               error_rate, input_tokens, output_tokens
        FROM ranks ORDER BY 1, 2, 3
        """,
        params,
    )


def t_quantile_975(df: int) -> float:
    """Student's t 97.5% quantile (two-sided 95%), Cornish-Fisher expansion; exact for df 1-4."""
    if df <= 0:
        return float("nan")
    exact = {1: 12.7062047, 2: 4.30265273, 3: 3.18244631, 4: 2.77644511}
    if df in exact:
        return exact[df]
    z = Z95
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def with_mean_ci(table: pd.DataFrame, n_col: str = "scores", mean_col: str = "mean_score") -> pd.DataFrame:
    """Add ``{mean}_lo`` / ``{mean}_hi``, 95% intervals of the mean: Wilson for 0/1 scores
    (``binary``: pass/fail metrics, thumbs), Student's t from ``sd`` for the rest."""
    out = table.copy()
    bounds = []
    for n, mean, sd, binary in zip(out[n_col], out[mean_col], out["sd"], out["binary"], strict=True):
        if binary:
            bounds.append(wilson_interval(round(mean * n), int(n)))
        elif n > 1 and pd.notna(sd):
            half = t_quantile_975(int(n) - 1) * sd / n**0.5
            bounds.append((mean - half, mean + half))
        else:
            bounds.append((float("nan"), float("nan")))
    out[f"{mean_col}_lo"] = [b[0] for b in bounds]
    out[f"{mean_col}_hi"] = [b[1] for b in bounds]
    return out


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
    con,
    f: Filters,
    *,
    trace_id: str = "",
    user_id: str = "",
    doc_id: str = "",
    doc_version: str = "",
    limit: int = 200,
) -> pd.DataFrame:
    """Answered requests, newest first. With ``doc_id`` (and optionally ``doc_version``): the
    answers that used that document, with how they used it (doc_use: retrieve, rerank, cite) and
    the versions they saw."""
    cond, params = f.where("t.time", "t.service_name", "traces.t.")
    if trace_id.strip():
        cond += " AND t.trace_id = ?"
        params.append(trace_id.strip().lower())
    if user_id.strip():
        cond += " AND t.user_id = ?"
        params.append(user_id.strip())
    join, doc_cols = "", ""
    if doc_id.strip():
        # A version selects the traces that saw it; doc_use still lists every use of the document
        # there (citations carry no version).
        having, doc_params = "", [doc_id.strip()]
        if doc_version.strip():
            having = "HAVING bool_or(doc_version = ?)"
            doc_params.append(doc_version.strip())
        join = f"""JOIN (
            SELECT trace_id, string_agg(DISTINCT stage, ', ' ORDER BY stage) AS doc_use,
                   string_agg(DISTINCT doc_version, ', ' ORDER BY doc_version) AS doc_versions
            FROM documents WHERE doc_id = ? GROUP BY 1 {having}
        ) d USING (trace_id)"""
        doc_cols = ", d.doc_use, d.doc_versions"
        params = doc_params + params
    return _df(
        con,
        f"""
        SELECT t.trace_id, t.time, t.user_id, t.service_name, t.status, t.model, t.prompt_version,
               t.variant, t.duration_ms, t.groundedness{doc_cols}
        FROM traces t {join} WHERE {cond} ORDER BY t.time DESC LIMIT ?
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


def trace_guardrails(con, trace_id: str) -> pd.DataFrame:
    """One trace's guardrail checks: direction, outcome, reason (ragtrail.guardrail.* attributes)."""
    return _df(
        con,
        f"""
        SELECT time, {_attr("ragtrail.guardrail.direction")} AS direction, {GUARDRAIL_OUTCOME} AS outcome,
               {_attr("ragtrail.guardrail.reason")} AS reason, name, status, span_id
        FROM spans WHERE trace_id = ? AND stage = 'guardrail' ORDER BY time
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
