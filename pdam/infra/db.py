"""Engines, transactions and the failures that pass.

Core functions run on a SQLAlchemy ``Connection`` through the port (``port.py``, straight
on the psycopg connection under it) and never commit; the request or the job owns the
transaction (``committing``). Which failures pass is the port's one rule
(``port.translated``).
"""

from __future__ import annotations

import contextlib
import functools
import select
from collections.abc import Iterator, Mapping
from pathlib import Path

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect

from . import deadline, embedded
from .settings import libpq_url, sqlalchemy_url


def resolve_database_url(settings: Mapping) -> str:
    """``DATABASE_URL`` or the embedded server's URL (started if needed)."""
    if settings.get("DATABASE_URL"):
        return libpq_url(settings["DATABASE_URL"])
    return embedded.start(Path(settings["INSTANCE_PATH"]) / "pgdata")


def session_options(settings: Mapping) -> str:
    """libpq ``options`` of every connection to our databases (``make_engine``'s, and the job
    server's Procrastinate pool, where posting runs): statement and lock timeouts (a blocked
    statement fails as transient: 503, or the job is retried), UTC, and the role the
    service acts as (``DATABASE_ROLE``, sql/roles.sql: rows only, no DDL)."""
    timeout = settings["DB_STATEMENT_TIMEOUT_MS"]
    role = settings.get("DATABASE_ROLE")
    return f"-c statement_timeout={timeout} -c lock_timeout={timeout} -c timezone=UTC" + (
        f" -c role={role}" if role else ""
    )


def is_stale(conn: psycopg.Connection | psycopg.AsyncConnection) -> bool:
    """Whether an idle pooled connection is known dead without asking the server: closed or
    broken, or its socket readable while no statement runs (the server said goodbye: a
    restart's "terminating connection" and the end of the stream). No round trip: a pool
    checks every connection it hands out this way."""
    if conn.closed or conn.broken:
        return True
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(readable)


def _discard_stale(dbapi_connection, _record, _proxy) -> None:
    """SQLAlchemy's checkout hook: a stale connection raises DisconnectionError, which makes
    the pool drop it and hand out another (a new one when none is left): the request after a
    database restart gets a live connection, not a 503."""
    if is_stale(dbapi_connection):
        raise sa.exc.DisconnectionError("pooled connection closed by the server")


async def check_async(conn: psycopg.AsyncConnection) -> None:
    """psycopg_pool's ``check`` with the same rule (the job server's queue pool). The
    connection is closed first: the pool takes back an open one as good."""
    if is_stale(conn):
        await conn.close()
        raise psycopg.OperationalError("pooled connection closed by the server")


def make_engine(url: str, settings: Mapping, connect_args: Mapping | None = None, **kwargs) -> sa.Engine:
    """An engine on ``url`` with the service's session (``session_options``), stale pooled
    connections discarded and deadline scopes watching its connections; ``connect_args``
    add to (or replace) the driver's connection arguments."""
    kwargs.setdefault("pool_size", settings["DB_POOL_SIZE"])
    kwargs.setdefault("max_overflow", settings["DB_POOL_SIZE"])
    kwargs.setdefault("pool_timeout", settings["DB_CONNECT_TIMEOUT"])
    engine = sa.create_engine(
        sqlalchemy_url(url),
        connect_args={
            "connect_timeout": settings["DB_CONNECT_TIMEOUT"],
            "options": session_options(settings),
            **(connect_args or {}),
        },
        # Error messages (and so logged tracebacks) name the statement, never its parameters:
        # those include tokens (a payment keeps the request's Authorization for its callbacks).
        hide_parameters=True,
        **kwargs,
    )
    sa.event.listen(engine, "checkout", _discard_stale)
    watch_deadlines(engine)
    return engine


NOTICES = "pdam.notices"


def watch_deadlines(engine: sa.Engine) -> None:
    """Each connection of ``engine`` keeps the WARNINGs it receives (``committing`` reads
    them), and one checked out inside a deadline scope is watched by it (``deadline``)."""

    @sa.event.listens_for(engine, "connect")
    def _connected(dbapi_connection, record):
        record.info[NOTICES] = deadline.watch_notices(dbapi_connection)

    @sa.event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy):
        deadline.adopt(dbapi_connection)


class Database:
    """The payments database and the billing ledger (the same one by default)."""

    def __init__(self, settings: Mapping):
        self.url = resolve_database_url(settings)
        self.engine = make_engine(self.url, settings)
        billing = settings.get("BILLING_DATABASE_URL")
        self.ledger_url = libpq_url(billing) if billing else self.url
        self.separate_ledger = bool(billing)
        self.ledger_engine = make_engine(self.ledger_url, settings) if billing else self.engine

    def dispose(self) -> None:
        self.engine.dispose()
        if self.separate_ledger:
            self.ledger_engine.dispose()


@contextlib.contextmanager
def committing(conn: sa.Connection) -> Iterator[sa.Connection]:
    """Commit ``conn``'s work at the end of the block, roll it back on error. A commit that
    received a WARNING (a cancelled wait for a synchronous standby: committed here, perhaps
    not replicated) raises ``CommitUnconfirmed``: the caller cannot say it happened."""
    try:
        yield conn
        deadline.check()
    except BaseException:
        conn.rollback()
        raise
    with deadline.confirm_commit(conn.connection.info.get(NOTICES)):
        conn.commit()


@contextlib.contextmanager
def begin(engine: sa.Engine) -> Iterator[sa.Connection]:
    """``engine.begin()`` whose commit is confirmed as ``committing``'s is."""
    with engine.connect() as conn, committing(conn):
        yield conn


_DIALECT = pg_dialect.dialect()


@functools.cache
def pyformat(statement: sa.TextClause) -> str:
    """A named statement as psycopg takes it (``%(name)s``), compiled once by SQLAlchemy."""
    return str(statement.compile(dialect=_DIALECT))


def rollback_quietly(conn: sa.Connection) -> None:
    try:
        conn.rollback()
    except Exception:  # the connection may be gone; the pool discards it
        pass


def driver_connection(conn: sa.Connection):
    """The psycopg connection under a SQLAlchemy connection (for procrastinate and COPY)."""
    return conn.connection.driver_connection
