"""Named statements on an async psycopg connection: the job server's own (Procrastinate's
pool), for the hottest job. The statements are the same ``sql/queries`` ones, compiled
once to psycopg's ``%(name)s`` form; rows are dicts. ``rows`` never commits: the caller's
``async with pool.connection()`` block owns the transaction; ``rows_alone`` runs one
statement as a transaction of its own, like ``db.rows_alone``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import psycopg
import sqlalchemy as sa
from psycopg.rows import dict_row

from .db import pyformat


async def rows(conn: psycopg.AsyncConnection, statement: sa.TextClause, params: Mapping) -> list[dict]:
    """Run ``statement`` (one that returns rows: a select, or a write with ``returning``)
    on ``conn``, in its current transaction (begun by psycopg if none is open); its rows
    as dicts."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(pyformat(statement), params)
        # Not ``cur.description``: it builds column objects, a tenth of a posting's CPU.
        return await cur.fetchall()


async def rows_alone(conn: psycopg.AsyncConnection, statement: sa.TextClause, params: Mapping) -> list[dict]:
    """``rows`` as a transaction of its own (autocommit) when ``conn`` has none open: no
    BEGIN and COMMIT round trips, and what the statement writes is committed when this
    returns. Switching is client-side only; the connection is left as it was."""
    if conn.autocommit or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return await rows(conn, statement, params)
    await conn.set_autocommit(True)
    try:
        return await rows(conn, statement, params)
    finally:
        # Never in place of the statement's own error (a lost connection is transient);
        # a connection that cannot switch back is broken, and the pool replaces it.
        with contextlib.suppress(psycopg.Error):
            await conn.set_autocommit(False)
