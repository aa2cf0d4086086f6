"""Variants: canary vs control and quantization arms side by side, with 95% intervals and sample sizes."""

import plotly.express as px
import streamlit as st

from ragtrail.dashboard import widgets as w
from ragtrail.store import queries


def arm_labels(table):
    """variant, then the model and its quantization ("no generation" for cached or refused answers)."""
    models = [
        "no generation" if m == "(none)" else f"{m} {q}"
        for m, q in zip(table["model"], table["quantization"], strict=True)
    ]
    return [f"{v}<br>{m}" for v, m in zip(table["variant"], models, strict=True)]


f, _ = w.sidebar()
st.title("Variants")
table = queries.with_error_ci(w.load("variants", f))
if table.empty:
    st.info("No traces in this time range yet.")
    st.stop()
table = queries.with_cost(table, w.settings().get("prices"))
table["cost_per_1k_requests"] = 1000 * table["cost"] / table["requests"]
st.caption(
    "One arm per variant, generation model and quantization ((none): no generation, e.g. a cached answer). "
    "requests is the sample size. p95_lo / p95_hi: 95% distribution-free interval of p95 (order statistics; "
    "empty when the sample is too small for an upper bound). error_rate_lo / _hi: 95% Wilson interval. "
    "Cost: tokens x [prices] in ragtrail.toml."
)
st.dataframe(table, hide_index=True, key="variants")
table["arm"] = arm_labels(table)
# Without an upper bound the bar shows the lower side only.
table["p95_plus"] = (table["p95_hi"] - table["p95_ms"]).fillna(0)
table["p95_minus"] = table["p95_ms"] - table["p95_lo"]
table["ci_plus"] = table["error_rate_hi"] - table["error_rate"]
table["ci_minus"] = table["error_rate"] - table["error_rate_lo"]
left, right = st.columns(2)
left.plotly_chart(
    px.bar(table, x="arm", y="p95_ms", error_y="p95_plus", error_y_minus="p95_minus",
           hover_data=["requests"], title="p95 latency (ms, 95% CI)"),
    key="p95",
)  # fmt: skip
right.plotly_chart(
    px.bar(table, x="arm", y="error_rate", error_y="ci_plus", error_y_minus="ci_minus",
           hover_data=["requests"], title="Error rate (95% Wilson CI)"),
    key="error_rate",
)  # fmt: skip
st.plotly_chart(
    px.bar(
        table, x="arm", y="cost_per_1k_requests", hover_data=["requests"], title="Cost per 1,000 requests"
    ),
    key="cost",
)
st.subheader("Quality by arm")
quality = queries.with_mean_ci(w.load("quality_by_variant", f))
if quality.empty:
    st.info("No scores yet: groundedness and citation accuracy appear here once answers are scored.")
else:
    st.caption(
        "mean_score_lo / _hi: 95% interval of the mean (Wilson for 0/1 scores, else Student's t); "
        "scores is the sample size."
    )
    st.dataframe(quality, hide_index=True, key="quality")
    quality["arm"] = arm_labels(quality)
    quality["ci_plus"] = quality["mean_score_hi"] - quality["mean_score"]
    quality["ci_minus"] = quality["mean_score"] - quality["mean_score_lo"]
    st.plotly_chart(
        px.bar(quality, x="metric", y="mean_score", color="arm", barmode="group", error_y="ci_plus",
               error_y_minus="ci_minus", hover_data=["scores"], title="Mean score (95% CI)"),
        key="quality_chart",
    )  # fmt: skip
