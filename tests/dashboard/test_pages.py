"""Every dashboard page through streamlit's AppTest over a store filled by a seeded demo run.

Each page must render without an exception, and the figures it shows must equal SQL computed
independently here over the store's read-only connection.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ragtrail.dashboard import widgets
from ragtrail.store import queries

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
PAGES = sorted(p.stem for p in (DASHBOARD / "pages").glob("*.py") if p.stem != "__init__")


@pytest.fixture
def page(demo_store, monkeypatch):
    monkeypatch.setenv(widgets.DATA_ENV, str(demo_store.data_dir))

    def run(name: str) -> AppTest:
        path = DASHBOARD / ("app.py" if name == "app" else f"pages/{name}.py")
        at = AppTest.from_file(str(path), default_timeout=30)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        return at

    yield run
    widgets.st.cache_data.clear()


# Dataframes are found by position (AppTest keeps no key on a non-selectable st.dataframe).
def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_every_page_is_covered():
    assert set(PAGES) == {"overview", "latency", "caches", "gpu", "quality", "variants", "audit", "sql"}


@pytest.mark.parametrize("name", ["app", *PAGES])
def test_page_renders(page, name):
    page(name)


def test_overview_figures_match_sql(page, demo_store):
    at = page("overview")
    requests, error_rate, p95 = demo_store.sql(
        "SELECT count(*), avg((status = 'ERROR')::INT), quantile_cont(duration_ms, 0.95) FROM traces"
    )[0]
    assert requests > 100
    assert metric(at, "Requests") == f"{requests:,}"
    assert metric(at, "Error rate") == f"{100 * error_rate:.2f}%"
    assert metric(at, "p95") == f"{p95:,.0f} ms"
    assert len(at.get("plotly_chart")) == 3


def test_overview_slo_and_cost_match_sql(page, demo_store):
    at = page("overview")  # ragtrail.toml: availability 0.98, prices 0.5 / 1.5 per 1M tokens
    error_rate = demo_store.scalar("SELECT avg((status = 'ERROR')::INT) FROM traces")
    assert metric(at, "Error budget remaining") == f"{100 * (1 - error_rate / 0.02):.2f}%"
    burn_5m = demo_store.scalar(
        "SELECT avg((status = 'ERROR')::INT) FROM traces "
        "WHERE time > (SELECT max(time) FROM traces) - INTERVAL 5 MINUTE"
    )
    assert metric(at, "Burn rate 5m") == f"{burn_5m / 0.02:.2f}x"
    tokens_in, tokens_out = demo_store.sql(
        "SELECT sum(input_tokens), sum(output_tokens) FROM spans WHERE model IS NOT NULL"
    )[0]
    assert tokens_in > 0
    assert metric(at, "Cost (tokens x [prices])") == f"${(tokens_in * 0.5 + tokens_out * 1.5) / 1e6:,.4f}"
    per_service = at.dataframe[0].value.set_index("service_name")
    assert per_service.loc["search-rag", "p95_target_ms"] == 1000
    assert per_service.loc["support-rag", "p95_target_ms"] == 3000


def test_service_filter_changes_the_overview(page, demo_store):
    at = page("overview")
    at.sidebar.multiselect(key="services").select("search-rag").run()
    assert not at.exception
    n = demo_store.scalar("SELECT count(*) FROM traces WHERE service_name = 'search-rag'")
    assert 0 < n < demo_store.scalar("SELECT count(*) FROM traces")
    assert metric(at, "Requests") == f"{n:,}"


def test_variant_filter_selects_whole_traces_on_span_pages(page, demo_store):
    at = page("caches")
    at.sidebar.multiselect(key="variants").select("canary").run()
    assert not at.exception
    rate = demo_store.scalar(
        "SELECT avg(cache_hit::INT) FROM spans WHERE cache_layer = 'context' AND trace_id IN "
        "(SELECT trace_id FROM spans WHERE variant = 'canary')"
    )
    assert metric(at, "context hit rate") == f"{100 * rate:.2f}%"


def test_environment_filter(page, demo_store):
    at = page("overview")
    at.sidebar.multiselect(key="environments").select("demo").run()
    assert metric(at, "Requests") == f"{demo_store.scalar('SELECT count(*) FROM traces'):,}"


def test_quality_page_lists_the_busiest_users(page, demo_store):
    at = page("quality")
    users = at.dataframe[-1].value
    expected = demo_store.sql(
        "SELECT user_id, count(*) FROM traces WHERE user_id IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20"
    )
    assert list(zip(users["user_id"], users["requests"], strict=True)) == expected


def test_wilson_interval():
    lo, hi = queries.wilson_interval(0, 50)
    assert lo == 0 and 0.05 < hi < 0.08  # zero errors in 50 still leaves up to ~7%
    lo, hi = queries.wilson_interval(50, 100)
    assert lo == pytest.approx(0.404, abs=1e-3) and hi == pytest.approx(0.596, abs=1e-3)


def test_latency_stages_slowest_and_waterfall(page, demo_store):
    at = page("latency")
    stages = demo_store.scalar("SELECT count(DISTINCT stage) FROM spans")
    assert len(at.dataframe[0].value) == stages
    slowest_id, slowest_ms = demo_store.sql(
        "SELECT trace_id, duration_ms FROM traces ORDER BY 2 DESC LIMIT 1"
    )[0]
    slowest = at.dataframe[1].value
    assert slowest["trace_id"].iloc[0] == slowest_id
    assert slowest["duration_ms"].iloc[0] == pytest.approx(slowest_ms)
    assert at.text_input(key="trace_id").value == slowest_id  # the waterfall opens on the slowest trace
    assert at.get("plotly_chart")  # stage chart and waterfall


def test_cache_hit_rates_match_sql(page, demo_store):
    at = page("caches")
    rates = dict(
        demo_store.sql(
            "SELECT cache_layer, avg(cache_hit::INT) FROM spans "
            "WHERE cache_layer IS NOT NULL AND cache_hit IS NOT NULL GROUP BY 1"
        )
    )
    assert set(rates) >= {"response", "context", "embedding"}
    for layer, rate in rates.items():
        assert metric(at, f"{layer} hit rate") == f"{100 * rate:.2f}%"


def test_gpu_page_shows_every_gpu(page, demo_store):
    at = page("gpu")
    gpus = demo_store.scalar("SELECT count(DISTINCT (host, gpu_id)) FROM gpu")
    assert gpus >= 1
    assert metric(at, "GPUs") == str(gpus)
    assert len(at.dataframe[0].value) == gpus


def test_variants_match_sql(page, demo_store):
    at = page("variants")
    table = at.dataframe[0].value
    expected = demo_store.sql(
        "SELECT coalesce(variant, '(none)'), coalesce(quantization, '(none)'), count(*) FROM traces GROUP BY 1, 2"
    )
    shown = {(r.variant, r.quantization): r.requests for r in table.itertuples()}
    assert shown == {(v, q): n for v, q, n in expected}
    assert "canary" in set(table["variant"])


def test_audit_finds_the_answers_that_used_a_document(page, demo_store):
    doc_id, uses = demo_store.sql(
        "SELECT doc_id, count(DISTINCT trace_id) FROM documents GROUP BY 1 ORDER BY 2, 1 LIMIT 1"
    )[0]
    at = page("audit")
    at.text_input(key="audit_doc").input(doc_id).run()
    assert not at.exception
    found = at.dataframe[0].value
    assert len(found) == min(uses, 200)
    chosen = at.selectbox(key="audit_chosen").value
    docs = at.dataframe[1].value
    assert doc_id in set(docs["doc_id"])
    assert len(docs) == demo_store.scalar(f"SELECT count(*) FROM documents WHERE trace_id = '{chosen}'")
    assert len(at.get("download_button")) == 3  # CSV, JSONL, Parquet


def test_sql_console_runs_read_only_queries(page, demo_store):
    at = page("sql")
    at.text_area(key="sql").input("SELECT stage, count(*) AS n FROM spans GROUP BY 1 ORDER BY 1").run()
    assert not at.exception
    shown = at.dataframe[0].value
    assert list(shown.itertuples(index=False, name=None)) == demo_store.sql(
        "SELECT stage, count(*) FROM spans GROUP BY 1 ORDER BY 1"
    )
    at.text_area(key="sql").input("CREATE TABLE x AS SELECT 1").run()
    assert not at.exception
    assert "only read-only SELECT" in at.error[0].value
    at.text_area(key="sql").input("SELECT * FROM read_csv('/etc/passwd')").run()
    assert at.error  # no file access outside the store
