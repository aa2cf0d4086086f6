"""Audit: find answers by trace id, user pseudonym or document id; show one answer's full trail."""

import io

import streamlit as st

from ragtrail.dashboard import widgets as w

f, _ = w.sidebar()
st.title("Audit")
st.caption("The sidebar's time range and filters apply; leave a field empty to match everything.")
c1, c2, c3, c4 = st.columns([3, 2, 2, 1])
trace_id = c1.text_input("Trace id", key="audit_trace")
user_id = c2.text_input("User (pseudonym)", key="audit_user")
doc_id = c3.text_input("Document id (which answers used it)", key="audit_doc")
doc_version = c4.text_input("Version", key="audit_doc_version", disabled=not doc_id)
found = w.search(f, trace_id=trace_id, user_id=user_id, doc_id=doc_id, doc_version=doc_version)
if doc_id:
    version = f" version {doc_version}" if doc_version else ""
    st.caption(
        f"{len(found):,} answers used document {doc_id}{version} (newest first, at most 200); "
        "doc_use: retrieved, reranked into the context, cited by the answer."
    )
else:
    st.caption(f"{len(found):,} traces (newest first, at most 200)")
st.dataframe(found, hide_index=True, key="found")
if found.empty:
    st.stop()
chosen = st.selectbox("Trail of trace", found["trace_id"], key="audit_chosen")
content = w.load_trace("trace_content", chosen)
documents = w.load_trace("trace_documents", chosen)
st.subheader("Question and answer (redacted)")
for role in ("prompt", "response"):
    texts = content[content["role"] == role]["text"]
    if not texts.empty:
        st.markdown(f"**{role}**")
        st.text(texts.iloc[0])
st.subheader("Guardrails")
st.dataframe(w.load_trace("trace_guardrails", chosen), hide_index=True, key="guardrails")
st.subheader("Documents")
st.dataframe(documents, hide_index=True, key="documents")
st.subheader("All recorded content")
st.dataframe(content, hide_index=True, key="content")
d1, d2, d3 = st.columns(3)
d1.download_button("Content as CSV", content.to_csv(index=False), f"{chosen}-content.csv", key="dl_csv")
d2.download_button(
    "Content as JSONL",
    content.to_json(orient="records", lines=True, date_format="iso"),
    f"{chosen}-content.jsonl",
    key="dl_jsonl",
)
parquet = io.BytesIO()
content.to_parquet(parquet, index=False)
d3.download_button("Content as Parquet", parquet.getvalue(), f"{chosen}-content.parquet", key="dl_parquet")
