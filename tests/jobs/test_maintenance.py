"""Maintenance tasks (jobs/maintenance.py): stalled-job recovery with a real worker."""

from __future__ import annotations

from tests.factories import CID, wait_for


def test_stalled_job_past_its_maximum_is_failed_and_flagged(
    partner_headers, seed_bills, pay, start_worker, run_sql
):
    """A job whose worker died too often is not retried forever: failed, and the payment flagged."""
    seed_bills.simple(CID, ["202001"])
    pay(partner_headers, per=[202001])
    # The job was taken by a worker that then died (no heartbeat for an hour) after its last allowed retry.
    run_sql("insert into procrastinate_workers (last_heartbeat) values (now() - interval '1 hour')")
    run_sql(
        "update procrastinate_jobs set status = 'doing', attempts = 3,"
        " worker_id = (select max(id) from procrastinate_workers) where task_name = 'posting.post_payment'"
    )
    start_worker(STALLED_JOB_SECONDS=2, STALLED_MAX_RETRIES=3)
    wait_for(
        lambda: (
            run_sql("select status from procrastinate_jobs where task_name = 'posting.post_payment'")
            == [("failed",)]
        )
    )
    wait_for(lambda: run_sql("select stuck_at is not null from payment") == [(True,)])
    status, reason = run_sql("select status, stuck_reason from payment")[0]
    assert status == "created" and "worker died 3 times" in reason
