"""Postgres adapters: models, repositories and the tenant unit of work."""
