"""The README's run command on a machine with nothing configured: embedded Postgres,
migrations, API and worker come up; health, OpenAPI and metrics answer."""

from __future__ import annotations

import httpx
from openapi_spec_validator import validate

from tests.support.processes import REPO, child_env, eventually, free_port, spawn, stop


async def test_readme_run_command_starts_the_service_with_embedded_postgres(tmp_path):
    port = free_port()
    env = child_env(BLOSSOM_DATA_DIR=str(tmp_path / "data"), PORT=str(port))
    assert "DATABASE_URL" not in env
    service = spawn([str(REPO / "dev"), "up"], env)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:

            async def ready() -> httpx.Response | None:
                if service.poll() is not None:
                    raise AssertionError("the service exited:\n" + stop(service))
                try:
                    response = await client.get("/readyz")
                except httpx.TransportError:
                    return None
                return response if response.status_code == 200 else None

            await eventually(ready, timeout=120)
            validate((await client.get("/schema/openapi.json")).json())
            metrics = (await client.get("/metrics")).text
    finally:
        output = stop(service)
    assert "blossom_requests_total" in metrics
    assert "SMS Blossom is up (embedded Postgres" in output
