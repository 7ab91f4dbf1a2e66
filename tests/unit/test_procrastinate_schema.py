"""Splitting procrastinate's migration files into single statements for asyncpg."""

from __future__ import annotations

from infrastructure.queue.schema import migration_files, split_statements


def test_split_respects_quotes_dollar_bodies_and_comments():
    script = """
    -- a comment; with a semicolon
    CREATE TABLE t (v text DEFAULT 'a;b');
    /* block; comment */
    CREATE FUNCTION f() RETURNS void AS $$ BEGIN PERFORM 1; END; $$ LANGUAGE plpgsql;
    CREATE FUNCTION g() RETURNS text AS $body$ SELECT 'it''s; fine' $body$ LANGUAGE sql;
    """
    statements = split_statements(script)
    assert len(statements) == 3
    assert statements[0] == "CREATE TABLE t (v text DEFAULT 'a;b')"
    assert "PERFORM 1; END;" in statements[1]
    assert "'it''s; fine'" in statements[2]


def test_pinned_files_are_ordered_and_bounded_by_version():
    files = migration_files(after=None, up_to="03.04.00")
    names = [f.name for f in files]
    assert names[0].startswith("00.00.00_01")
    assert names == sorted(names)
    assert all(n[:8] <= "03.04.00" for n in names)
    assert migration_files(after="03.04.00", up_to="03.04.00") == []


def test_every_pinned_file_splits_into_executable_statements():
    for path in migration_files(after=None, up_to="03.04.00"):
        statements = split_statements(path.read_text())
        assert statements, path.name
        assert all(not s.endswith(";") for s in statements)
