"""Whether the database answers and whether it can commit, known at any moment.

``/health`` must answer within a second whatever the database does, and while every
request thread is blocked on it: it cannot run a query of its own on the request's pool.
A ``Probe`` checks on a connection and a thread of its own: a ``select 1``, then an update of
``health_probe`` committed within ``COMMIT_BUDGET`` seconds (a commit waits for a
synchronous standby; a wait cancelled at the budget is answered with a WARNING: it cannot
commit). ``state()`` wakes the thread and waits, at most ``ANSWER_WITHIN`` seconds, for a
check that ends after the question (never one made before it); none by then reads as "no answer" (a
connection attempt to a host that does not answer, a server that stopped). Between
questions the thread checks every ``INTERVAL`` seconds, and sleeps after ``IDLE`` seconds
without one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Mapping

import psycopg

from . import deadline
from .db import pyformat, session_options
from .sql import queries

log = logging.getLogger(__name__)

INTERVAL = 0.5
IDLE = 30.0
COMMIT_BUDGET = 0.4
ANSWER_WITHIN = 0.7


@dataclasses.dataclass(frozen=True)
class State:
    answers: bool
    commits: bool
    reason: str = ""
    finished: float = 0.0  # monotonic time the check ended

    @property
    def ok(self) -> bool:
        return self.answers and self.commits


class Probe:
    def __init__(self, url: str, settings: Mapping):
        self.url = url
        self.options = session_options(settings)
        self._latest: State | None = None
        self._asked = 0.0
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._conn: psycopg.Connection | None = None
        self._notices: deadline.Notices | None = None
        self._lock = threading.Lock()
        self._done = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()

    def state(self) -> State:
        """What the database does now: a check that ended after this question, within
        ``ANSWER_WITHIN`` seconds (or "no answer")."""
        asked = self._asked = time.monotonic()
        self._ensure_running()
        self._wake.set()
        with self._done:
            self._done.wait_for(
                lambda: self._latest is not None and self._latest.finished >= asked, ANSWER_WITHIN
            )
            latest = self._latest
        if latest is None or latest.finished < asked:
            return State(False, False, f"the database did not answer within {ANSWER_WITHIN} s", asked)
        return latest

    def _ensure_running(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
                return
            if self._pid != os.getpid():  # a forked child: the parent's connection is not ours
                self._conn = None
            self._pid = os.getpid()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="pdam-health-probe", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() - self._asked < IDLE:
            self._wake.clear()
            state = dataclasses.replace(self._check(), finished=time.monotonic())
            with self._done:
                self._latest = state
                self._done.notify_all()
            self._wake.wait(INTERVAL)
        self._close()

    def _check(self) -> State:
        statements = queries("health")
        try:
            conn = self._connect()
            with deadline.bounded(2 * COMMIT_BUDGET) as scope, conn.cursor() as cur:  # a server that hangs
                scope.adopt(conn)
                cur.execute(pyformat(statements["answers"]))
            conn.rollback()
        except Exception as exc:
            self._close()
            return State(False, False, f"the database does not answer: {type(exc).__name__}")
        try:
            with deadline.bounded(2 * COMMIT_BUDGET) as scope:  # cancelled at the budget
                scope.adopt(conn)
                with deadline.confirm_commit(self._notices):
                    with conn.cursor() as cur:
                        cur.execute(pyformat(statements["beat"]))
                    conn.commit()
        except deadline.CommitUnconfirmed:
            return State(True, False, "the database cannot commit: a commit waits for a synchronous standby")
        except psycopg.errors.ReadOnlySqlTransaction:
            self._close()
            return State(True, False, "the database is read-only (a standby)")
        except Exception as exc:
            self._close()
            return State(True, False, f"the database cannot commit: {type(exc).__name__}")
        return State(True, True)

    def _connect(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self.url,
                connect_timeout=2,
                options=self.options,
                application_name="pdam-health",
            )
            self._notices = deadline.watch_notices(self._conn)
        return self._conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def stop(self) -> None:
        self._stop.set()
