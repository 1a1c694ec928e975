"""Maintenance tasks: inquiry clean-up, the sandbox's retention, stalled-job recovery and a
no-op for queue checks."""

from __future__ import annotations

import logging

from procrastinate.jobs import Status

from pdam.core import inquiry, posting, sandbox
from pdam.infra import queue
from pdam.infra.runtime import Runtime

from . import Connect, app, current

log = logging.getLogger(__name__)


@app.periodic(cron="*/5 * * * *")
@app.task(name="maintenance.purge_inquiries", queue=queue.MAINTENANCE_QUEUE, queueing_lock="purge_inquiries")
async def purge_inquiries(timestamp: int) -> int:
    """Delete expired inquiry snapshots (requests never do it), on the worker's pool."""
    rt = current()
    async with app.connector.pool.connection() as conn:
        return await inquiry.purge_expired.aio(conn, rt.now())


@app.periodic(cron="17 * * * *")
@app.task(name="maintenance.purge_sandbox", queue=queue.MAINTENANCE_QUEUE, queueing_lock="purge_sandbox")
async def purge_sandbox(timestamp: int) -> int:
    """Delete sandbox inquiries, payments and callbacks older than SANDBOX_RETENTION_DAYS
    (contract 14.1), every hour, on the worker's pool."""
    return await purge_old_sandbox(current(), app.connector.pool.connection)


async def purge_old_sandbox(rt: Runtime, connect: Connect) -> int:
    """``purge_sandbox``'s work, on a connection of ``connect``'s; the payments deleted."""
    async with connect() as conn:
        return await sandbox.purge.aio(conn, rt.now(), rt.settings["SANDBOX_RETENTION_DAYS"])


@app.task(name="maintenance.recover_stalled", queue=queue.MAINTENANCE_QUEUE, queueing_lock="recover_stalled")
async def recover_stalled(timestamp: int) -> int:
    """Retry jobs whose worker stopped heartbeating (killed, lost its host).

    Procrastinate's stalled path ignores the task's retry strategy, so the
    maximum is enforced here: past STALLED_MAX_RETRIES the job is failed and a
    posting job's payment flagged stuck, visible to operators. (A callback is no job:
    the dispatcher gives up one whose sending killed its worker, jobs/webhooks.py.)
    """
    rt = current()
    manager = app.job_manager
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=rt.settings["STALLED_JOB_SECONDS"])
    for job in stalled:
        if job.attempts < rt.settings["STALLED_MAX_RETRIES"]:
            log.warning("retrying stalled job %s (%s)", job.id, job.task_name)
            await manager.retry_job(job)
            continue
        log.error("stalled job %s failed after %s attempts", job.id, job.attempts)
        await give_up(rt, job.task_name, job.task_kwargs, job.attempts)
        await manager.finish_job(job, status=Status.FAILED, delete_job=False)
    return len(stalled)


def schedule_recovery(conf) -> None:
    """Run ``recover_stalled`` every half STALLED_JOB_SECONDS (1 to 59 s): registered by
    the worker when it starts, with its settings (again: the new schedule replaces the old)."""
    seconds = min(59, max(1, conf["STALLED_JOB_SECONDS"] // 2))
    app.periodic_registry.periodic_tasks.pop((recover_stalled.name, ""), None)
    app.periodic(cron=f"* * * * * */{seconds}")(recover_stalled)


@app.task(name="maintenance.noop", queue=queue.MAINTENANCE_QUEUE)
async def noop() -> None:
    """Do nothing: checks the queue end to end and is the baseline of ``bench/worker.py``
    (Procrastinate's own cost per job). Async like the posting task, so the two differ
    by the domain work only."""


async def give_up(rt: Runtime, task_name: str, kwargs: dict, attempts: int) -> None:
    """Leave a visible trace of a job given up by stalled-job recovery (on the worker's pool)."""
    reason = f"its worker died {attempts} times during the job"
    async with app.connector.pool.connection() as conn:
        if task_name == queue.POST_PAYMENT:
            await posting.flag_stuck.aio(conn, kwargs["payment_id"], reason, attempts, rt.now())
