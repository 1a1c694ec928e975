"""``python -m jobs.worker``: one worker process, JSON logs: Procrastinate's run loop on
posting and maintenance, and the callback dispatcher beside it, on slots of their own
(``bulkheads``).

Procrastinate stops its worker when it loses the database (its listener or a side
task fails, and ``run_worker`` returns); the dispatcher starts its own sessions again by
itself, and stops with the run loop. This process does not end then: it opens the App
again and starts both again after a short pause (``RESTART_PAUSE``, doubling
up to ``RESTART_PAUSE_MAX`` while the database stays away), until SIGTERM or SIGINT
stops it gracefully. So a failover (the standby promoted, ``DATABASE_URL`` listing both
hosts) or a restarted server is picked up without anyone restarting the worker. The
supervisor in ``jobs/__main__.py`` is for what this cannot survive (a crash).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
import sys

from pdam.infra import logs, port
from pdam.infra.queue import MAINTENANCE_QUEUE, POSTING_QUEUE
from pdam.infra.sealing import SealingError

from . import app, configure, current, maintenance, session, worker_options
from .webhooks import Dispatcher

#: The exit status of a worker that cannot open the database's secrets: a configuration
#: error, which ``python -m jobs`` does not restart (sysexits' EX_CONFIG).
EXIT_CONFIG = 78

log = logging.getLogger(__name__)

RESTART_PAUSE = 0.5
RESTART_PAUSE_MAX = 5.0
#: A run loop that lasted this long was healthy: the next pause starts small again.
HEALTHY_SECONDS = 60.0


def bulkheads(conf, name: str) -> dict:
    """Posting's run loop (and maintenance's) on WORKER_CONCURRENCY slots; callbacks are
    the dispatcher's, on WEBHOOK_CONCURRENCY slots of its own (contract 15.1): a receiver
    that stalls holds callback slots only, never posting's, and per receiver at most
    ``core.webhooks.HOST_LANES`` deliveries are in flight (one sender per lane)."""
    return {
        "queues": [POSTING_QUEUE, MAINTENANCE_QUEUE],
        "concurrency": conf["WORKER_CONCURRENCY"],
        "name": name,
    }


def dispatcher(conf) -> Dispatcher:
    """The callback dispatcher on the App's pool (open), sweeping as often as the queue polls."""
    return Dispatcher(
        current(),
        app.connector.pool.connection,
        lambda: session(current()),
        slots=conf["WEBHOOK_CONCURRENCY"],
        sweep_seconds=worker_options(conf)["fetch_job_polling_interval"],
    )


async def serve(stop: asyncio.Event, *loops: dict, callbacks=None, **options) -> int:
    """Run the worker's run loops (``loops``: each one's options; one loop with ``options``
    alone when none is given) and, if given, the dispatcher ``callbacks()`` makes, until
    ``stop`` is set, starting them all again whenever one ends on its own (a lost
    database). Returns how many times they started."""
    loop = asyncio.get_running_loop()
    pause = RESTART_PAUSE
    runs = 0
    loops = tuple({**options, **one} for one in loops) or (options,)
    while not stop.is_set():
        runs += 1
        started = loop.time()
        try:
            async with app.open_async():
                running = {
                    asyncio.ensure_future(app.run_worker_async(install_signal_handlers=False, **one))
                    for one in loops
                }
                road = callbacks() if callbacks else None
                dispatching = asyncio.ensure_future(road.run()) if road else None
                halt = asyncio.ensure_future(stop.wait())
                everything = {*running, halt, *([dispatching] if dispatching else [])}
                done, _ = await asyncio.wait(everything, return_when=asyncio.FIRST_COMPLETED)
                halt.cancel()
                if road:  # its drains end after their current attempt
                    road.stop()
                for run in running:  # asked to stop, or one ended: each finishes its jobs, then ends
                    if not run.done():
                        run.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await run
                if dispatching:
                    await asyncio.wait({dispatching})
                    if dispatching not in done and not dispatching.cancelled() and dispatching.exception():
                        log.warning("callback dispatcher ended: %r", dispatching.exception())
                for run in done - {halt}:
                    run.result()  # its error, if it ended with one
        except Exception as exc:
            if not port.is_transient(exc):
                raise
            log.warning("worker run loop lost the database: %r", exc)
        if stop.is_set():
            break
        pause = (
            RESTART_PAUSE if loop.time() - started > HEALTHY_SECONDS else min(pause * 2, RESTART_PAUSE_MAX)
        )
        log.warning("worker run loop ended; starting it again in %.1f s", pause)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
    return runs


async def _main(conf) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # Name look-ups run on the loop's default executor: a callback's (pdam/infra/http.py)
    # and psycopg's when a slot opens a connection (a posting's ledger connection, the
    # pool's). A thread for every slot, so a slow resolver never makes another slot wait.
    loop.set_default_executor(
        concurrent.futures.ThreadPoolExecutor(conf["WORKER_CONCURRENCY"] + conf["WEBHOOK_CONCURRENCY"] + 2)
    )
    name = os.environ.get("WORKER_NAME", f"worker-{os.getpid()}")
    await serve(stop, bulkheads(conf, name), callbacks=lambda: dispatcher(conf), **worker_options(conf))


def main() -> None:
    """Settings are read here, when the worker starts (not when ``jobs`` is imported)."""
    logs.configure()
    runtime = configure()
    maintenance.schedule_recovery(runtime.settings)
    try:
        runtime.ready_database()
    except SealingError as exc:
        log.critical("cannot start: %s", exc)
        sys.exit(EXIT_CONFIG)
    asyncio.run(_main(runtime.settings))


if __name__ == "__main__":
    main()
