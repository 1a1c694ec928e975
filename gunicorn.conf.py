"""gunicorn settings, from the same environment variables as the app."""

import gc
import os
import shutil
import tempfile

# /metrics adds up every worker's series (prometheus-client's multiprocess mode): each
# process writes its own files in this folder, which must be set before the app (and so
# prometheus_client) is imported, and start empty.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pdam-metrics-")
shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from gunicorn.glogging import Logger  # noqa: E402

from pdam.infra.logs import DICT_CONFIG, skip_unused_record_fields  # noqa: E402


class NoAccessLines(Logger):
    """gunicorn's own lines, through the app's JSON set-up, but no access line: the app writes
    one line per request (``pdam.request``: the route template, never the raw path, whose
    query string may hold a payment's ``pat`` or ``pid``). gunicorn writes access lines
    whenever ``logconfig_dict`` is set, building them for every request."""

    access_log_enabled = False


bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
# gthread, reading each request whole before a thread parses it (slow clients hold no
# thread) and answering gunicorn's own errors (414, 431, 400, 408) in JSON: pdam/web/server.py.
worker_class = "pdam.web.server.BufferingWorker"
threads = int(os.environ.get("WEB_THREADS", "1"))
keepalive = 5
# The proxies whose X-Forwarded-For entry is the client (the app reads the same variable:
# pdam/web/addresses.py); gunicorn's own default, named here.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1,::1"
timeout = 30
graceful_timeout = 20
# Build the app once in the master; each worker gets fresh connections (post_fork).
preload_app = True
accesslog = None
logger_class = NoAccessLines
# JSON lines, the app's and gunicorn's own (pdam/infra/logs.py).
logconfig_dict = DICT_CONFIG
skip_unused_record_fields()
# No shared control socket: several web processes may run on one host.
control_socket_disable = True


def _runtime(server):
    """The pdam runtime of the app gunicorn serves (loaded in the master: preload_app);
    None for another WSGI app (bench/bare.py runs under these same settings)."""
    return getattr(server.app.wsgi(), "extensions", {}).get("pdam.runtime")


def on_starting(server):
    """Refuse to start when SECRET_KEYS cannot open the database's secrets (missing, or
    not the keys that sealed them): gunicorn prints the reason and exits 1. A database
    that cannot be reached now does not stop it: the check runs again on first use."""
    from pdam.infra.port import is_transient
    from pdam.infra.sealing import SealingError

    runtime = _runtime(server)
    if runtime is None:
        return
    try:
        runtime.ready_database()
    except Exception as exc:
        if isinstance(exc, SealingError) or not is_transient(exc):
            raise
        server.log.warning("database not reachable at start; secrets checked on first use")


def pre_fork(server, worker):
    """Resolve the database once, in the master (starting the embedded server when
    DATABASE_URL is not set), not in every worker at once. Then move everything the
    app built into the garbage collector's permanent generation: a worker's full
    collection no longer walks the app's ~90,000 objects (a 35 ms pause, the p99 of a
    route at 200 requests/s), and their pages stay shared with the master."""
    runtime = _runtime(server)
    if runtime is not None:
        runtime.database  # noqa: B018
    gc.freeze()


def post_fork(server, worker):
    runtime = _runtime(server)
    if runtime is not None:
        runtime.dispose()


def post_worker_init(worker):
    """/health on a lane of its own, never queued behind request threads blocked on the
    database (pdam/web/health_lane.py)."""
    from pdam.web import health_lane

    health_lane.install(worker)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
