"""Shared dashboard pieces: the data directory, the sidebar filters and cached query loading."""

from __future__ import annotations

import os
from dataclasses import astuple
from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from ragtrail import config as config_mod
from ragtrail.store import db, queries
from ragtrail.store.queries import Filters

DATA_ENV = "RAGTRAIL_DATA"
TTL_S = 15
AUTO_REFRESH_S = 30  # query results are cached this long: new data shows within TTL_S seconds
RANGES: dict[str, timedelta | None] = {
    "All": None,
    "Last 15 minutes": timedelta(minutes=15),
    "Last 1 hour": timedelta(hours=1),
    "Last 6 hours": timedelta(hours=6),
    "Last 24 hours": timedelta(hours=24),
    "Last 7 days": timedelta(days=7),
}
NICE_BUCKETS_S = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 6 * 3600, 86400)


def data_dir() -> str:
    return os.environ.get(DATA_ENV, "./ragtrail-data")


def store_uri() -> str:
    """Where the Parquet lives: the data directory, or [storage] uri / $RAGTRAIL_STORAGE."""
    return config_mod.load(data_dir()).storage_uri


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _load(data: str, name: str, f: tuple, args: tuple) -> pd.DataFrame:
    con = db.connect(data)
    try:
        return getattr(queries, name)(con, Filters(*f), *args)
    finally:
        con.close()


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _load_trace(data: str, name: str, trace_id: str) -> pd.DataFrame:
    con = db.connect(data)
    try:
        return getattr(queries, name)(con, trace_id)
    finally:
        con.close()


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _meta(data: str) -> tuple[dict[str, list[str]], datetime | None, datetime | None]:
    con = db.connect(data)
    try:
        return queries.filter_values(con), *queries.time_extent(con)
    finally:
        con.close()


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _settings(data: str) -> dict:
    return config_mod.load(data).extra


def settings() -> dict:
    """The free-form ragtrail.toml sections the dashboard reads: [slo], [prices]."""
    return _settings(data_dir())


def load(name: str, f: Filters, *args) -> pd.DataFrame:
    """``queries.<name>(con, f, *args)``, cached for TTL_S seconds."""
    return _load(store_uri(), name, astuple(f), args)


def load_trace(name: str, trace_id: str) -> pd.DataFrame:
    """``queries.<name>(con, trace_id)`` (trace_spans, trace_content, trace_documents,
    trace_guardrails), cached."""
    return _load_trace(store_uri(), name, trace_id)


def search(f: Filters, **criteria) -> pd.DataFrame:
    return _search(store_uri(), astuple(f), tuple(sorted(criteria.items())))


@st.cache_data(ttl=TTL_S, show_spinner=False)
def _search(data: str, f: tuple, criteria: tuple) -> pd.DataFrame:
    con = db.connect(data)
    try:
        return queries.search_traces(con, Filters(*f), **dict(criteria))
    finally:
        con.close()


def bucket_for(start: datetime | None, end: datetime | None, points: int = 60) -> int:
    """A round bucket size giving about ``points`` points over [start, end]."""
    if start is None or end is None:
        return 60
    span_s = max(1.0, (end - start).total_seconds())
    return next((b for b in NICE_BUCKETS_S if span_s / b <= points), NICE_BUCKETS_S[-1])


def sidebar() -> tuple[Filters, int]:
    """Render the shared sidebar; returns the filters and the time-bucket size in seconds."""
    values, first, last = _meta(store_uri())
    with st.sidebar:
        st.caption(f"Store: `{data_dir()}`")
        label = st.selectbox("Time range", list(RANGES), key="range")
        chosen = st.multiselect("Service", values["service_name"], key="services", placeholder="All services")
        envs = st.multiselect("Environment", values["environment"], key="environments", placeholder="All")
        arms = st.multiselect("Variant", values["variant"], key="variants", placeholder="All")
        models = st.multiselect("Model", values["model"], key="models", placeholder="All generation models")
        routes = st.multiselect("Route", values["route"], key="routes", placeholder="All")
        if st.button("Refresh", key="refresh"):
            st.cache_data.clear()
        if st.toggle(f"Auto-refresh every {AUTO_REFRESH_S} s", key="auto_refresh"):
            _auto_refresh()
    span = RANGES[label]
    if span is None:
        start, end = None, None
        bucket = bucket_for(first, last)
    else:
        # Round "now" to the minute so cached results are reused across reruns within it.
        now = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        start, end = now - span, now
        bucket = bucket_for(start, end)
    return Filters(start, end, tuple(chosen), tuple(envs), tuple(arms), tuple(models), tuple(routes)), bucket


@st.fragment(run_every=AUTO_REFRESH_S)
def _auto_refresh() -> None:
    """Rerun the whole page every AUTO_REFRESH_S seconds (the fragment's first run is the page's own)."""
    if st.session_state.get("_refresh_armed"):
        st.cache_data.clear()
        st.rerun(scope="app")
    st.session_state["_refresh_armed"] = True


def fmt_ms(value) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:,.0f} ms"


def fmt_s(value_ms) -> str:
    return "—" if value_ms is None or pd.isna(value_ms) else f"{value_ms / 1000:,.1f} s"


def fmt_num(value) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:,.0f}"


def fmt_pct(value) -> str:
    return "—" if value is None or pd.isna(value) else f"{100 * value:.2f}%"
