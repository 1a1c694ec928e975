"""The core's one port to PostgreSQL, in the manner of procrastinate's connector: one
interface, a sync and an async implementation, so each core function is written once.

A core function that touches the database is a *plan*: a generator that yields what it
needs done (``fetch`` rows, ``alone``: a statement as a transaction of its own, ``count``:
a change's row count, ``defer``: a job, ``copy``: rows sent with COPY) and receives the
answer. ``@plan`` makes it
callable with a connection in front: a SQLAlchemy ``Connection`` (or a ``SyncDb``) runs it
now and returns its value; an async psycopg connection (or an ``AsyncDb``) returns an
awaitable of it. A plan calls another with ``yield from other.plan(db, ...)``.

Both implementations run the ``sql/queries`` statements straight on psycopg (compiled
once to ``%(name)s``; SQLAlchemy's text layer costs more CPU than a round trip), rows as
named tuples, never commit: the request or the job owns the transaction. Under a
SQLAlchemy connection, a statement begins its transaction first (so the caller's commit
covers it), and a lost connection is invalidated (the pool replaces it).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from typing import Any, Concatenate, Generic, Literal, NamedTuple, ParamSpec, TypeVar

import procrastinate
import procrastinate.exceptions
import psycopg
import sqlalchemy as sa
from psycopg.rows import namedtuple_row

from . import deadline
from .db import NOTICES, driver_connection, pyformat

T = TypeVar("T")
P = ParamSpec("P")
Mode = Literal["all", "one", "scalar", "count"]


class Transient(Exception):
    """The database failed in a way that can pass (connection lost, pool exhausted,
    deadlock, lock or statement timeout): answered 503, retried by the job server"""


class Permanent(Exception):
    """The database refused the statement, and would again"""


class IntegrityViolation(Permanent):
    """A unique, check or foreign-key violation (a unique one: a concurrent writer got
    there first)"""


def translated(exc: BaseException) -> Transient | Permanent | None:
    """The core's error for a driver failure, however wrapped (SQLAlchemy's ``orig``), with
    the failure as its cause; None for anything else. The one rule: psycopg's
    ``OperationalError``/``InterfaceError``, a pool that gave no connection in time and a
    job the queue did not take can pass, an integrity violation is its own kind, any other
    driver error is permanent."""
    if isinstance(exc, (Transient, Permanent)):
        return exc
    cause: BaseException | None = exc
    if isinstance(cause, sa.exc.DBAPIError) and cause.orig is not None:
        cause = cause.orig
    if isinstance(
        cause,
        (
            psycopg.OperationalError,
            psycopg.InterfaceError,
            sa.exc.TimeoutError,
            # The queue refused the job (its insert failed): the payment waits for it.
            procrastinate.exceptions.ConnectorException,
        ),
    ):
        kind: type[Transient | Permanent] = Transient
    elif isinstance(cause, psycopg.IntegrityError):
        kind = IntegrityViolation
    elif isinstance(cause, (psycopg.Error, sa.exc.SQLAlchemyError)):
        kind = Permanent
    else:
        return None
    error = kind(
        f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"
    )
    error.__cause__ = exc
    return error


#: The service's own failures that pass (not a driver's: they stay as they are): past the
#: request's (or job's) deadline; a commit a synchronous standby did not confirm.
PASSING = (deadline.DeadlineExceeded, deadline.CommitUnconfirmed)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` can pass: answered 503, retried by the job server."""
    return isinstance(exc, PASSING) or isinstance(translated(exc), Transient)


class Fetch(NamedTuple):
    """Run ``statement`` with ``params``; the plan receives, by ``mode``: every row
    (``all``), the first row or None (``one``), its first column or None (``scalar``), or
    the row count of a change (``count``). ``alone``: as a transaction of its own
    (autocommit) when none is open yet: its locks end with it and what it writes stays.
    ``on``: another connection (the billing ledger's), None for the plan's own."""

    statement: sa.TextClause
    params: Mapping
    mode: Mode = "all"
    alone: bool = False
    on: Any = None


class Defer(NamedTuple):
    """Defer job ``task`` in the plan's transaction; the plan receives the job id."""

    task: str
    queue: str
    lock: str | None = None
    schedule_in: dict | None = None
    kwargs: Mapping = {}


class Copy(NamedTuple):
    """``COPY ... from stdin`` of ``rows`` (tuples) in the plan's transaction; ``progress(n)``
    is told every ``every`` rows sent. The plan receives None."""

    statement: sa.TextClause
    rows: Sequence[tuple]
    progress: Callable[[int], None] | None = None
    every: int = 10_000


class Stream(NamedTuple):
    """Run ``statement`` with ``params`` through a server-side cursor in the plan's
    transaction, fetching ``batch`` rows a round trip; the plan receives an iterator of
    ``make(row)`` (an async iterator under ``AsyncDb``), read while the connection is held."""

    statement: sa.TextClause
    params: Mapping
    make: Callable[[Any], Any]
    batch: int = 1000


Op = Fetch | Defer | Copy | Stream
Plan = Generator[Op, Any, T]


