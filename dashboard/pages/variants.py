"""Variants: canary vs control and quantization arms side by side."""

import plotly.express as px
import streamlit as st

from ragtrail.dashboard import widgets as w
from ragtrail.store import queries

f, _ = w.sidebar()
st.title("Variants")
table = queries.with_error_ci(w.load("variants", f))
if table.empty:
    st.info("No traces in this time range yet.")
    st.stop()
st.caption("error_rate_lo / error_rate_hi: 95% Wilson interval; requests is the sample size.")
st.dataframe(table, hide_index=True, key="variants")
table["arm"] = table["variant"] + " / " + table["quantization"]
left, right = st.columns(2)
left.plotly_chart(px.bar(table, x="arm", y="p95_ms", title="p95 latency (ms)"), key="p95")
table["ci_plus"] = table["error_rate_hi"] - table["error_rate"]
table["ci_minus"] = table["error_rate"] - table["error_rate_lo"]
right.plotly_chart(
    px.bar(
        table,
        x="arm",
        y="error_rate",
        error_y="ci_plus",
        error_y_minus="ci_minus",
        title="Error rate (95% CI)",
    ),
    key="error_rate",
)
