"""Maintenance tasks: inquiry clean-up and stalled-job recovery."""

from __future__ import annotations

import asyncio
import logging

from procrastinate.jobs import Status

from pdam import payment, posting, queue

from . import app, flask_app

log = logging.getLogger(__name__)
cfg = flask_app.config


@app.periodic(cron="*/5 * * * *")
@app.task(name="maintenance.purge_inquiries", queue=queue.MAINTENANCE_QUEUE, queueing_lock="purge_inquiries")
def purge_inquiries(timestamp: int) -> int:
    """Delete expired inquiry snapshots (requests never do it)."""
    from pdam import db, inquiry

    with flask_app.app_context(), db.transaction() as conn:
        return inquiry.purge_expired(conn)


STALLED_CHECK_SECONDS = min(59, max(1, cfg["STALLED_JOB_SECONDS"] // 2))


@app.periodic(cron=f"* * * * * */{STALLED_CHECK_SECONDS}")
@app.task(name="maintenance.recover_stalled", queue=queue.MAINTENANCE_QUEUE, queueing_lock="recover_stalled")
async def recover_stalled(timestamp: int) -> int:
    """Retry jobs whose worker stopped heartbeating (killed, lost its host).

    Procrastinate's stalled path ignores the task's retry strategy, so the
    maximum is enforced here: past STALLED_MAX_RETRIES the job is failed and a
    posting job's payment flagged stuck for operators.
    """
    manager = app.job_manager
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=cfg["STALLED_JOB_SECONDS"])
    for job in stalled:
        if job.attempts < cfg["STALLED_MAX_RETRIES"]:
            log.warning("retrying stalled job %s (%s)", job.id, job.task_name)
            await manager.retry_job(job)
            continue
        log.error("stalled job %s failed after %s attempts", job.id, job.attempts)
        await manager.finish_job(job, status=Status.FAILED, delete_job=False)
        if job.task_name == payment.POST_TASK:
            await asyncio.to_thread(_flag_stuck, job.task_kwargs["payment_id"], job.attempts)
    return len(stalled)


def _flag_stuck(payment_id: int, attempts: int) -> None:
    from pdam import clock, db

    with flask_app.app_context(), db.transaction() as conn:
        posting.flag_stuck(conn, payment_id, "worker died during posting too often", attempts, clock.now())
