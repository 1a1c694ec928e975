"""Deferring jobs inside the caller's transaction.

Jobs are deferred by task name through this module's own Procrastinate App on
a synchronous connector, on the caller's psycopg connection: the job row
commits or rolls back with the payment. The App's pool is never opened (a
connection is always given), so it needs no URL. The job server's async tasks
defer on their async psycopg connection the same way (``defer_async``, an App
on the async connector). ``pdam`` never imports ``jobs``; the task names below
are the contract between the two.
"""

from __future__ import annotations

from typing import Any

import procrastinate
import psycopg
import sqlalchemy as sa

from .db import driver_connection

POSTING_QUEUE = "posting"
WEBHOOK_QUEUE = "webhooks"
MAINTENANCE_QUEUE = "maintenance"
QUEUES = (POSTING_QUEUE, WEBHOOK_QUEUE, MAINTENANCE_QUEUE)

POST_PAYMENT = "posting.post_payment"
DELIVER_WEBHOOK = "webhooks.deliver"

_app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector())


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
    options: dict[str, Any] = {"queue": queue, "connection": driver_connection(conn)}
    if lock:
        options["lock"] = lock
    if schedule_in:
        options["schedule_in"] = schedule_in
    return _app.configure_task(task_name, **options).defer(**task_kwargs)


_async_app = procrastinate.App(connector=procrastinate.PsycopgConnector())


async def defer_async(
    conn: psycopg.AsyncConnection,
    task_name: str,
    *,
    queue: str,
    lock: str | None = None,
    **task_kwargs: Any,
) -> int:
    """``defer`` on an async psycopg connection (the job server's own): the job INSERT runs
    in ``conn``'s current transaction (begun by psycopg if none is open); return its id.
    Through an App of its own on the async connector, never opened: the connection is given."""
    options: dict[str, Any] = {"queue": queue, "connection": conn}
    if lock:
        options["lock"] = lock
    return await _async_app.configure_task(task_name, **options).defer_async(**task_kwargs)
