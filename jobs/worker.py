"""``python -m jobs.worker``: one worker process on every queue, JSON logs.

Procrastinate stops its worker when it loses the database (its listener or a side
task fails, and ``run_worker`` returns). This process does not end then: it opens the
App again and starts a new run loop after a short pause (``RESTART_PAUSE``, doubling
up to ``RESTART_PAUSE_MAX`` while the database stays away), until SIGTERM or SIGINT
stops it gracefully. So a failover (the standby promoted, ``DATABASE_URL`` listing both
hosts) or a restarted server is picked up without anyone restarting the worker. The
supervisor in ``jobs/__main__.py`` is for what this cannot survive (a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from pdam.infra import logs, port
from pdam.infra.queue import QUEUES
from pdam.infra.sealing import SealingError

from . import app, configure, maintenance, worker_options

#: The exit status of a worker that cannot open the database's secrets: a configuration
#: error, which ``python -m jobs`` does not restart (sysexits' EX_CONFIG).
EXIT_CONFIG = 78

log = logging.getLogger(__name__)

RESTART_PAUSE = 0.5
RESTART_PAUSE_MAX = 5.0
#: A run loop that lasted this long was healthy: the next pause starts small again.
HEALTHY_SECONDS = 60.0


async def serve(stop: asyncio.Event, **options) -> int:
    """Run the worker until ``stop`` is set, starting its run loop again whenever it ends
    on its own (a lost database). Returns how many times it started."""
    loop = asyncio.get_running_loop()
    pause = RESTART_PAUSE
    runs = 0
    while not stop.is_set():
        runs += 1
        started = loop.time()
        try:
            async with app.open_async():
                run = asyncio.ensure_future(app.run_worker_async(install_signal_handlers=False, **options))
                halt = asyncio.ensure_future(stop.wait())
                await asyncio.wait({run, halt}, return_when=asyncio.FIRST_COMPLETED)
                halt.cancel()
                if not run.done():  # asked to stop: the worker finishes its jobs, then ends
                    run.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await run
                else:
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
    await serve(
        stop,
        queues=list(QUEUES),
        concurrency=conf["WORKER_CONCURRENCY"],
        name=os.environ.get("WORKER_NAME", f"worker-{os.getpid()}"),
        **worker_options(conf),
    )


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
