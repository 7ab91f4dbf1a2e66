"""The operator CLI against a real database."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from interfaces.cli.main import main
from tests.conftest import add_shop
from tests.support.database import create_database, drop_database
from tests.support.processes import blossom, child_env, eventually, free_port, spawn
from tests.support.settings import make_environ


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(blossom(*args), env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.usefixtures("clean_db")
async def test_shops_list_shows_every_shop(container, database_url, data_dir):
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    result = _run(child_env(**make_environ(data_dir), DATABASE_URL=database_url), "shops", "list")
    assert result.returncode == 0, result.stderr
    assert shop_a.domain in result.stdout and shop_b.domain in result.stdout


async def test_db_current_reports_the_head_revision(database_url, data_dir):
    result = _run(child_env(**make_environ(data_dir), DATABASE_URL=database_url), "db", "current")
    assert result.returncode == 0, result.stderr
    assert "(head)" in result.stdout


async def test_command_on_an_unmigrated_database_says_what_to_do(server, data_dir):
    url, name = await create_database(server)
    try:
        result = _run(child_env(**make_environ(data_dir), DATABASE_URL=url), "jobs", "list")
    finally:
        await drop_database(server, name)
    assert result.returncode == 1
    assert "blossom db upgrade" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_command_has_help():
    for args in (
        (),
        ("up",),
        ("api",),
        ("worker",),
        ("db",),
        ("db", "upgrade"),
        ("jobs",),
        ("jobs", "retry"),
        ("shops", "list"),
    ):
        result = CliRunner().invoke(main, [*args, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, args


async def test_api_processes_share_one_port_and_stop_together(database_url, data_dir):
    port = free_port()
    env = child_env(**make_environ(data_dir), DATABASE_URL=database_url, PORT=str(port))
    api = spawn(blossom("api", "--processes", "2"), env)
    try:

        async def ready() -> bool:
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    return (await http.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, timeout=60)
        children = _children(api.pid)
        assert len(children) == 2, "two API processes, one listening port"
    finally:
        api.terminate()
        api.wait(timeout=30)
    assert api.returncode == 0
    assert all(not _alive(pid) for pid in children), "the children stop with the parent"


def _children(pid: int) -> list[int]:
    """Child pids from /proc (Linux), without a dependency for it."""
    found = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
