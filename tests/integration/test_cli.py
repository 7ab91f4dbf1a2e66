"""The operator CLI against a real database."""

from __future__ import annotations

import subprocess

import pytest
from click.testing import CliRunner

from interfaces.cli.main import main
from tests.conftest import add_shop
from tests.support.database import create_database, drop_database
from tests.support.processes import blossom, child_env
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
