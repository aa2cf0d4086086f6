"""Caches: hit rate per cache layer, overall and over time."""

import plotly.express as px
import streamlit as st

from ragtrail.dashboard import widgets as w

f, bucket = w.sidebar()
st.title("Caches")
summary = w.load("cache_summary", f)
if summary.empty:
    st.info("No cache lookups in this time range yet.")
    st.stop()
cols = st.columns(len(summary))
for col, row in zip(cols, summary.itertuples(), strict=True):
    col.metric(f"{row.cache_layer} hit rate", w.fmt_pct(row.hit_rate), help=f"{row.lookups:,} lookups")
st.dataframe(summary, hide_index=True, key="cache_summary")
series = w.load("cache_hit_rate_over_time", f, bucket)
st.plotly_chart(
    px.line(series, x="bucket", y="hit_rate", color="cache_layer", title="Hit rate per layer"), key="hit_rate"
)
