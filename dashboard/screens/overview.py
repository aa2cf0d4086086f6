"""Overview: request rate, error rate and end-to-end latency percentiles."""

import pandas as pd
import plotly.express as px
import streamlit as st

from ragtrail.dashboard import widgets as w
from ragtrail.store import queries

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
slo = w.settings().get("slo")
availability, _ = queries.slo_targets(slo)
st.subheader(f"SLOs (availability target {100 * availability:g}%)")
cols = st.columns(5)
cols[0].metric("Error budget remaining", w.fmt_pct(1 - queries.burn_rate(ov["error_rate"], availability)))
windows = w.load("window_error_rates", f)
for col, row in zip(cols[1:4], windows.itertuples(), strict=True):
    label = (
        f"Burn rate {row.window_s // 3600}h" if row.window_s >= 3600 else f"Burn rate {row.window_s // 60}m"
    )
    rate = "—" if pd.isna(row.error_rate) else f"{queries.burn_rate(row.error_rate, availability):.2f}x"
    col.metric(label, rate, help=f"{row.requests:,} requests in the window ending at the newest trace")
cols[4].metric("Fallbacks", f"{int(ov['fallbacks']):,}")
per_service = w.load("slo_by_service", f)
per_service["p95_target_ms"] = [queries.slo_targets(slo, s)[1] for s in per_service["service_name"]]
per_service["p95_ok"] = per_service["p95_ms"] <= per_service["p95_target_ms"]
per_service["budget_remaining"] = [1 - queries.burn_rate(e, availability) for e in per_service["error_rate"]]
st.dataframe(per_service, hide_index=True)
st.subheader("Cost")
cost = queries.with_cost(w.load("tokens_by_model", f), w.settings().get("prices"))
st.metric("Cost (tokens x [prices])", f"${cost['cost'].sum():,.4f}")
st.dataframe(cost, hide_index=True)
series = w.load("overview_over_time", f, bucket)
st.plotly_chart(
    px.line(series, x="bucket", y=["p50_ms", "p95_ms", "p99_ms"], title="End-to-end latency (ms)"),
    key="latency",
)
left, right = st.columns(2)
left.plotly_chart(px.bar(series, x="bucket", y="rate_per_s", title="Requests per second"), key="rate")
right.plotly_chart(px.line(series, x="bucket", y="error_rate", title="Error rate"), key="errors")
