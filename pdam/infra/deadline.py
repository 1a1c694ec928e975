"""Bounded time: a deadline over the database work of one request or one job.

``bounded(seconds)`` opens a scope on the calling thread. Every connection the thread
checks out of an engine's pool meanwhile is watched (``make_engine``'s pool events call
``adopt``). When the scope is still open ``margin`` seconds before its end, one watchdog
thread per process sends PostgreSQL a cancel for each of those connections
(psycopg's ``cancel_safe``): a statement stuck on a lock, on a server that stopped
answering or on a commit waiting for a synchronous standby ends at once. If a connection
is still busy a second later (the server cannot even take a cancel), its socket is shut
down: the driver raises "connection lost", the pool discards it. Either way the caller gets
a transient error in time to answer 503 before the deadline.

A commit whose wait for a synchronous standby was cancelled (by this watchdog, an operator's
``pg_cancel_backend``, anything) does not fail: PostgreSQL answers it with a WARNING
("canceling wait for synchronous replication ... the transaction has already committed
locally, but might not have been replicated") and commits locally. Such a commit is not
confirmed: ``confirm_commit`` turns any WARNING received during a commit into
``CommitUnconfirmed`` (transient: 503, or the job runs again; the work is idempotent, so a
partner's retry with the same ``pid`` finds the one payment).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)

#: Seconds before the end of a scope at which its connections' statements are cancelled,
#: and after which a connection still busy has its socket shut down (half of it each).
MARGIN_SECONDS = 2.0


class CommitUnconfirmed(Exception):
    """The commit was not confirmed in time (a synchronous standby did not acknowledge it);
    it may have happened: retry with the same identifiers"""


class DeadlineExceeded(Exception):
    """The request's (or job's) time for database work is over"""


class Scope:
    """The connections one request or job is using, and when their work must end."""

    def __init__(self, seconds: float, margin: float = MARGIN_SECONDS):
        margin = min(margin, seconds / 2)
        self.started = time.monotonic()
        self.cancel_at = self.started + seconds - margin
        self.shutdown_at = self.started + seconds - margin / 2
        self.connections: list = []
        self.cancelled = False
        self.done = False
        self.lock = threading.Lock()

    def adopt(self, connection) -> None:
        with self.lock:
            if connection not in self.connections:
                self.connections.append(connection)

    def expired(self) -> bool:
        return time.monotonic() >= self.cancel_at

    def close(self) -> None:
        with self.lock:  # waits for a cancel being sent: none reaches the next user of a connection
            self.done = True
            self.connections.clear()

    def cancel(self) -> None:
        """Cancel the connections' statements; shut down the sockets of those still busy a
        moment later. Runs on a thread of its own (a cancel opens a connection)."""
        with self.lock:
            if self.done:
                return
            self.cancelled = True
            busy = [c for c in self.connections if _busy(c)]
            for conn in busy:
                try:
                    conn.cancel_safe(timeout=max(0.2, self.shutdown_at - time.monotonic()))
                except Exception as exc:  # the server cannot be reached: the shutdown below ends it
                    log.warning("could not cancel a statement past the deadline: %s", type(exc).__name__)
        time.sleep(max(0.0, self.shutdown_at - time.monotonic()))
        with self.lock:
            if self.done:
                return
            for conn in busy:
                if _busy(conn):
                    _shutdown(conn)


def _busy(conn) -> bool:
    try:
        return not conn.closed and conn.pgconn.transaction_status == _ACTIVE
    except Exception:
        return False


def _shutdown(conn) -> None:
    """Shut the socket down under a statement the server never answered (the driver raises
    OperationalError in its thread; the pool discards the connection)."""
    with contextlib.suppress(Exception):
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:  # closes the duplicate only
            sock.shutdown(socket.SHUT_RDWR)
        log.warning("a statement past the deadline did not end on a cancel: connection shut down")


try:
    from psycopg.pq import TransactionStatus

    _ACTIVE = TransactionStatus.ACTIVE
except ImportError:  # pragma: no cover
    _ACTIVE = 1


class Watchdog:
    """One thread per process that cancels the work of scopes past their time."""

    def __init__(self):
        self._heap: list[tuple[float, int, Scope]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._pid = None

    def watch(self, scope: Scope) -> None:
        with self._cond:
            if self._pid != os.getpid():  # first use, or a forked child: the thread is not there
                self._heap.clear()
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="pdam-deadline", daemon=True).start()
            heapq.heappush(self._heap, (scope.cancel_at, next(self._seq), scope))
            if self._heap[0][2] is scope:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                due, _, scope = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            threading.Thread(target=scope.cancel, name="pdam-deadline-cancel", daemon=True).start()


_watchdog = Watchdog()
_local = threading.local()


def current() -> Scope | None:
    return getattr(_local, "scope", None)


@contextlib.contextmanager
def bounded(seconds: float) -> Iterator[Scope]:
    """A deadline over the database work this thread does inside the block."""
    outer = current()
    scope = Scope(seconds)
    _local.scope = scope
    _watchdog.watch(scope)
    try:
        yield scope
    finally:
        scope.close()
        _local.scope = outer


def adopt(connection) -> None:
    """Watch ``connection`` (a psycopg connection) for the current scope, if any."""
    scope = current()
    if scope is not None:
        scope.adopt(connection)


def check() -> None:
    """Raise ``DeadlineExceeded`` when the current scope's time for database work is over."""
    scope = current()
    if scope is not None and scope.expired():
        raise DeadlineExceeded()


# --- WARNINGs received during a commit -------------------------------------------------


class Notices:
    """The WARNINGs a connection received (a handler of its own, added once per connection)."""

    def __init__(self):
        self.warnings: list[str] = []

    def __call__(self, diag) -> None:
        if diag.severity_nonlocalized == "WARNING" and len(self.warnings) < 10:
            self.warnings.append(diag.message_primary or "")


def watch_notices(connection) -> Notices:
    notices = Notices()
    connection.add_notice_handler(notices)
    return notices


@contextlib.contextmanager
def confirm_commit(notices: Notices | None) -> Iterator[None]:
    """Around a COMMIT: a WARNING received meanwhile (a cancelled wait for a synchronous
    standby: committed locally, perhaps not replicated) makes it ``CommitUnconfirmed``."""
    if notices is None:
        yield
        return
    notices.warnings.clear()
    yield
    if notices.warnings:
        warning = notices.warnings[0]
        notices.warnings.clear()
        log.warning("commit not confirmed: %s", warning)
        raise CommitUnconfirmed(warning)
