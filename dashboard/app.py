"""The dashboard entry point: `ragtrail dashboard` runs `streamlit run` on this file.

The store to read comes from the RAGTRAIL_DATA environment variable; each page is one file in
screens/ and renders the shared sidebar (widgets.sidebar) itself. The folder is deliberately not
named pages/: Streamlit serves a pages/ folder beside the entry script as separate pages (its
legacy multipage mode, in force until this file first calls st.navigation), so a URL such as
/audit would run that page's file directly and skip the login below. When the CLI exposes the dashboard
beyond loopback it sets login.LOGIN_ENV, and until the session has logged in the navigation holds
only the login page: no other page (and no query) runs, whatever URL is asked for.
"""

import os
import time
from pathlib import Path

import streamlit as st

from ragtrail.dashboard import login

PAGES = Path(__file__).resolve().parent / "screens"
FAILED_LOGIN_DELAY_S = 1.0  # slows password guessing


def login_page() -> None:
    st.title("ragtrail")
    with st.form("login"):
        password = st.text_input("Password", type="password", key="password")
        submitted = st.form_submit_button("Log in")
    if submitted:
        if login.check(password, os.environ[login.LOGIN_ENV]):
            st.session_state["authenticated"] = True
            st.rerun()
        time.sleep(FAILED_LOGIN_DELAY_S)
        st.error("Wrong password.")


st.set_page_config(page_title="ragtrail", layout="wide")
if os.environ.get(login.LOGIN_ENV) and not st.session_state.get("authenticated"):
    page = st.navigation([st.Page(login_page, title="Log in")], position="hidden")
else:
    page = st.navigation(
        [
            st.Page(PAGES / "overview.py", title="Overview", default=True),
            st.Page(PAGES / "latency.py", title="Latency"),
            st.Page(PAGES / "caches.py", title="Caches"),
            st.Page(PAGES / "gpu.py", title="GPU & serving"),
            st.Page(PAGES / "quality.py", title="Quality & safety"),
            st.Page(PAGES / "variants.py", title="Variants"),
            st.Page(PAGES / "audit.py", title="Audit"),
            st.Page(PAGES / "sql.py", title="SQL"),
        ]
    )
    if os.environ.get(login.LOGIN_ENV) and st.sidebar.button("Log out", key="logout"):
        st.session_state["authenticated"] = False
        st.rerun()
page.run()
