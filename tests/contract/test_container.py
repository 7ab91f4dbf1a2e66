"""Invariants of the container build, checked without docker (CI builds no image)."""

from __future__ import annotations

import http.server
import re
import socket
import subprocess
import sys
import threading
import tomllib

from interfaces.cli.healthcheck import check, command_of
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


def test_the_image_installs_the_dependencies_and_the_otlp_exporter():
    # The requirements step, run as the build runs it: without the exporter an image set
    # to OTEL_TRACES_EXPORTER=otlp only warns and exports nothing.
    [step] = [line for line in _instructions() if "> requirements.txt" in line]
    code = re.search(r'python -c "(.+?)" > requirements.txt', step)[1]
    listed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert set(project["dependencies"]) < set(listed)
    assert any(line.startswith("opentelemetry-exporter-otlp") for line in listed)


def test_health_check_probes_http_only_where_the_container_serves_it():
    # The worker runs from the same image and serves no HTTP: probing /healthz there
    # marked every worker container unhealthy.
    healthcheck = next(line for line in _instructions() if line.startswith("HEALTHCHECK"))
    assert "interfaces.cli.healthcheck" in healthcheck
    python, script = "/opt/blossom/bin/python", "/opt/blossom/bin/blossom"
    assert command_of([python, script, "worker", "-c", "4"]) == "worker"
    assert command_of([python, script]) is None
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = {"PORT": str(sock.getsockname()[1])}
    assert check([python, script, "worker"], closed, timeout=1) == 0
    assert check([python, script, "api"], closed, timeout=1) == 1
    assert check([python, script, "up"], closed, timeout=1) == 1


def test_health_check_passes_when_the_api_answers_healthz():
    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Healthz) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            port = {"PORT": str(server.server_address[1])}
            assert check(["/opt/blossom/bin/blossom", "api", "-p", "2"], port) == 0
        finally:
            server.shutdown()
