"""A candidate measured by bench/slow_clients.py, not shipped: gunicorn's gthread with a read
deadline per request. A timer shuts the connection down when a request has not been read
whole within WEB_READ_TIMEOUT_SECONDS (10) of the thread taking it, so a dribbler is cut, but
it holds its thread until then. Run as ``--worker-class deadline_worker.DeadlineWorker``
with ``--pythonpath bench``."""

from __future__ import annotations

import os
import socket
import threading

from gunicorn.workers import gthread

READ_TIMEOUT = float(os.environ.get("WEB_READ_TIMEOUT_SECONDS", "10"))


class DeadlineWorker(gthread.ThreadWorker):
    def handle(self, conn):
        done = threading.Event()

        def expire():
            if not done.is_set():
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        timer = threading.Timer(READ_TIMEOUT, expire)
        timer.daemon = True
        timer.start()
        try:
            return super().handle(conn)
        finally:
            done.set()
            timer.cancel()