def fetch(statement: sa.TextClause, params: Mapping | None = None, *, alone: bool = False, on: Any = None):
    return Fetch(statement, params or {}, "all", alone, on)


def one(statement: sa.TextClause, params: Mapping | None = None, *, alone: bool = False, on: Any = None):
    return Fetch(statement, params or {}, "one", alone, on)


def scalar(statement: sa.TextClause, params: Mapping | None = None, *, alone: bool = False, on: Any = None):
    return Fetch(statement, params or {}, "scalar", alone, on)


def count(statement: sa.TextClause, params: Mapping | None = None, *, alone: bool = False, on: Any = None):
    return Fetch(statement, params or {}, "count", alone, on)


def copy(statement: sa.TextClause, rows: Sequence[tuple], progress=None, every: int = 10_000) -> Copy:
    return Copy(statement, rows, progress, every)


def stream(
    statement: sa.TextClause, params: Mapping, make: Callable[[Any], Any], batch: int = 1000
) -> Stream:
    return Stream(statement, params, make, batch)


_cursors = itertools.count(1)


def _cursor_name() -> str:
    return f"pdam_stream_{next(_cursors)}"


def _chunks(op: Copy):
    for start in range(0, len(op.rows), op.every):
        yield op.rows[start : start + op.every]


def defer(task: str, *, queue: str, lock: str | None = None, schedule_in: dict | None = None, **kwargs):
    return Defer(task, queue, lock, schedule_in, kwargs)


def _result(cur, mode: Mode):
    if mode == "count":
        return cur.rowcount
    if mode == "all":
        return cur.fetchall()
    row = cur.fetchone()
    if mode == "one" or row is None:
        return row
    return row[0]


#: Jobs are deferred by task name through Apps of their own, never opened (a connection is
#: always given): ``pdam`` never imports ``jobs``; the names in ``queue`` are the contract.
_sync_app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector())
_async_app = procrastinate.App(connector=procrastinate.PsycopgConnector())


def _job_options(op: Defer, connection) -> dict:
    options: dict[str, Any] = {"queue": op.queue, "connection": connection}
    if op.lock:
        options["lock"] = op.lock
    if op.schedule_in:
        options["schedule_in"] = op.schedule_in
    return options


