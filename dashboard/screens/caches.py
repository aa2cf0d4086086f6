"""Caches: hit rate per layer over time, misses by cause, and what hits save (latency, tokens)."""

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

st.subheader("Misses by cause")
st.caption(
    "`ragtrail.cache.miss_reason`: cold (never stored, flushed or evicted), ttl (expired), "
    "version (stored for an older prompt or corpus version), bypass (not cacheable, e.g. personal data)."
)
misses = w.load("cache_misses_by_reason", f)
# One colour per cause on both charts, whatever order the causes first appear in.
colours = dict(
    zip(["cold", "ttl", "version", "bypass", "unknown"], px.colors.qualitative.Plotly, strict=False)
)
left, right = st.columns(2)
left.plotly_chart(
    px.bar(
        misses,
        x="cache_layer",
        y="misses",
        color="reason",
        color_discrete_map=colours,
        title="Misses per layer by cause",
    ),
    key="misses_by_reason",
)
miss_series = w.load("cache_misses_over_time", f, bucket)
right.plotly_chart(
    px.bar(
        miss_series,
        x="bucket",
        y="misses",
        color="reason",
        color_discrete_map=colours,
        title="Misses over time by cause",
    ),
    key="misses_over_time",
)

st.subheader("Savings")
savings = w.load("cache_savings", f)
cols = st.columns(len(savings) + 1)
for col, row in zip(cols, savings.itertuples(), strict=False):
    col.metric(
        f"{row.cache_layer} time saved",
        w.fmt_s(row.saved_ms),
        help=f"{row.hits:,} hits x (median {w.fmt_ms(row.miss_median_ms)} on a miss"
        f" - {w.fmt_ms(row.hit_median_ms)} on a hit)",
    )
tokens = w.load("cached_tokens", f)
cols[-1].metric(
    "KV / prefix cache tokens",
    w.fmt_num(tokens["cached_tokens"].sum()),
    help="prompt tokens the serving engine read from its prefix / KV cache (cache_read_tokens)",
)
st.caption(
    "Estimates from requests that did and did not hit at each layer: time saved = hits x (median request "
    "latency on a miss - on a hit); tokens saved = hits x (mean tokens of a miss request - of a hit request)."
)
st.dataframe(savings, hide_index=True, key="savings")
st.plotly_chart(
    px.bar(
        savings.melt("cache_layer", ["hit_median_ms", "miss_median_ms"], "outcome", "median_ms"),
        x="cache_layer",
        y="median_ms",
        color="outcome",
        barmode="group",
        title="Median request latency: hit vs miss (ms)",
    ),
    key="savings_latency",
)
st.dataframe(tokens, hide_index=True, key="cached_tokens")
