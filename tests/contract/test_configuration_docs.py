"""The README's configuration table and `.env.example` match what `load_settings` reads.

Every variable the settings module reads is documented, every documented variable is read,
and a default written as a literal in the table is the value `load_settings` gives.
"""

from __future__ import annotations

import re

import pytest

from infrastructure.settings import load_settings
from tests.support.processes import REPO

SETTINGS_SOURCE = REPO / "src" / "infrastructure" / "settings.py"
# Read by libraries, documented next to the setting that enables them.
READ_ELSEWHERE = {"OTEL_EXPORTER_OTLP_ENDPOINT"}
# Variables whose `Settings` attribute is not the lower-cased name.
ATTRIBUTES = {"BLOSSOM_ENV": "env", "BLOSSOM_DATA_DIR": "data_dir"}


def _read_variables() -> set[str]:
    """Names passed to the environment readers in settings.py (`env.get("X")`,
    `reader.integer("X", …)`, `secret("X")`)."""
    source = SETTINGS_SOURCE.read_text()
    return set(re.findall(r"""(?:\.\w+|secret)\(\s*"([A-Z][A-Z0-9_]{2,})"(?=[,)])""", source))


def _table_rows() -> list[tuple[list[str], str, str]]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0])
        rows.append((names, cells[1], cells[2]))
    return rows


def _env_example() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        match = re.match(r"([A-Z][A-Z0-9_]+)=(\S*)", line)
        if match:
            values[match[1]] = match[2]
    return values


def test_every_variable_read_is_in_the_readme_table_and_env_example():
    table_text = (REPO / "README.md").read_text().split("## Configuration", 1)[1]
    table_text = table_text.split("\n## ", 1)[0]
    read = _read_variables()
    assert "DATABASE_URL" in read and "PORT" in read  # the scan itself works
    assert {v for v in read if f"`{v}`" not in table_text} == set()
    assert read - set(_env_example()) == set()


def test_every_variable_in_the_readme_table_is_read():
    documented = {name for names, _, _ in _table_rows() for name in names}
    assert documented - _read_variables() == set()


def _literal_defaults() -> list[tuple[str, str]]:
    """(variable, default) for each row whose default column is backticked literals only,
    one per variable (`HOST`, `PORT` -> `127.0.0.1`, `8000`)."""
    pairs = []
    for names, default, _ in _table_rows():
        literals = re.findall(r"`([^`]*)`", default)
        if literals and re.fullmatch(r"(`[^`]*`(,\s*)?)+", default) and len(literals) == len(names):
            pairs.extend(zip(names, literals, strict=True))
    return pairs


@pytest.mark.parametrize(("variable", "documented"), _literal_defaults())
def test_documented_default_is_the_default(tmp_path, monkeypatch, variable, documented):
    if variable == "BLOSSOM_DATA_DIR":
        monkeypatch.chdir(tmp_path)  # the default folder gets the generated secrets
        assert load_settings({}).data_dir == tmp_path / documented
        return
    settings = load_settings({"BLOSSOM_DATA_DIR": str(tmp_path)})
    value = getattr(settings, ATTRIBUTES.get(variable, variable.lower()))
    assert str(value) in (documented, f"{documented}.0")


def test_env_example_values_are_the_defaults(tmp_path):
    defaults = dict(_literal_defaults())
    example = _env_example()
    settings = load_settings({"BLOSSOM_DATA_DIR": str(tmp_path)})
    for variable, value in example.items():
        if not value or variable in READ_ELSEWHERE:
            continue
        if variable in defaults:
            assert value == defaults[variable], variable
        elif variable == "SHOPIFY_SCOPES":
            assert tuple(value.split(",")) == settings.shopify_scopes
        elif variable == "SIMULATOR_REPORT_DELAY_SECONDS":
            assert float(value) == settings.simulator_report_delay_seconds


def test_variables_without_a_literal_default_are_unset_or_generated(tmp_path):
    settings = load_settings({"BLOSSOM_DATA_DIR": str(tmp_path)})
    rows = {name: default for names, default, _ in _table_rows() for name in names}
    for variable, default in rows.items():
        attribute = ATTRIBUTES.get(variable, variable.lower())
        if default.startswith("unset"):
            assert getattr(settings, attribute) in (None, {}), variable
        elif default == "generated in dev":
            assert getattr(settings, attribute), variable
