"""GPU & serving: utilization, memory, power, temperature per GPU against generate latency."""

import plotly.express as px
import streamlit as st

from ragtrail.dashboard import widgets as w

f, bucket = w.sidebar()
st.title("GPU & serving")
gpu = w.load("gpu_over_time", f)
if gpu.empty:
    st.info("No GPU samples in this time range (run `ragtrail gpu-agent`).")
    st.stop()
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
gen = w.load("generate_latency_over_time", f, bucket)
if not gen.empty:
    st.plotly_chart(
        px.line(gen, x="bucket", y=["generate_p95_ms", "queue_ms"], title="Generate p95 and queue time (ms)"),
        key="generate",
    )
