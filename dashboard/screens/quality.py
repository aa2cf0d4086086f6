"""Quality & safety: evaluation scores over time and by variant, guardrail triggers and refusals,
PII entities found by redaction, per-user request rates."""

import plotly.express as px
import streamlit as st

from ragtrail.dashboard import widgets as w
from ragtrail.store import queries

f, bucket = w.sidebar()
st.title("Quality & safety")

st.subheader("Scores")
summary = queries.with_mean_ci(w.load("quality_summary", f))
if summary.empty:
    st.info(
        "No scores yet: the `quality` table has no rows in this range. The collector scores "
        "groundedness and citation accuracy a few seconds after an answer is stored; evaluator "
        "spans, `gen_ai.evaluation.result` events and user feedback add their own."
    )
else:
    cols = st.columns(len(summary))
    for col, row in zip(cols, summary.itertuples(), strict=True):
        col.metric(
            f"Mean {row.metric}",
            f"{row.mean_score:.3f}",
            help=f"95% interval {row.mean_score_lo:.3f} – {row.mean_score_hi:.3f} "
            f"({'Wilson' if row.binary else 't'}), n = {row.scores:,}",
        )
    st.dataframe(summary, hide_index=True, key="quality_summary")
    series = w.load("quality_over_time", f, bucket)
    st.plotly_chart(
        px.line(series, x="bucket", y="mean_score", color="metric", title="Mean score over time"),
        key="scores",
    )
    by_variant = queries.with_mean_ci(w.load("quality_by_variant", f))
    by_variant["arm"] = by_variant["variant"] + " / " + by_variant["model"]
    by_variant["ci_plus"] = by_variant["mean_score_hi"] - by_variant["mean_score"]
    by_variant["ci_minus"] = by_variant["mean_score"] - by_variant["mean_score_lo"]
    st.plotly_chart(
        px.bar(
            by_variant, x="metric", y="mean_score", color="arm", barmode="group",
            error_y="ci_plus", error_y_minus="ci_minus", title="Mean score by variant (95% CI)",
        ),
        key="by_variant_chart",
    )  # fmt: skip
    st.dataframe(by_variant.drop(columns=["ci_plus", "ci_minus"]), hide_index=True, key="by_variant")

st.subheader("Guardrails and refusals")
guard = w.load("guardrail_outcomes", f)
safety = w.load("safety_over_time", f, bucket)
if guard.empty:
    st.info("No guardrail spans in this time range.")
else:
    requests = int(safety["requests"].sum())
    refusals, triggers = int(safety["refusals"].sum()), int(safety["triggers"].sum())
    cols = st.columns(3)
    cols[0].metric("Guardrail triggers", f"{triggers:,}", help="guardrail spans whose outcome is not a pass")
    cols[1].metric("Refusals", f"{refusals:,}", help="guardrail outcome refused / blocked")
    cols[2].metric(
        "Refusal rate", w.fmt_pct(refusals / requests if requests else None), help=f"of {requests:,} requests"
    )
    left, right = st.columns(2)
    left.plotly_chart(
        px.bar(
            safety, x="bucket", y=["triggers", "refusals"], barmode="group", title="Triggers and refusals"
        ),
        key="safety",
    )
    right.dataframe(guard, hide_index=True, key="guardrails")

st.subheader("PII found by redaction")
pii = w.load("pii_counts", f)
if pii.empty:
    st.info("No PII entities recorded in this time range (or redaction is off).")
else:
    st.metric("PII entities redacted", f"{int(pii['count'].sum()):,}")
    st.plotly_chart(px.bar(pii, x="entity", y="count", title="Entities by type"), key="pii")

st.subheader("Busiest users (pseudonyms)")
st.caption("requests_per_min: requests over the user's active period in the range (at least one minute).")
st.dataframe(w.load("requests_per_user", f, 20), hide_index=True, key="users")
