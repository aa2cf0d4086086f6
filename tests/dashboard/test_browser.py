"""A real browser (Playwright driving Debian's /usr/bin/chromium) on a running `ragtrail dashboard`.

Opens each page, waits for its charts or tables, asserts no Streamlit exception box and saves a
screenshot (into $RAGTRAIL_SCREENSHOTS when set, e.g. docs/screenshots, else the test's tmp dir).
Browsers are never downloaded: without /usr/bin/chromium (`apt-get install -y chromium`) this skips.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, wait_until

CHROMIUM = Path("/usr/bin/chromium")
# url path -> (title shown, what must appear once the page has run)
PAGES = {
    "": ("Overview", '[data-testid="stPlotlyChart"]'),
    "latency": ("Latency", '[data-testid="stPlotlyChart"]'),
    "caches": ("Caches", '[data-testid="stPlotlyChart"]'),
    "gpu": ("GPU & serving", '[data-testid="stPlotlyChart"]'),
    "quality": ("Quality & safety", '[data-testid="stPlotlyChart"]'),  # guardrails and PII charts
    "variants": ("Variants", '[data-testid="stPlotlyChart"]'),
    "audit": ("Audit", '[data-testid="stDataFrame"]'),
    "sql": ("SQL", '[data-testid="stPlotlyChart"]'),
}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no /usr/bin/chromium (apt-get install -y chromium); browsers are never downloaded",
)


@pytest.fixture(scope="module")
def dashboard_url(scored_store, tmp_path_factory):
    """The demo store with evaluator scores, so the quality charts show too."""
    port = free_port()
    log = (tmp_path_factory.mktemp("dashboard") / "dashboard.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragtrail.cli", "dashboard", "--data", str(scored_store), "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy():
        if proc.poll() is not None:
            raise RuntimeError(f"dashboard exited with {proc.returncode}")
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as resp:
            return resp.status == 200

    try:
        wait_until(healthy, timeout=30, what="dashboard health")
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


def test_every_page_in_a_browser(browser, dashboard_url, tmp_path):
    """One browser session walks every page through the sidebar navigation, as a person would."""
    page = browser.new_page(viewport={"width": 1400, "height": 1700})
    out = Path(os.environ.get("RAGTRAIL_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page.goto(dashboard_url)
    try:
        for path, (title, ready) in PAGES.items():
            if path:  # the overview is the landing page
                page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
                page.wait_for_url(f"{dashboard_url}/{path}", timeout=30_000)
            page.get_by_role("heading", name=title, exact=True).wait_for(timeout=40_000)
            page.locator(ready).first.wait_for(timeout=40_000)
            page.wait_for_function(
                "!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=40_000
            )  # the script run has finished
            assert page.locator('[data-testid="stException"]').count() == 0, f"exception on {title}"
            page.screenshot(path=str(out / f"{path or 'overview'}.png"))
    finally:
        page.close()


def test_login_gates_every_url(browser, demo_store, tmp_path):
    """The app as `ragtrail dashboard --host <not loopback>` runs it (LOGIN_ENV set), served on
    loopback for the test: any URL shows the login form and no data until the password is given."""
    from ragtrail.dashboard import login

    port = free_port()
    env = {
        **os.environ,
        login.LOGIN_ENV: login.digest("open sesame"),
        "RAGTRAIL_DATA": str(demo_store.data_dir),
    }
    with (tmp_path / "dashboard.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "dashboard" / "app.py"),
             "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy():
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as resp:
            return resp.status == 200

    page = browser.new_page()
    try:
        wait_until(healthy, timeout=30, what="dashboard health")
        page.goto(f"{url}/audit")
        password = page.get_by_label("Password", exact=True)
        password.wait_for(timeout=40_000)
        assert page.locator('[data-testid="stSidebarNav"]').count() == 0
        assert page.locator('[data-testid="stDataFrame"], [data-testid="stPlotlyChart"]').count() == 0
        page.goto(url)  # the landing page: a login form too (without the "page not found" dialog)
        password.wait_for(timeout=40_000)
        password.fill("guess")
        page.get_by_role("button", name="Log in").click()
        page.get_by_text("Wrong password.").wait_for(timeout=40_000)
        assert page.locator('[data-testid="stDataFrame"], [data-testid="stPlotlyChart"]').count() == 0
        password.fill("open sesame")
        page.get_by_role("button", name="Log in").click()
        page.locator('[data-testid="stSidebarNav"]').wait_for(timeout=40_000)
        page.locator('[data-testid="stMetric"], [data-testid="stDataFrame"]').first.wait_for(timeout=40_000)
        assert page.locator('[data-testid="stException"]').count() == 0
    finally:
        page.close()
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
