"""Thin tasks: each calls one domain function of ``pdam`` in the app context."""

from __future__ import annotations

from pdam import queue

from . import app, flask_app


@app.periodic(cron="*/5 * * * *")
@app.task(name="maintenance.purge_inquiries", queue=queue.MAINTENANCE_QUEUE, queueing_lock="purge_inquiries")
def purge_inquiries(timestamp: int) -> int:
    """Delete expired inquiry snapshots (requests never do it)."""
    from pdam import db, inquiry

    with flask_app.app_context(), db.transaction() as conn:
        return inquiry.purge_expired(conn)
