"""Encryption at rest and blind indexes for PII and secrets."""
