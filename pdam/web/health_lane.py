"""``/health`` answered beside gunicorn's request threads, never behind them.

gunicorn's threaded worker hands each connection with a request to its thread pool
(``WEB_THREADS`` threads); while every thread waits on the database, a health check would
wait in the pool's queue. ``install(worker)`` (gunicorn.conf.py's ``post_worker_init``)
gives the worker a lane of its own: before a connection goes to the pool, the worker's
loop peeks at the first bytes the client sent (``MSG_PEEK``: nothing is consumed); a
``GET /health`` request is served by a small pool of its own, every other request as before.
A connection whose request has not arrived yet waits on the worker's poller (as gunicorn's
own pending connections do) and is sorted when its first bytes come.

The health view answers from a probe that runs on a connection and thread of its own
(``pdam/infra/probe.py``), so this lane is never held by the database either. A worker
class without ``enqueue_req`` (not gunicorn's threaded one) is left as it is.
"""

from __future__ import annotations

import selectors
import socket
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from functools import partial

#: When each connection's current request arrived (its first bytes were seen), by socket:
#: the request's deadline counts from then, its time waiting for a thread included.
_ARRIVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def arrived(environ) -> float | None:
    """When the request being served in ``environ`` arrived (monotonic), if this lane saw it."""
    sock = environ.get("gunicorn.socket")
    try:
        return _ARRIVED.get(sock) if sock is not None else None
    except TypeError:  # not weak-referenceable
        return None


#: A request line that starts so is served on the health lane (``/health``, ``/health/live``).
PREFIX = b"GET /health"
THREADS = 2


def install(worker) -> bool:
    """Give a gunicorn threaded worker its health lane; False for another worker class."""
    enqueue = getattr(worker, "enqueue_req", None)
    if enqueue is None or not hasattr(worker, "pending_conns") or not hasattr(worker, "poller"):
        return False
    lane = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="pdam-health")

    def to_lane(conn) -> None:
        fs = lane.submit(worker.handle, conn)
        fs.add_done_callback(lambda fut: worker.method_queue.defer(worker.finish_request, conn, fut))

    def sort(conn) -> None:
        """Runs on the worker's loop (accept, poller callbacks, finished requests)."""
        try:
            head = conn.sock.recv(len(PREFIX), socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            head = None  # nothing sent yet
        except OSError:
            head = b""
        if head is None and not getattr(conn, "pdam_waited", False):
            # Wait for the first bytes on the poller, as gunicorn's deferred connections do
            # (its keep-alive timeout closes one that never sends).
            conn.pdam_waited = True
            conn.sock.setblocking(False)
            conn.timeout = time.monotonic() + worker.cfg.keepalive
            worker.pending_conns.append(conn)
            worker.poller.register(
                conn.sock, selectors.EVENT_READ, partial(worker.on_pending_socket_readable, conn)
            )
            return
        conn.pdam_waited = False
        try:
            _ARRIVED[conn.sock] = time.monotonic()
        except TypeError:
            pass
        if head == PREFIX:
            to_lane(conn)
        else:
            enqueue(conn)

    worker.enqueue_req = sort
    return True
