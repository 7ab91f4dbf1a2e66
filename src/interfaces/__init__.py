"""Drivers: HTTP (Litestar), jobs (procrastinate), CLI (click); one composition root."""
