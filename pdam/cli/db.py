"""``db``: the database schema."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..infra import migrations
from ..infra.settings import libpq_url
from ..web import runtime
from .common import reports_errors

group = AppGroup("db", help="Database schema.")


@group.command("upgrade")
@reports_errors
def db_upgrade():
    """Apply sql/ migrations and the queue's schema (safe to run again)."""
    rt = runtime.get()
    database = rt.database  # not ready_database: this is what makes it ready
    owner_url = rt.settings.get("DATABASE_OWNER_URL")
    url = libpq_url(owner_url) if owner_url else database.url
    ledger_url = database.ledger_url if database.separate_ledger else url
    applied = migrations.upgrade(url, ledger_url, sealer=rt.sealer)
    for name in applied:
        click.echo(f"applied {name}")
    click.echo(f"database is up to date ({len(applied)} applied)")


@group.command("url")
def db_url():
    """Print the URL of the database in use (the embedded one if DATABASE_URL is unset)."""
    click.echo(runtime.get().database.url)
