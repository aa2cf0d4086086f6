-- traces: one row per trace (shared/DESIGN.md "SQL views"), from trace_parts: the partial fold
-- of each spans file per trace, written beside it (store/trace_parts.py). A trace with one part
-- passes through as it is; only the traces that may have several (store/trace_index.py: listed in
-- the trace-split index, or with a part the index has not seen) are folded with a GROUP BY, so a
-- query pays for the few split traces rather than for every trace. Stage columns sum the durations
-- of that stage's spans; status is the root span's, or ERROR when there is no root and any span
-- failed; model is the latest generate span's; root_duration_ms is the root span's own duration
-- (the request as the service timed it; duration_ms spans every span). groundedness comes from
-- the quality table when scored.
-- trace_rows is traces without the two score columns: DuckDB keeps a LEFT JOIN even when none of
-- its columns is read, so queries that need no scores read trace_rows and skip the join.
CREATE OR REPLACE VIEW trace_rows AS
WITH unseen AS (
    SELECT p.trace_id FROM trace_parts p LEFT JOIN trace_watermarks w ON p.writer = w.writer
    WHERE w.segment IS NULL OR p.segment > w.segment
),
split AS NOT MATERIALIZED (
    SELECT trace_id FROM trace_splits UNION SELECT trace_id FROM unseen
),
single AS (
    SELECT
        trace_id, time, (epoch_us(end_time) - epoch_us(time)) / 1000.0 AS duration_ms,
        root_name, root_service, any_service, root_status, root_duration_ms, error_spans, spans,
        environment, session_id, user_id, variant, route, prompt_version, model, quantization,
        embed_ms, retrieve_ms, rerank_ms, generate_ms, guardrail_ms,
        coalesce(input_tokens, 0)::HUGEINT AS input_tokens,
        coalesce(output_tokens, 0)::HUGEINT AS output_tokens,
        coalesce(cache_read_tokens, 0)::HUGEINT AS cache_read_tokens,
        cache_hit, coalesce(fallback, false) AS fallback
    FROM trace_parts p ANTI JOIN split s ON p.trace_id = s.trace_id
    WHERE p.trace_id IS NOT NULL
),
folded AS (
    SELECT
        trace_id,
        min(time) AS time,
        (epoch_us(max(end_time)) - epoch_us(min(time))) / 1000.0 AS duration_ms,
        any_value(root_name) AS root_name,
        any_value(root_service) AS root_service,
        any_value(any_service) AS any_service,
        any_value(root_status) AS root_status,
        max(root_duration_ms) AS root_duration_ms,
        sum(error_spans)::BIGINT AS error_spans,
        sum(spans)::BIGINT AS spans,
        any_value(environment) AS environment,
        any_value(session_id) AS session_id,
        any_value(user_id) AS user_id,
        any_value(variant) AS variant,
        any_value(route) AS route,
        any_value(prompt_version) AS prompt_version,
        arg_max(model, model_time) AS model,
        arg_max(quantization, quantization_time) AS quantization,
        sum(embed_ms) AS embed_ms,
        sum(retrieve_ms) AS retrieve_ms,
        sum(rerank_ms) AS rerank_ms,
        sum(generate_ms) AS generate_ms,
        sum(guardrail_ms) AS guardrail_ms,
        coalesce(sum(input_tokens), 0) AS input_tokens,
        coalesce(sum(output_tokens), 0) AS output_tokens,
        coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
        bool_or(cache_hit) AS cache_hit,
        coalesce(bool_or(fallback), false) AS fallback
    FROM (
        SELECT * FROM trace_parts p SEMI JOIN split s ON p.trace_id = s.trace_id
        UNION ALL
        SELECT * FROM trace_parts WHERE trace_id IS NULL
    )
    GROUP BY trace_id
),
per_trace AS (
    SELECT * FROM single UNION ALL SELECT * FROM folded
)
SELECT
    p.trace_id, p.time, p.duration_ms, p.root_name,
    coalesce(p.root_service, p.any_service) AS service_name,
    coalesce(p.root_status, CASE WHEN p.error_spans > 0 THEN 'ERROR' ELSE 'UNSET' END) AS status,
    p.error_spans, p.spans, p.environment, p.session_id, p.user_id, p.variant, p.route,
    p.prompt_version, p.model, p.quantization,
    p.embed_ms, p.retrieve_ms, p.rerank_ms, p.generate_ms, p.guardrail_ms,
    p.input_tokens, p.output_tokens, p.cache_read_tokens, p.cache_hit, p.fallback,
    p.root_duration_ms
FROM per_trace p;

CREATE OR REPLACE VIEW traces AS
WITH scores AS (
    SELECT trace_id, avg(score) FILTER (WHERE metric = 'groundedness') AS groundedness,
           avg(score) FILTER (WHERE metric = 'citation_accuracy') AS citation_accuracy
    FROM quality
    GROUP BY trace_id
)
SELECT r.*, s.groundedness, s.citation_accuracy
FROM trace_rows r
LEFT JOIN scores s USING (trace_id);