class SyncDb:
    """The port on a SQLAlchemy connection (the web's, the CLI's, a sync job's)."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn

    def same(self, other) -> bool:
        return other is None or other is self or other is self.conn

    def run(self, plan: Plan[T]) -> T:
        """Run ``plan`` to its value: each step's answer is sent into it, a failed step's
        error (a driver's translated: ``translated``) thrown into it at its ``yield``."""
        try:
            op = next(plan)
            while True:
                try:
                    answer = self.do(op)
                except Exception as exc:
                    op = plan.throw(translated(exc) or exc)
                else:
                    op = plan.send(answer)
        except StopIteration as stop:
            return stop.value
        finally:
            plan.close()

    def do(self, op: Op):
        if type(op) is Defer:
            return self.defer(op)
        if type(op) is Copy:
            return self.copy(op)
        if type(op) is Stream:
            return self.stream(op)
        if op.on is not None and not self.same(op.on):
            return sync(op.on).do(op._replace(on=None))
        conn = self.conn
        if op.alone and not conn.in_transaction():
            raw = driver_connection(conn)
            raw.autocommit = True  # client-side only: nothing is sent
            try:
                # Its own commit: a WARNING there (a synchronous standby's wait cancelled) is
                # a change not confirmed, as in ``committing``.
                with deadline.confirm_commit(conn.connection.info.get(NOTICES)):
                    return self._execute(raw, op)
            finally:
                if not raw.closed:
                    raw.autocommit = False
        if not conn.in_transaction():
            conn.begin()  # SQLAlchemy begins lazily: the caller's commit must cover this
        return self._execute(driver_connection(conn), op)

    def _execute(self, raw: psycopg.Connection, op: Fetch):
        deadline.check()
        try:
            with raw.cursor(row_factory=namedtuple_row) as cur:
                cur.execute(pyformat(op.statement), op.params)
                return _result(cur, op.mode)
        except psycopg.OperationalError:
            if raw.closed:  # lost: as SQLAlchemy does for its own statements, the pool replaces it
                self.conn.invalidate()
            raise

    def copy(self, op: Copy) -> None:
        if not self.conn.in_transaction():
            self.conn.begin()
        with driver_connection(self.conn).cursor().copy(op.statement.text) as out:
            for chunk in _chunks(op):
                for row in chunk:
                    out.write_row(row)
                if op.progress:
                    op.progress(len(chunk))

    def stream(self, op: Stream):
        if not self.conn.in_transaction():
            self.conn.begin()  # a server-side cursor lives in a transaction
        raw = driver_connection(self.conn)

        def rows():
            with raw.cursor(name=_cursor_name(), row_factory=namedtuple_row) as cur:
                cur.execute(pyformat(op.statement), op.params)
                while chunk := cur.fetchmany(op.batch):
                    for row in chunk:
                        yield op.make(row)

        return rows()

    def defer(self, op: Defer) -> int:
        if not self.conn.in_transaction():
            self.conn.begin()  # the job commits or rolls back with the caller's transaction
        job = _sync_app.configure_task(op.task, **_job_options(op, driver_connection(self.conn)))
        return job.defer(**op.kwargs)


class AsyncDb:
    """The port on an async psycopg connection (the job server's own pool)."""

    def __init__(self, conn: psycopg.AsyncConnection):
        self.conn = conn

    def same(self, other) -> bool:
        return other is None or other is self or other is self.conn

    async def run(self, plan: Plan[T]) -> T:
        """``SyncDb.run``, awaiting each step."""
        try:
            op = next(plan)
            while True:
                try:
                    answer = await self.do(op)
                except Exception as exc:
                    op = plan.throw(translated(exc) or exc)
                else:
                    op = plan.send(answer)
        except StopIteration as stop:
            return stop.value
        finally:
            plan.close()

    async def do(self, op: Op):
        if type(op) is Fetch and not self.same(op.on):  # the billing ledger's own connection
            return await (op.on if isinstance(op.on, AsyncDb) else AsyncDb(op.on)).do(op._replace(on=None))
        conn = self.conn
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        alone = type(op) is Fetch and op.alone
        if idle and conn.autocommit and not alone:
            # A transaction begins with this step, as psycopg begins one on a connection out
            # of autocommit; the caller commits it. The job server's pool hands out autocommit
            # connections (Procrastinate's own statements each commit alone) and puts
            # autocommit back when one is returned (``jobs.make_pool``).
            await conn.set_autocommit(False)
        if type(op) is Defer:
            job = _async_app.configure_task(op.task, **_job_options(op, conn))
            return await job.defer_async(**op.kwargs)
        if type(op) is Copy:
            async with conn.cursor() as cur, cur.copy(op.statement.text) as out:
                for chunk in _chunks(op):
                    for row in chunk:
                        await out.write_row(row)
                    if op.progress:
                        op.progress(len(chunk))
            return None
        if type(op) is Stream:
            return self.stream(op)
        if idle and alone and not conn.autocommit:
            await conn.set_autocommit(True)
            try:
                return await self._execute(op)
            finally:
                # Never in place of the statement's own error (a lost connection is transient);
                # a connection that cannot switch back is broken, and the pool replaces it.
                with contextlib.suppress(psycopg.Error):
                    await conn.set_autocommit(False)
        return await self._execute(op)  # in the caller's transaction (or alone, in autocommit)

    def stream(self, op: Stream):
        conn = self.conn

        async def rows():
            async with conn.cursor(name=_cursor_name(), row_factory=namedtuple_row) as cur:
                await cur.execute(pyformat(op.statement), op.params)
                while chunk := await cur.fetchmany(op.batch):
                    for row in chunk:
                        yield op.make(row)

        return rows()

    async def _execute(self, op: Fetch):
        async with self.conn.cursor(row_factory=namedtuple_row) as cur:
            await cur.execute(pyformat(op.statement), op.params)
            if op.mode == "count":
                return cur.rowcount
            if op.mode == "all":
                return await cur.fetchall()
            row = await cur.fetchone()
            return row if op.mode == "one" or row is None else row[0]


Db = SyncDb | AsyncDb


def sync(conn) -> SyncDb:
    return conn if isinstance(conn, SyncDb) else SyncDb(conn)


def port(conn) -> Db:
    """The port on ``conn``: async for an async psycopg connection, else sync."""
    if isinstance(conn, (SyncDb, AsyncDb)):
        return conn
    if isinstance(conn, psycopg.AsyncConnection):
        return AsyncDb(conn)
    return SyncDb(conn)


class Planned(Generic[P, T]):
    """A core function written once as a plan (``fn(db, ...)``, a generator). Called with a
    SQLAlchemy connection (or a ``SyncDb``) it runs now and returns its value; on an async
    psycopg connection (or an ``AsyncDb``) it is awaited through ``aio``, which returns an
    awaitable, never "either". The bare generator is ``.plan``, for composing plans
    (``yield from other.plan(db, ...)``)."""

    def __init__(self, fn: Callable[Concatenate[Any, P], Plan[T]]):
        self.plan = fn
        functools.update_wrapper(self, fn)

    def __call__(self, conn: sa.Connection | SyncDb, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if isinstance(conn, (AsyncDb, psycopg.AsyncConnection)):
            raise TypeError(
                f"{self.plan.__name__}: an async connection; use await {self.plan.__name__}.aio(conn, ...)"
            )
        db = sync(conn)
        return db.run(self.plan(db, *args, **kwargs))

    def aio(
        self, conn: psycopg.AsyncConnection | AsyncDb, /, *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]:
        db = conn if isinstance(conn, AsyncDb) else AsyncDb(conn)
        return db.run(self.plan(db, *args, **kwargs))


def plan(fn: Callable[Concatenate[Any, P], Plan[T]]) -> Planned[P, T]:
    """``Planned(fn)``: a core function on the port (see ``Planned``)."""
    return Planned(fn)
