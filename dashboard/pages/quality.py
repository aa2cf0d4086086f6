"""Quality & safety: evaluation scores over time and PII entities found by redaction."""

import plotly.express as px
import streamlit as st

from ragtrail.dashboard import widgets as w

f, bucket = w.sidebar()
st.title("Quality & safety")
summary = w.load("quality_summary", f)
st.subheader("Scores")
if summary.empty:
    st.info("No quality scores in this time range.")
else:
    st.dataframe(summary, hide_index=True, key="quality_summary")
    series = w.load("quality_over_time", f, bucket)
    st.plotly_chart(
        px.line(series, x="bucket", y="mean_score", color="metric", title="Mean score over time"),
        key="scores",
    )
    st.dataframe(w.load("quality_by_variant", f), hide_index=True, key="by_variant")
st.subheader("PII found by redaction")
pii = w.load("pii_counts", f)
if pii.empty:
    st.info("No PII entities recorded in this time range (or redaction is off).")
else:
    st.metric("PII entities redacted", f"{int(pii['count'].sum()):,}")
    st.plotly_chart(px.bar(pii, x="entity", y="count", title="Entities by type"), key="pii")
st.subheader("Busiest users (pseudonyms)")
st.dataframe(w.load("requests_per_user", f, 20), hide_index=True, key="users")
