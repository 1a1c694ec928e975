"""``python -m jobs.worker``: one worker process on every queue, JSON logs."""

from __future__ import annotations

import logging
import os
import sys

from pdam.infra import logs
from pdam.infra.queue import QUEUES
from pdam.infra.sealing import SealingError

from . import app, cfg, runtime

#: The exit status of a worker that cannot open the database's secrets: a configuration
#: error, which ``python -m jobs`` does not restart (sysexits' EX_CONFIG).
EXIT_CONFIG = 78


def main() -> None:
    logs.configure()
    try:
        runtime.ready_database()
    except SealingError as exc:
        logging.getLogger("jobs.worker").critical("cannot start: %s", exc)
        sys.exit(EXIT_CONFIG)
    app.run_worker(
        queues=list(QUEUES),
        concurrency=cfg["WORKER_CONCURRENCY"],
        name=os.environ.get("WORKER_NAME", f"worker-{os.getpid()}"),
    )


if __name__ == "__main__":
    main()
