"""Adapters: database, queue, crypto, telemetry and the outside services."""
