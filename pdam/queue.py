"""Deferring jobs inside the caller's transaction.

The web process (and a task deferring a follow-up) enqueues through this
module's own Procrastinate App on a synchronous connector, by task name, on
the caller's psycopg connection: the job row commits or rolls back with the
payment. ``pdam`` never imports ``jobs``.
"""

from __future__ import annotations

from typing import Any

import procrastinate
import sqlalchemy as sa
from flask import Flask, current_app

from .db import driver_connection

POSTING_QUEUE = "posting"
WEBHOOK_QUEUE = "webhooks"
MAINTENANCE_QUEUE = "maintenance"
QUEUES = (POSTING_QUEUE, WEBHOOK_QUEUE, MAINTENANCE_QUEUE)


def init_app(app: Flask) -> None:
    url = app.config["RESOLVED_DATABASE_URL"]
    app.extensions["pdam.queue"] = procrastinate.App(
        connector=procrastinate.SyncPsycopgConnector(conninfo=url)
    )


def defer(
    conn: sa.Connection,
    task_name: str,
    *,
    queue: str,
    lock: str | None = None,
    schedule_in: dict | None = None,
    **task_kwargs: Any,
) -> int:
    """Insert the job on ``conn``'s current transaction; return its id."""
    if not conn.in_transaction():
        # SQLAlchemy begins lazily: without this, a job deferred before any other
        # statement would sit outside the transaction the caller commits, and be lost.
        conn.begin()
    app: procrastinate.App = current_app.extensions["pdam.queue"]
    options: dict[str, Any] = {"queue": queue, "connection": driver_connection(conn)}
    if lock:
        options["lock"] = lock
    if schedule_in:
        options["schedule_in"] = schedule_in
    return app.configure_task(task_name, **options).defer(**task_kwargs)
