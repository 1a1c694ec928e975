"""Engines and the one-transaction-per-request connection.

Domain functions take a SQLAlchemy ``Connection``, execute and never commit;
the request (``transaction()``) or the job owns the transaction.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from flask import Flask, current_app, g

from . import config as config_module
from . import embedded, errors


def resolve_database_url(cfg: dict) -> str:
    """``DATABASE_URL`` or the embedded server's URL (started if needed)."""
    if cfg.get("DATABASE_URL"):
        return config_module.libpq_url(cfg["DATABASE_URL"])
    return embedded.start(Path(cfg["INSTANCE_PATH"]) / "pgdata")


def make_engine(url: str, cfg: dict, **kwargs) -> sa.Engine:
    options = (
        f"-c statement_timeout={cfg['DB_STATEMENT_TIMEOUT_MS']}"
        f" -c lock_timeout={cfg['DB_STATEMENT_TIMEOUT_MS']}"
        " -c timezone=UTC"
    )
    kwargs.setdefault("pool_size", cfg["DB_POOL_SIZE"])
    kwargs.setdefault("max_overflow", cfg["DB_POOL_SIZE"])
    kwargs.setdefault("pool_timeout", cfg["DB_CONNECT_TIMEOUT"])
    return sa.create_engine(
        config_module.sqlalchemy_url(url),
        connect_args={"connect_timeout": cfg["DB_CONNECT_TIMEOUT"], "options": options},
        # Error messages (and so logged tracebacks) name the statement, never its parameters:
        # those include tokens (a payment keeps the request's Authorization for its callbacks).
        hide_parameters=True,
        **kwargs,
    )


class Database:
    """The payments database and the billing ledger (the same one by default)."""

    def __init__(self, cfg: dict):
        self.url = resolve_database_url(cfg)
        self.engine = make_engine(self.url, cfg)
        billing = cfg.get("BILLING_DATABASE_URL")
        self.ledger_url = config_module.libpq_url(billing) if billing else self.url
        self.separate_ledger = bool(billing)
        self.ledger_engine = make_engine(self.ledger_url, cfg) if billing else self.engine

    def dispose(self) -> None:
        self.engine.dispose()
        if self.separate_ledger:
            self.ledger_engine.dispose()


def init_app(app: Flask) -> None:
    app.extensions["pdam.db"] = Database(app.config)
    app.config["RESOLVED_DATABASE_URL"] = app.extensions["pdam.db"].url

    @app.teardown_appcontext
    def _close(exc: BaseException | None) -> None:
        for name in ("pdam_conn", "pdam_ledger"):
            conn = g.pop(name, None)
            if conn is not None:
                conn.close()  # rolls back anything left uncommitted


def get_db() -> Database:
    return current_app.extensions["pdam.db"]


def connection() -> sa.Connection:
    """The request's (or job's) connection to the payments database."""
    if "pdam_conn" not in g:
        g.pdam_conn = get_db().engine.connect()
    return g.pdam_conn


def ledger_connection() -> sa.Connection:
    """The connection to the billing ledger: the same one unless it is separate."""
    db = get_db()
    if not db.separate_ledger:
        return connection()
    if "pdam_ledger" not in g:
        g.pdam_ledger = db.ledger_engine.connect()
    return g.pdam_ledger


@contextlib.contextmanager
def _committing(conn: sa.Connection) -> Iterator[sa.Connection]:
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def transaction() -> contextlib.AbstractContextManager[sa.Connection]:
    """Commit the request's work at the end of the block, roll it back on error."""
    return _committing(connection())


def ledger_transaction() -> contextlib.AbstractContextManager[sa.Connection]:
    """The same for the billing ledger (the request's transaction unless it is separate)."""
    return _committing(ledger_connection())


def run(fn, *args, **kwargs):
    """Run ``fn(conn, *args, **kwargs)`` in the request's transaction and commit.

    A unique violation means a concurrent request won a race the checks could
    not see yet; the work runs once more in a new transaction, where the checks
    see the winner and give the precise answer (a replay, a 409).
    """
    for attempt in (1, 2):
        try:
            with transaction() as conn:
                return fn(conn, *args, **kwargs)
        except sa.exc.IntegrityError:
            if attempt == 2:
                raise errors.Conflict("a concurrent request changed the same data") from None


def driver_connection(conn: sa.Connection):
    """The psycopg connection under a SQLAlchemy connection (for procrastinate)."""
    return conn.connection.driver_connection
