"""``db`` commands (pdam/cli/db.py); the migrations themselves are in tests/infra/test_migrations.py."""

from __future__ import annotations

import os

import psycopg

from pdam.infra import sealing
from tests.conftest import url_for_database


def test_cli_upgrade_is_idempotent(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "database is up to date (0 applied)" in first.output


def test_cli_upgrade_runs_as_the_owner_url(make_app, server_url):
    """``DATABASE_OWNER_URL`` is the login of ``db upgrade`` (web and worker use DATABASE_URL)."""
    name = f"pdam_owner_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    owner_url = url_for_database(server_url, name)
    try:
        runner = make_app(DATABASE_OWNER_URL=owner_url).test_cli_runner()
        result = runner.invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert "applied main/009_sealed_secrets.sql" in result.output
        with psycopg.connect(owner_url) as conn:
            tracks = {r[0] for r in conn.execute("select distinct track from schema_migration")}
        assert tracks == {"ledger", "procrastinate", "main"}
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def test_cli_upgrade_with_a_wrong_key_says_why(make_app):
    result = make_app(SECRET_KEYS=sealing.generate_key()).test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 1
    assert "SECRET_KEYS cannot open this database's secrets" in result.output
