"""The procrastinate schema, replayed from the migration files shipped with the package.

asyncpg runs one statement per call, so each file is split on top-level semicolons
(outside quotes, dollar-quoted bodies and comments).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

_VERSION = re.compile(r"^(\d{2})\.(\d{2})\.(\d{2})_")
_DOLLAR_TAG = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*\$|\$\$")


def migration_files(after: str | None, up_to: str) -> list[Path]:
    """procrastinate's migration files with `after < version <= up_to`, in order."""
    folder = Path(str(resources.files("procrastinate.sql") / "migrations"))
    chosen = []
    for path in sorted(folder.glob("*.sql")):
        match = _VERSION.match(path.name)
        if not match:
            continue
        version = ".".join(match.groups())
        if (after is None or version > after) and version <= up_to:
            chosen.append(path)
    return chosen


def split_statements(script: str) -> list[str]:
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(script)
    while i < n:
        ch = script[i]
        if script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end == -1 else end + 1
            continue
        if script.startswith("/*", i):
            end = script.find("*/", i + 2)
            i = n if end == -1 else end + 2
            continue
        if ch == "'":
            end = i + 1
            while end < n:
                if script[end] == "'" and script.startswith("''", end):
                    end += 2
                    continue
                if script[end] == "'":
                    break
                end += 1
            current.append(script[i : end + 1])
            i = end + 1
            continue
        if ch == "$":
            tag = _DOLLAR_TAG.match(script, i)
            if tag:
                end = script.find(tag.group(), tag.end())
                end = n if end == -1 else end + len(tag.group())
                current.append(script[i:end])
                i = end
                continue
        if ch == ";":
            _flush(current, statements)
            i += 1
            continue
        current.append(ch)
        i += 1
    _flush(current, statements)
    return statements


def _flush(current: list[str], statements: list[str]) -> None:
    statement = "".join(current).strip()
    current.clear()
    if statement:
        statements.append(statement)
