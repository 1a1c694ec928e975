"""What a request works with: the app's runtime (settings, database, clock), one
connection and transaction per request.

Core functions take a connection and ``now``; views get both from here. The
request owns the transaction: ``transaction()`` commits at the end of the block.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from flask import Flask, current_app, g

from ..core import errors
from ..infra import deadline, sealing
from ..infra.db import Database, committing
from ..infra.port import IntegrityViolation, translated
from ..infra.runtime import Runtime
from . import health_lane

T = TypeVar("T")
R = TypeVar("R")


#: What a request's deadline keeps for the time gunicorn does not see (under gunicorn only).
ALLOWANCE_SECONDS = 1.0


class Bounded:
    """WSGI middleware: the request's database work ends within ``REQUEST_DEADLINE_SECONDS``
    (``pdam/infra/deadline.py``): past it, its statements are cancelled and it answers 503.
    Under gunicorn the time counts from the request's arrival (``health_lane.arrived``): a
    request that waited for a thread has that much less, and one that waited it all out
    answers 503 at its first statement."""

    def __init__(self, wsgi_app, seconds: float):
        self.wsgi_app = wsgi_app
        self.seconds = seconds

    def __call__(self, environ, start_response):
        seconds = self.seconds
        came = health_lane.arrived(environ)
        if came is not None:
            # less what it waited, and a second for what came before its arrival and after
            # its answer (the listen queue, the client's connect, the answer's way back)
            seconds = max(0.05, seconds - ALLOWANCE_SECONDS - (time.monotonic() - came))
        with deadline.bounded(seconds):
            return self.wsgi_app(environ, start_response)


def init_app(app: Flask) -> None:
    app.extensions["pdam.runtime"] = Runtime(app.config)
    app.wsgi_app = Bounded(app.wsgi_app, app.config["REQUEST_DEADLINE_SECONDS"])

    @app.teardown_appcontext
    def _close(exc: BaseException | None) -> None:
        for name in ("pdam_conn", "pdam_ledger"):
            conn = g.pop(name, None)
            if conn is not None:
                conn.close()  # rolls back anything left uncommitted


def get() -> Runtime:
    return current_app.extensions["pdam.runtime"]


def database() -> Database:
    """The database, once the keys are known to open its secrets (``Runtime.ready_database``)."""
    return get().ready_database()


def sealer() -> sealing.Sealer:
    return get().sealer


def now() -> dt.datetime:
    return get().now()


def connection() -> sa.Connection:
    """The request's (or command's) connection to the payments database."""
    if "pdam_conn" not in g:
        g.pdam_conn = database().engine.connect()
    return g.pdam_conn


def ledger_connection() -> sa.Connection:
    """The connection to the billing ledger: the same one unless it is separate."""
    db = database()
    if not db.separate_ledger:
        return connection()
    if "pdam_ledger" not in g:
        g.pdam_ledger = db.ledger_engine.connect()
    return g.pdam_ledger


def transaction() -> contextlib.AbstractContextManager[sa.Connection]:
    """Commit the request's work at the end of the block, roll it back on error."""
    return committing(connection())


def ledger_transaction() -> contextlib.AbstractContextManager[sa.Connection]:
    """The same for the billing ledger (the request's transaction unless it is separate)."""
    return committing(ledger_connection())


def run(fn, *args, **kwargs):
    """Run ``fn(conn, *args, **kwargs)`` in the request's transaction and commit, once more
    after a lost race (``once_more_after_a_race``)."""
    return once_more_after_a_race(transaction, lambda conn: fn(conn, *args, **kwargs))


def once_more_after_a_race(
    block: Callable[[], contextlib.AbstractContextManager[T]], fn: Callable[[T], R]
) -> R:
    """``fn(x)`` inside ``with block() as x`` (a transaction, a savepoint). A unique
    violation means a concurrent request won a race the checks could not see yet; the work
    runs once more in a new block, where the checks see the winner and give the precise
    answer (a replay, a 409). A second violation is a ``Conflict``."""
    for attempt in (1, 2):
        try:
            with block() as x:
                return fn(x)
        except Exception as exc:
            if not isinstance(translated(exc), IntegrityViolation):
                raise
            if attempt == 2:
                raise errors.Conflict("a concurrent request changed the same data") from None
    raise AssertionError("unreachable")
