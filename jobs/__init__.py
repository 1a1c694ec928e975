"""The job server: the Procrastinate App on the payments database, its tasks, and the
orchestration around the core (transactions, retry decisions, delivery).

Nothing here builds a web app: the worker has a ``Runtime`` of its own (settings,
database, clock), made when it starts (``configure``); ``current()`` is that one, and an
error before ``configure`` ran (never a runtime quietly made from the environment). Importing this
package reads no setting and reaches no database: the database is reached when the
worker opens the App (``pool_factory`` below) or a task runs. Start a worker with
``python -m jobs`` (supervised, as the Procfile does) or ``python -m jobs.worker``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager

import procrastinate
import psycopg
import psycopg_pool

import pdam
from pdam.core.errors import Retry
from pdam.infra import db, settings
from pdam.infra.runtime import Runtime

_runtime: Runtime | None = None


def configure(conf: Mapping | None = None) -> Runtime:
    """The job server's runtime, from ``conf`` (default: the environment, read now); the
    edges' registrations are loaded (``pdam.EDGES``: the callback protocols the tasks
    render and send through ``pdam.core.events``; ``jobs`` imports no edge itself)."""
    global _runtime
    pdam.load_edges()
    _runtime = Runtime(settings.load() if conf is None else conf)
    return _runtime


class NotConfigured(RuntimeError):
    """The job server is not configured: ``jobs.configure()`` (the worker's start) makes its runtime."""


def current() -> Runtime:
    """The runtime ``configure`` made; ``NotConfigured`` before it ran."""
    if _runtime is None:
        raise NotConfigured(NotConfigured.__doc__)
    return _runtime


def worker_options(conf: Mapping) -> dict:
    """The worker's options that follow the settings."""
    return {
        # A worker silent for STALLED_JOB_SECONDS counts as dead; its jobs are retried.
        "update_heartbeat_interval": max(1.0, conf["STALLED_JOB_SECONDS"] / 6),
        "stalled_worker_timeout": conf["STALLED_JOB_SECONDS"],
        # A retried job waits for this poll: keep retries close to their configured interval.
        "fetch_job_polling_interval": max(
            0.2, min(5.0, conf["WEBHOOK_RETRY_SECONDS"] / 5, conf["POSTING_RETRY_SECONDS"] / 5)
        ),
    }


#: Where a task takes its connections: ``app.connector.pool.connection`` in the worker (the
#: block's work rolled back on error, committed at its end otherwise).
Connect = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection]]


def make_pool(url: str, conf, **kwargs) -> psycopg_pool.AsyncConnectionPool:
    """The queue's pool on ``url``. A job waits at most 5 x DB_CONNECT_TIMEOUT for a
    connection: a worker that lost its database stops within that time (instead of the
    pool's default 30 s) and its supervisor restarts it. Its connections get the session
    of the web's (``db.session_options``: timeouts, UTC): posting runs on them. A connection
    the server closed (a restart) is replaced before use by ``db.check_async``, which reads
    the socket without a round trip, whatever check is asked for (Procrastinate's connector
    asks for psycopg_pool's ``check_connection``: an empty query on every checkout, some
    seven a payment). Everything runs on it (posting, the callback dispatcher's drains,
    maintenance: one driver, one pool), so it has a connection for every posting slot and
    callback slot, and two for the queue's own work; a drain holds one only while it reads
    or records, never during the HTTP call.

    Its connections are in autocommit, so each of Procrastinate's statements (fetch a job,
    finish it) is one round trip instead of three (BEGIN, the statement, COMMIT). The plans
    of the core begin their transaction with their first step that is not a statement
    ``alone`` (``port.AsyncDb``), as on a connection out of autocommit; a connection comes
    back to the pool in autocommit again (``reset``). (Set by ``configure``, not in the
    connection arguments: Procrastinate opens its LISTEN session with those and
    ``autocommit`` of its own.)"""
    timeout = 5 * max(1, conf["DB_CONNECT_TIMEOUT"])
    session = {"options": db.session_options(conf)}
    kwargs["check"] = db.check_async
    kwargs["configure"] = kwargs["reset"] = _autocommit
    kwargs.setdefault("min_size", 2)
    kwargs.setdefault("max_size", conf["WORKER_CONCURRENCY"] + conf["WEBHOOK_CONCURRENCY"] + 2)
    return psycopg_pool.AsyncConnectionPool(conninfo=url, timeout=timeout, kwargs=session, **kwargs)


async def _autocommit(conn: psycopg.AsyncConnection) -> None:
    await conn.set_autocommit(True)


def ledger_connection(rt: Runtime) -> Awaitable[psycopg.AsyncConnection]:
    """A connection of its own to a separate billing ledger (``BILLING_DATABASE_URL``), with
    the session of the pool's; ``async with await ledger_connection(rt)`` commits at the end
    of the block, rolls back on error."""
    return _connect(rt.database.ledger_url, rt.settings)


def session(rt: Runtime) -> Awaitable[psycopg.AsyncConnection]:
    """A session of its own on the payments database (autocommit), for what lives as long
    as the connection: the callback dispatcher's LISTEN and its lanes' advisory locks."""
    return _connect(rt.database.url, rt.settings, autocommit=True)


def _connect(url: str, conf, **kwargs) -> Awaitable[psycopg.AsyncConnection]:
    """An async connection of its own on ``url``, with the pool's session and connect timeout."""
    return psycopg.AsyncConnection.connect(
        url, connect_timeout=conf["DB_CONNECT_TIMEOUT"], options=db.session_options(conf), **kwargs
    )


def _pool(**kwargs) -> psycopg_pool.AsyncConnectionPool:
    """``make_pool`` on the database the runtime resolves (the embedded one when
    DATABASE_URL is not set) at the moment the worker opens the App."""
    rt = current()
    return make_pool(rt.database.url, rt.settings, **kwargs)


app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(pool_factory=_pool),
    import_paths=["jobs.posting", "jobs.maintenance"],
)


class RetryOnType(procrastinate.BaseRetryStrategy):
    """The one retry decision: retry a job whose attempt raised ``core.errors.Retry``, in
    the seconds of the setting ``seconds_setting`` (read when the decision is made);
    anything else ends it. The orchestration decides which one it raises (attempts left,
    failure that can pass); this reads only the type."""

    def __init__(self, seconds_setting: str):
        self.seconds_setting = seconds_setting

    def get_retry_decision(self, *, exception, job):
        if not isinstance(exception, Retry):
            return None
        setting = "SANDBOX_RETRY_SECONDS" if exception.soon else self.seconds_setting
        return procrastinate.RetryDecision(retry_in={"seconds": current().settings[setting]})
