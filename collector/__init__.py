"""OTLP collector: receive -> normalize -> redact -> commit (WAL) -> flush (Parquet)."""
