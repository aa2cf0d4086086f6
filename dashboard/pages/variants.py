"""Variants: canary vs control and quantization arms side by side."""

import plotly.express as px
import streamlit as st

from ragtrail.dashboard import widgets as w

f, _ = w.sidebar()
st.title("Variants")
table = w.load("variants", f)
if table.empty:
    st.info("No traces in this time range yet.")
    st.stop()
st.dataframe(table, hide_index=True, key="variants")
table["arm"] = table["variant"] + " / " + table["quantization"]
left, right = st.columns(2)
left.plotly_chart(px.bar(table, x="arm", y="p95_ms", title="p95 latency (ms)"), key="p95")
right.plotly_chart(px.bar(table, x="arm", y="error_rate", title="Error rate"), key="error_rate")
