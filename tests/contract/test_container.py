"""Invariants of the container build, checked without docker (CI builds no image)."""

from __future__ import annotations

from tests.support.processes import REPO


def _dockerignore() -> set[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return {line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")}


def test_build_context_leaves_out_the_virtualenv_local_data_secrets_and_history():
    # Without these, `docker build .` after `./dev up` sends ~400 MB (the virtualenv and
    # the embedded cluster) and .data/dev-secrets.json to the daemon.
    assert {".venv", ".data", ".env", ".git"} <= _dockerignore()
