"""Engines, transactions and the failures that pass.

Core functions take a SQLAlchemy ``Connection``, execute and never commit; the
request or the job owns the transaction (``committing``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Mapping

import procrastinate.exceptions
import psycopg
import sqlalchemy as sa

from . import embedded
from .settings import libpq_url, sqlalchemy_url

#: Driver, pool and queue failures that pass (connection lost, pool exhausted, deadlock,
#: lock or statement timeout...): answered 503, retried by the job server.
TRANSIENT = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.TimeoutError,
    psycopg.OperationalError,
    procrastinate.exceptions.ConnectorException,
)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT)


def resolve_database_url(settings: Mapping) -> str:
    """``DATABASE_URL`` or the embedded server's URL (started if needed)."""
    if settings.get("DATABASE_URL"):
        return libpq_url(settings["DATABASE_URL"])
    return embedded.start(Path(settings["INSTANCE_PATH"]) / "pgdata")


def make_engine(url: str, settings: Mapping, **kwargs) -> sa.Engine:
    timeout = settings["DB_STATEMENT_TIMEOUT_MS"]
    options = f"-c statement_timeout={timeout} -c lock_timeout={timeout} -c timezone=UTC"
    kwargs.setdefault("pool_size", settings["DB_POOL_SIZE"])
    kwargs.setdefault("max_overflow", settings["DB_POOL_SIZE"])
    kwargs.setdefault("pool_timeout", settings["DB_CONNECT_TIMEOUT"])
    return sa.create_engine(
        sqlalchemy_url(url),
        connect_args={"connect_timeout": settings["DB_CONNECT_TIMEOUT"], "options": options},
        # Error messages (and so logged tracebacks) name the statement, never its parameters:
        # those include tokens (a payment keeps the request's Authorization for its callbacks).
        hide_parameters=True,
        **kwargs,
    )


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
    """Commit ``conn``'s work at the end of the block, roll it back on error."""
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def execute_alone(conn: sa.Connection, statement, params: dict) -> sa.Row | None:
    """Run one statement in a transaction of its own (autocommit) on ``conn`` before its
    transaction begins: its locks end with it, and what it writes stays whatever happens
    to the transaction that follows. Switching is client-side only: no extra round trip."""
    if conn.in_transaction():  # something ran first: stay in that transaction
        return conn.execute(statement, params).one_or_none()
    default = conn.default_isolation_level
    conn.execution_options(isolation_level="AUTOCOMMIT")
    try:
        row = conn.execute(statement, params).one_or_none()
    except BaseException:
        # The statement's own error (a lost database is transient: 503), not the
        # PendingRollbackError a commit of the failed transaction would raise instead.
        rollback_quietly(conn)
        raise
    conn.commit()  # ends the bookkeeping only: nothing is open on the server
    conn.execution_options(isolation_level=default)
    return row


def rollback_quietly(conn: sa.Connection) -> None:
    try:
        conn.rollback()
    except Exception:  # the connection may be gone; the pool discards it
        pass


def driver_connection(conn: sa.Connection):
    """The psycopg connection under a SQLAlchemy connection (for procrastinate and COPY)."""
    return conn.connection.driver_connection
