"""Logging, tracing and metrics plumbing."""
