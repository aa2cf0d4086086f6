"""Latency: per-stage percentiles over time, slowest traces and one trace's waterfall."""

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from ragtrail.dashboard import widgets as w

f, bucket = w.sidebar()
st.title("Latency")
summary = w.load("stage_summary", f)
if summary.empty:
    st.info("No spans in this time range yet.")
    st.stop()
st.subheader("Per stage")
st.dataframe(summary, hide_index=True, key="stages")
over_time = w.load("stage_latency_over_time", f, bucket)
st.plotly_chart(
    px.line(over_time, x="bucket", y="p95_ms", color="stage", title="p95 span duration by stage (ms)"),
    key="stage_p95",
)
st.subheader("Slowest traces")
slowest = w.load("slowest_traces", f, 20)
st.dataframe(slowest, hide_index=True, key="slowest")
st.subheader("Trace waterfall")
default = slowest["trace_id"].iloc[0] if not slowest.empty else ""
trace_id = st.text_input("Trace id", value=default, key="trace_id")
spans = w.load_trace("trace_spans", trace_id) if trace_id else None
if spans is None or spans.empty:
    st.info("No spans for this trace id.")
else:
    labels = [
        f"{i:02d} {n} [{s}]" for i, (n, s) in enumerate(zip(spans["name"], spans["stage"], strict=True))
    ]
    fig = go.Figure(
        go.Bar(
            y=labels,
            x=spans["duration_ms"],
            base=spans["offset_ms"],
            orientation="h",
            hovertext=spans["status"],
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(
        title=f"Trace {trace_id}", xaxis_title="ms since trace start", height=120 + 28 * len(spans)
    )
    st.plotly_chart(fig, key="waterfall")
