-- traces: one row per trace, folded from its spans (shared/DESIGN.md "SQL views").
-- Stage columns sum the durations of that stage's spans; status is the root span's, or ERROR when
-- there is no root and any span failed. groundedness comes from the quality table when scored.
CREATE OR REPLACE VIEW traces AS
WITH per_trace AS (
    SELECT
        trace_id,
        min(time) AS time,
        (epoch_us(max(end_time)) - epoch_us(min(time))) / 1000.0 AS duration_ms,
        any_value(name) FILTER (WHERE parent_span_id IS NULL) AS root_name,
        any_value(service_name) FILTER (WHERE parent_span_id IS NULL) AS root_service,
        any_value(service_name) AS any_service,
        any_value(status) FILTER (WHERE parent_span_id IS NULL) AS root_status,
        bool_or(status = 'ERROR') AS any_error,
        count(*) FILTER (WHERE status = 'ERROR') AS error_spans,
        count(*) AS spans,
        any_value(environment) AS environment,
        any_value(session_id) AS session_id,
        any_value(user_id) AS user_id,
        any_value(variant) AS variant,
        any_value(route) AS route,
        any_value(prompt_version) AS prompt_version,
        arg_max(model, time) FILTER (WHERE stage = 'generate') AS model,
        arg_max(quantization, time) FILTER (WHERE stage = 'generate') AS quantization,
        sum(duration_ms) FILTER (WHERE stage = 'embed') AS embed_ms,
        sum(duration_ms) FILTER (WHERE stage = 'retrieve') AS retrieve_ms,
        sum(duration_ms) FILTER (WHERE stage = 'rerank') AS rerank_ms,
        sum(duration_ms) FILTER (WHERE stage = 'generate') AS generate_ms,
        sum(duration_ms) FILTER (WHERE stage = 'guardrail') AS guardrail_ms,
        coalesce(sum(input_tokens), 0) AS input_tokens,
        coalesce(sum(output_tokens), 0) AS output_tokens,
        coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
        bool_or(cache_hit) FILTER (WHERE cache_layer = 'response') AS cache_hit,
        coalesce(bool_or(fallback), false) AS fallback
    FROM spans
    GROUP BY trace_id
),
scores AS (
    SELECT trace_id, avg(score) FILTER (WHERE metric = 'groundedness') AS groundedness,
           avg(score) FILTER (WHERE metric = 'citation_accuracy') AS citation_accuracy
    FROM quality
    GROUP BY trace_id
)
SELECT
    p.trace_id, p.time, p.duration_ms, p.root_name,
    coalesce(p.root_service, p.any_service) AS service_name,
    coalesce(p.root_status, CASE WHEN p.any_error THEN 'ERROR' ELSE 'UNSET' END) AS status,
    p.error_spans, p.spans, p.environment, p.session_id, p.user_id, p.variant, p.route,
    p.prompt_version, p.model, p.quantization,
    p.embed_ms, p.retrieve_ms, p.rerank_ms, p.generate_ms, p.guardrail_ms,
    p.input_tokens, p.output_tokens, p.cache_read_tokens, p.cache_hit, p.fallback,
    s.groundedness, s.citation_accuracy
FROM per_trace p
LEFT JOIN scores s USING (trace_id);
