"""GPU & serving: utilization, memory, power, temperature per GPU; generate latency, queue time and
batch size against GPU utilization on one time axis."""

import plotly.express as px
import streamlit as st
from plotly.subplots import make_subplots

from ragtrail.dashboard import widgets as w

f, bucket = w.sidebar()
st.title("GPU & serving")
gpu = w.load("gpu_over_time", f)
serving = w.load("serving_over_time", f, bucket)
if gpu.empty and serving.empty:
    st.info("No GPU samples or generate spans in this time range (run `ragtrail gpu-agent`).")
    st.stop()

st.subheader("Serving against the GPUs")
util = w.load("gpu_utilization_over_time", f, bucket)
panels = [
    ("Generate latency (ms)", [("generate_p50_ms", "generate p50"), ("generate_p95_ms", "generate p95")]),
    ("Queue time (ms)", [("queue_ms", "queue mean"), ("queue_p95_ms", "queue p95")]),
    ("Batch size (mean)", [("batch_size", "batch size")]),
]
fig = make_subplots(
    rows=len(panels) + 1, cols=1, shared_xaxes=True, vertical_spacing=0.04,
    subplot_titles=[title for title, _ in panels] + ["GPU utilization (ratio)"],
)  # fmt: skip
for row, (_, lines) in enumerate(panels, start=1):
    for column, name in lines:
        fig.add_scatter(x=serving["bucket"], y=serving[column], name=name, mode="lines", row=row, col=1)
for name, g in util.groupby("gpu", sort=True):
    fig.add_scatter(x=g["bucket"], y=g["utilization"], name=name, mode="lines", row=len(panels) + 1, col=1)
fig.update_layout(height=820, legend={"orientation": "h", "y": -0.08})
st.plotly_chart(fig, key="serving")

if gpu.empty:
    st.info("No GPU samples in this time range (run `ragtrail gpu-agent`).")
    st.stop()
st.subheader("Per GPU")
latest = gpu.groupby("gpu").tail(1)
st.metric("GPUs", latest["gpu"].nunique())
st.dataframe(latest, hide_index=True, key="latest")
for column, title in [
    ("utilization", "Utilization (ratio)"),
    ("memory_used_gb", "Memory used (GB)"),
    ("power_w", "Power (W)"),
    ("temperature_c", "Temperature (°C)"),
    ("ooms", "Out-of-memory errors (cumulative)"),
]:
    st.plotly_chart(px.line(gpu, x="time", y=column, color="gpu", title=title), key=column)
