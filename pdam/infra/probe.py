"""Whether the database answers and whether it can commit, known at any moment.

``/health`` must answer within a second whatever the database does, and while every
request thread is blocked on it: it cannot run a query of its own on the request's pool.
A ``Probe`` checks on a connection and a thread of its own, every ``INTERVAL`` seconds while
someone asks (it sleeps after ``IDLE`` seconds without a question): a ``select 1``, then an
update of ``health_probe`` committed within ``COMMIT_BUDGET`` seconds (a commit waits for a
synchronous standby; a wait cancelled at the budget is answered with a WARNING: it cannot
commit). ``state()`` returns what the last check found at once; a check still running after
``STALE`` seconds (a connection attempt to a host that does not answer) reads as "no answer".
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
COMMIT_BUDGET = 0.6
STALE = 1.5
#: How long the first question waits for the first check (a fresh process).
FIRST_WAIT = 0.8


@dataclasses.dataclass(frozen=True)
class State:
    answers: bool
    commits: bool
    reason: str = ""
    at: float = 0.0  # monotonic time of the check

    @property
    def ok(self) -> bool:
        return self.answers and self.commits


UNKNOWN = State(False, False, "no answer yet")


class Probe:
    def __init__(self, url: str, settings: Mapping):
        self.url = url
        self.options = session_options(settings)
        self._latest: State | None = None
        self._running_since: float | None = None
        self._asked = 0.0
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()
        self._checked = threading.Event()
        self._stop = threading.Event()

    def state(self) -> State:
        """What the database does now, at once (at most ``FIRST_WAIT`` for a first check)."""
        self._asked = time.monotonic()
        self._ensure_running()
        if self._latest is None:
            self._checked.wait(FIRST_WAIT)
        running = self._running_since
        if running is not None and time.monotonic() - running > STALE:
            return State(False, False, f"no answer for {time.monotonic() - running:.1f} s", running)
        return self._latest or UNKNOWN

    def _ensure_running(self) -> None:
        with self._lock:
            alive = self._thread is not None and self._thread.is_alive() and self._pid == os.getpid()
            if alive:
                return
            if self._pid != os.getpid():  # a forked child: the parent's connection is not ours
                self._conn = None
                self._latest = None
                self._running_since = None
            self._pid = os.getpid()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="pdam-health-probe", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() - self._asked < IDLE:
            self._running_since = time.monotonic()
            state = self._check()
            self._latest = dataclasses.replace(state, at=time.monotonic())
            self._running_since = None
            self._checked.set()
            self._stop.wait(INTERVAL)
        self._close()

    def _check(self) -> State:
        statements = queries("health")
        try:
            conn = self._connect()
            with conn.cursor() as cur:
                cur.execute(pyformat(statements["answers"]))
        except Exception as exc:
            self._close()
            return State(False, False, f"the database does not answer: {type(exc).__name__}")
        try:
            with deadline.bounded(2 * COMMIT_BUDGET) as scope:
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
