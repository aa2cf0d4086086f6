"""Instrumented sample RAG service and GPU agent that feed the demo and the tests."""
