"""The store: Parquet layout, DuckDB views, query functions, audit, retention."""
