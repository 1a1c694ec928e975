"""``db`` commands (pdam/cli/db.py); the migrations themselves are in tests/infra/test_migrations.py."""

from __future__ import annotations


def test_cli_upgrade_is_idempotent(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert "database is up to date (0 applied)" in first.output
