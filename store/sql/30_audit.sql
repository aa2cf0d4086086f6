-- audit: one row per answered request (a trace that holds a question or an answer), with what the
-- answer was based on (shared/DESIGN.md "SQL views"). question = the earliest prompt text of the
-- trace (the root's input, or the input guardrail's); answer = the response text of the latest-starting
-- span that has one (the same rule store/quality.py scores). Document lists are distinct ids in order
-- of first use; doc_versions pairs them as "id@version". guardrail = 'refused' (or the first non-pass
-- outcome) when any guardrail span did not pass, 'pass' when all passed, NULL without guardrails.
CREATE OR REPLACE VIEW audit AS
WITH texts AS (
    SELECT
        trace_id,
        arg_min(text, (time, seq)) FILTER (WHERE role = 'prompt') AS question,
        arg_max(text, (time, seq)) FILTER (WHERE role = 'response') AS answer,
        count(*) FILTER (WHERE redaction = 'failed') AS redaction_failures,
        list(pii) FILTER (WHERE pii IS NOT NULL AND pii NOT IN ('', '{}', 'null')) AS pii_maps
    FROM content
    WHERE role IN ('prompt', 'response', 'document', 'system', 'tool')
    GROUP BY trace_id
    HAVING question IS NOT NULL OR answer IS NOT NULL
),
pii AS (
    SELECT trace_id, sum(CAST(json_extract(m, '$."' || k || '"') AS BIGINT)) AS n, k
    FROM (SELECT trace_id, m, unnest(json_keys(m)) AS k FROM (SELECT trace_id, unnest(pii_maps) AS m FROM texts))
    GROUP BY trace_id, k
),
pii_per_trace AS (
    SELECT trace_id, CAST(sum(n) AS BIGINT) AS pii_redacted,
           CAST(to_json(map(list(k ORDER BY k), list(n ORDER BY k))) AS VARCHAR) AS pii
    FROM pii GROUP BY trace_id
),
docs AS (
    SELECT
        trace_id,
        list(doc_id ORDER BY first_time, doc_id) FILTER (WHERE used_in_context) AS retrieved_doc_ids,
        list(doc_id ORDER BY first_cite, doc_id) FILTER (WHERE cited) AS cited_doc_ids,
        list(doc_id || '@' || doc_version ORDER BY doc_id) FILTER (WHERE doc_version IS NOT NULL)
            AS doc_versions
    FROM (
        SELECT trace_id, doc_id, min(time) AS first_time,
               min(rank) FILTER (WHERE stage = 'cite') AS first_cite,
               bool_or(stage IN ('retrieve', 'rerank')) AS used_in_context,
               bool_or(stage = 'cite') AS cited,
               max(doc_version) AS doc_version
        FROM documents WHERE doc_id IS NOT NULL GROUP BY trace_id, doc_id
    )
    GROUP BY trace_id
),
verdicts AS (
    SELECT
        trace_id,
        CASE WHEN bool_and(score >= 1) FILTER (WHERE metric = 'guardrail') THEN 'pass'
             ELSE arg_min(label, time) FILTER (WHERE metric = 'guardrail' AND score < 1) END AS guardrail,
        avg(score) FILTER (WHERE metric = 'user_feedback') AS feedback
    FROM quality GROUP BY trace_id
)
SELECT
    t.trace_id, t.time, t.service_name, t.user_id, t.session_id, x.question, x.answer, t.model,
    t.prompt_version, t.variant, t.route, t.status,
    coalesce(d.retrieved_doc_ids, []) AS retrieved_doc_ids,
    coalesce(d.cited_doc_ids, []) AS cited_doc_ids,
    coalesce(d.doc_versions, []) AS doc_versions,
    v.guardrail, coalesce(p.pii_redacted, 0) AS pii_redacted, coalesce(p.pii, '{}') AS pii,
    x.redaction_failures, t.groundedness, t.citation_accuracy, v.feedback
FROM texts x
JOIN traces t USING (trace_id)
LEFT JOIN docs d USING (trace_id)
LEFT JOIN verdicts v USING (trace_id)
LEFT JOIN pii_per_trace p USING (trace_id);
