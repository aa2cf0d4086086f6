"""SQL: a read-only console over the views (locked connection, row and time limits)."""

import pandas as pd
import plotly.express as px
import streamlit as st

from ragtrail.dashboard import widgets as w
from ragtrail.store import db, queries

MAX_ROWS = 10_000
TIME_LIMIT_S = 15.0

w.sidebar()
st.title("SQL")
st.caption(
    "One read-only SELECT over the views: spans, traces, documents, content, metrics, gpu, logs, quality."
)
example = st.selectbox("Example", list(queries.EXAMPLE_QUERIES), key="example")
sql = st.text_area("Query", value=queries.EXAMPLE_QUERIES[example], height=140, key="sql")
if sql.strip():
    con = db.connect(w.store_uri(), locked=True)
    try:
        result = db.run_query(con, sql, max_rows=MAX_ROWS, time_limit_s=TIME_LIMIT_S)
    except db.SqlError as exc:
        st.error(str(exc))
        st.stop()
    finally:
        con.close()
    frame = pd.DataFrame(result.rows, columns=result.columns)
    if result.truncated:
        st.warning(f"showing the first {MAX_ROWS:,} rows")
    st.dataframe(frame, hide_index=True, key="result")
    numeric = [c for c in frame.columns[1:] if pd.api.types.is_numeric_dtype(frame[c])]
    if len(frame.columns) >= 2 and numeric and not frame.empty:
        st.plotly_chart(px.bar(frame, x=frame.columns[0], y=numeric[0]), key="result_chart")
