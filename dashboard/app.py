"""The dashboard entry point: `ragtrail dashboard` runs `streamlit run` on this file.

The store to read comes from the RAGTRAIL_DATA environment variable; each page is one file in
pages/ and renders the shared sidebar (widgets.sidebar) itself.
"""

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="ragtrail", layout="wide")
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
page.run()
