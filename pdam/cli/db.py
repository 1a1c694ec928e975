"""``db``: the database schema."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..infra import migrations
from ..web import runtime

group = AppGroup("db", help="Database schema.")


@group.command("upgrade")
def db_upgrade():
    """Apply sql/ migrations and the queue's schema (safe to run again)."""
    database = runtime.database()
    applied = migrations.upgrade(database.url, database.ledger_url)
    for name in applied:
        click.echo(f"applied {name}")
    click.echo(f"database is up to date ({len(applied)} applied)")


@group.command("url")
def db_url():
    """Print the URL of the database in use (the embedded one if DATABASE_URL is unset)."""
    click.echo(runtime.database().url)
