"""The job server: the Procrastinate App on the payments database, its tasks, and the
orchestration around the core (transactions, retry decisions, delivery).

Nothing here builds a web app: the worker has a ``Runtime`` of its own (settings,
database, clock). Importing this package has no side effect: the database is
reached when the worker opens the App (``pool_factory`` below) or a task runs.
Start a worker with ``python -m jobs`` (supervised, as the Procfile does) or
``python -m jobs.worker``.
"""

from __future__ import annotations

import procrastinate
import psycopg_pool

from pdam.core.errors import Retry
from pdam.infra import db, settings
from pdam.infra.runtime import Runtime

runtime = Runtime(settings.load())
cfg = runtime.settings


def make_pool(url: str, conf, **kwargs) -> psycopg_pool.AsyncConnectionPool:
    """The queue's pool on ``url``. A job waits at most 5 x DB_CONNECT_TIMEOUT for a
    connection: a worker that lost its database stops within that time (instead of the
    pool's default 30 s) and its supervisor restarts it. Its connections get the session
    of the web's (``db.session_options``: timeouts, UTC): posting runs on them."""
    timeout = 5 * max(1, conf["DB_CONNECT_TIMEOUT"])
    session = {"options": db.session_options(conf)}
    return psycopg_pool.AsyncConnectionPool(conninfo=url, timeout=timeout, kwargs=session, **kwargs)


def _pool(**kwargs) -> psycopg_pool.AsyncConnectionPool:
    """``make_pool`` on the database the runtime resolves (the embedded one when
    DATABASE_URL is not set) at the moment the worker opens the App."""
    return make_pool(runtime.database.url, cfg, **kwargs)


app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(pool_factory=_pool),
    import_paths=["jobs.posting", "jobs.maintenance", "jobs.webhooks"],
    worker_defaults={
        # A worker silent for STALLED_JOB_SECONDS counts as dead; its jobs are retried.
        "update_heartbeat_interval": max(1.0, cfg["STALLED_JOB_SECONDS"] / 6),
        "stalled_worker_timeout": cfg["STALLED_JOB_SECONDS"],
        # A retried job waits for this poll: keep retries close to their configured interval.
        "fetch_job_polling_interval": max(
            0.2, min(5.0, cfg["WEBHOOK_RETRY_SECONDS"] / 5, cfg["POSTING_RETRY_SECONDS"] / 5)
        ),
    },
)


class RetryOnType(procrastinate.BaseRetryStrategy):
    """The one retry decision: retry a job whose attempt raised ``core.errors.Retry``, in
    ``seconds``; anything else ends it. The orchestration decides which one it raises
    (attempts left, failure that can pass); this reads only the type."""

    def __init__(self, seconds: int):
        self.seconds = seconds

    def get_retry_decision(self, *, exception, job):
        if not isinstance(exception, Retry):
            return None
        return procrastinate.RetryDecision(retry_in={"seconds": self.seconds})
