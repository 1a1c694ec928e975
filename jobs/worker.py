"""``python -m jobs.worker``: one worker process on every queue, JSON logs."""

from __future__ import annotations

import os

from pdam.infra import logs
from pdam.infra.queue import QUEUES

from . import app, cfg


def main() -> None:
    logs.configure()
    app.run_worker(
        queues=list(QUEUES),
        concurrency=cfg["WORKER_CONCURRENCY"],
        name=os.environ.get("WORKER_NAME", f"worker-{os.getpid()}"),
    )


if __name__ == "__main__":
    main()
