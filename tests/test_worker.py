"""The real job server: a worker process posts what the API recorded."""

from __future__ import annotations

from tests.conftest import wait_for
from tests.test_payment import CID, body


def test_worker_process_posts_payments(client, partner_headers, seed_bills, inquire, start_worker, run_sql):
    seed_bills.simple(CID, ["202001"])
    _, inq = inquire(CID, partner_headers)
    res = client.post(f"/tagihan/{CID}", json=body(inq, amo=48800, per=[202001]), headers=partner_headers)
    nob = res.json["data"]["nob"]
    start_worker()
    wait_for(lambda: run_sql("select status from payment")[0][0] != "created")
    st = client.get(f"/status/{CID}?nob={nob}", headers=partner_headers)
    assert st.status_code == 202 and st.json["meta"]["jumlah_tagihan"] == 48800
    assert run_sql("select paid_by from bill") == [(nob,)]
    wait_for(lambda: run_sql(
        "select status from procrastinate_jobs where task_name = 'posting.post_payment'") == [("succeeded",)])


def test_stalled_job_past_its_maximum_is_failed_and_flagged(client, partner_headers, seed_bills, inquire,
                                                             start_worker, run_sql):
    """A job whose worker died too often is not retried forever: failed, and the payment flagged."""
    seed_bills.simple(CID, ["202001"])
    _, inq = inquire(CID, partner_headers)
    client.post(f"/tagihan/{CID}", json=body(inq, amo=48800, per=[202001]), headers=partner_headers)
    # The job was taken by a worker that then died (no heartbeat for an hour) after its last allowed retry.
    run_sql("insert into procrastinate_workers (last_heartbeat) values (now() - interval '1 hour')")
    run_sql("update procrastinate_jobs set status = 'doing', attempts = 3,"
            " worker_id = (select max(id) from procrastinate_workers) where task_name = 'posting.post_payment'")
    start_worker(STALLED_JOB_SECONDS=2, STALLED_MAX_RETRIES=3)
    wait_for(lambda: run_sql("select status from procrastinate_jobs where task_name = 'posting.post_payment'")
             == [("failed",)])
    wait_for(lambda: run_sql("select stuck_at is not null from payment") == [(True,)])
    status, reason = run_sql("select status, stuck_reason from payment")[0]
    assert status == "created" and "worker died 3 times" in reason
