"""Liveness of the service and its database."""

from __future__ import annotations

import sqlalchemy as sa

from . import __version__


def check(conn: sa.Connection) -> dict:
    """Raises a driver error (answered 503) when the database does not answer."""
    conn.execute(sa.text("select 1"))
    conn.rollback()
    return {"status": "ok", "database": "ok", "version": __version__}
