"""Streamlit dashboard over store/ (read-only)."""
