"""The Procrastinate App of the job server, on the payments database.

Tasks are thin: each runs one domain function of ``pdam`` inside the Flask
app context (config, engines, the deferring app). Start a worker with
``python -m jobs`` (supervised) or ``python -m procrastinate --app=jobs.app worker``.
"""

from __future__ import annotations

import procrastinate

from pdam import create_app

flask_app = create_app()

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=flask_app.config["RESOLVED_DATABASE_URL"]),
    import_paths=["jobs.posting", "jobs.maintenance", "jobs.webhooks"],
    worker_defaults={
        # A worker silent for STALLED_JOB_SECONDS counts as dead; its jobs are retried.
        "update_heartbeat_interval": max(1.0, flask_app.config["STALLED_JOB_SECONDS"] / 6),
        "stalled_worker_timeout": flask_app.config["STALLED_JOB_SECONDS"],
        # A retried job waits for this poll: keep retries close to their configured interval.
        "fetch_job_polling_interval": max(
            0.2,
            min(5.0, flask_app.config["WEBHOOK_RETRY_SECONDS"] / 5, flask_app.config["POSTING_RETRY_SECONDS"] / 5),
        ),
    },
)
