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


def test_expired_inquiries_are_purged_on_the_workers_pool(
    app, partner_headers, seed_bills, inquire, start_worker, run_sql, tmp_path
):
    from pdam.infra import queue
    from pdam.web import runtime

    seed_bills.simple(CID, ["202001"])
    _, old = inquire(CID, partner_headers)
    _, live = inquire(CID, partner_headers)
    run_sql(
        "update inquiry set created_at = now() - interval '1 hour', expires_at = now() - interval '1 minute'"
        " where token = %s",
        (old,),
    )
    with app.app_context(), runtime.transaction() as conn:
        queue.defer(conn, "maintenance.purge_inquiries", queue=queue.MAINTENANCE_QUEUE, timestamp=0)
    start_worker(log=tmp_path / "worker.log")
    # The job deferred above (the worker's periodic ones may come too).
    done = "select status from procrastinate_jobs where task_name = 'maintenance.purge_inquiries' order by id limit 1"
    try:
        wait_for(lambda: run_sql(done) == [("succeeded",)])
    except AssertionError:
        raise AssertionError(f"{run_sql(done)}\n{(tmp_path / 'worker.log').read_text()}") from None
    assert run_sql("select token from inquiry") == [(live,)]
