"""Overview: request rate, error rate and end-to-end latency percentiles."""

import plotly.express as px
import streamlit as st

from ragtrail.dashboard import widgets as w

f, bucket = w.sidebar()
st.title("Overview")
ov = w.load("overview", f).iloc[0]
if not ov["requests"]:
    st.info("No traces in this time range yet.")
    st.stop()
cols = st.columns(6)
cols[0].metric("Requests", f"{int(ov['requests']):,}")
cols[1].metric("Request rate", f"{ov['rate_per_s']:.2f}/s")
cols[2].metric("Error rate", w.fmt_pct(ov["error_rate"]))
cols[3].metric("p50", w.fmt_ms(ov["p50_ms"]))
cols[4].metric("p95", w.fmt_ms(ov["p95_ms"]))
cols[5].metric("p99", w.fmt_ms(ov["p99_ms"]))
series = w.load("overview_over_time", f, bucket)
st.plotly_chart(
    px.line(series, x="bucket", y=["p50_ms", "p95_ms", "p99_ms"], title="End-to-end latency (ms)"),
    key="latency",
)
left, right = st.columns(2)
left.plotly_chart(px.bar(series, x="bucket", y="rate_per_s", title="Requests per second"), key="rate")
right.plotly_chart(px.line(series, x="bucket", y="error_rate", title="Error rate"), key="errors")
