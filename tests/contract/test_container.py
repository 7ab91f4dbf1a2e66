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


def _instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_dependencies_are_installed_before_the_sources_are_copied():
    # A source change must reuse the dependency layer (~290 MB, about a minute of pip).
    instructions = _instructions()
    first_install = next(i for i, line in enumerate(instructions) if "pip install" in line)
    copied_before = [line for line in instructions[:first_install] if line.startswith("COPY")]
    assert copied_before == ["COPY pyproject.toml ./"]
