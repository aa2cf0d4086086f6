"""ragtrail: observability and audit for LLM / RAG pipelines."""
