"""Whether the database answers and whether it can commit, known at any moment.

``/health`` must answer within a second whatever the database does, and while every
request thread is blocked on it: it cannot run a query of its own on the request's pool.
A ``Probe`` checks on a connection and a thread of its own (an engine of one connection,
``make_engine``'s, so through the port like every other statement): a ``select 1``, then an
update of ``health_probe`` committed within ``COMMIT_BUDGET`` seconds (a commit waits for a
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
from collections.abc import Iterator, Mapping

import psycopg
import sqlalchemy as sa

from . import deadline, port
from .db import driver_connection, make_engine
from .port import Plan
from .sql import queries

log = logging.getLogger(__name__)
Q = queries("health")

INTERVAL = 0.5
IDLE = 30.0
COMMIT_BUDGET = 0.4
ANSWER_WITHIN = 0.7
#: Seconds to open the probe's connection (a host that does not answer).
CONNECT_TIMEOUT = 2


@port.plan
def answers(db: port.Db) -> Plan[None]:
    """The database answers a statement."""
    yield port.scalar(Q["answers"], alone=True)


@port.plan
def beat(db: port.Db) -> Plan[None]:
    """``health_probe`` updated as a transaction of its own: its commit waits for a
    synchronous standby as a payment's does (a WARNING then: ``CommitUnconfirmed``)."""
    yield port.count(Q["beat"], alone=True)


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
        # One connection, kept between checks; the pool discards it once the server closed it.
        self.engine = make_engine(
            url,
            settings,
            connect_args={"connect_timeout": CONNECT_TIMEOUT, "application_name": "pdam-health"},
            pool_size=1,
            max_overflow=0,
        )
        self._latest: State | None = None
        self._asked = 0.0
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
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
            if self._pid is not None and self._pid != os.getpid():
                self.engine.dispose(close=False)  # a forked child: the parent's connection is not ours
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
        try:
            with self._connection() as conn:  # a server that hangs: cut off at the budget
                answers(conn)
        except Exception as exc:
            return State(False, False, f"the database does not answer: {_failure(exc)}")
        try:
            with self._connection() as conn:  # a commit's wait cancelled at the budget
                beat(conn)
        except deadline.CommitUnconfirmed:
            return State(True, False, "the database cannot commit: a commit waits for a synchronous standby")
        except port.Permanent as exc:
            if isinstance(exc.__cause__, psycopg.errors.ReadOnlySqlTransaction):
                return State(True, False, "the database is read-only (a standby)")
            return State(True, False, f"the database cannot commit: {_failure(exc)}")
        except Exception as exc:
            return State(True, False, f"the database cannot commit: {_failure(exc)}")
        return State(True, True)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sa.Connection]:
        """The probe's connection (opened within ``CONNECT_TIMEOUT``), its work then bounded by
        ``2 * COMMIT_BUDGET`` seconds. Any failure but an unconfirmed commit discards it: the
        next check connects again (a multi-host URL then finds the new primary)."""
        with self.engine.connect() as conn, deadline.bounded(2 * COMMIT_BUDGET) as scope:
            scope.adopt(driver_connection(conn))
            try:
                yield conn
            except deadline.CommitUnconfirmed:
                raise
            except BaseException:
                conn.invalidate()
                raise

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            self.engine.dispose()

    def stop(self) -> None:
        self._stop.set()


def _failure(exc: BaseException) -> str:
    """The driver's name for a failure (the port's error names its cause)."""
    if isinstance(exc, (port.Transient, port.Permanent)) and exc.__cause__ is not None:
        exc = exc.__cause__
    return type(exc).__name__
