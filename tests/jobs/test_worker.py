"""The job server (jobs/worker.py, ``python -m jobs``): a real worker process posts what the
API recorded; crash and outage drills: nothing lost, nothing taken twice."""

from __future__ import annotations

import random
import time

import psycopg
import pytest

from pdam.core import partners
from pdam.web import runtime
from tests.factories import CID, SEALER, bill_line, import_bills, kill, make_payment, wait_for


def queue_payments(app, seed_bills, count: int) -> None:
    """Record ``count`` payments of partner 00 through the real domain code, one per customer."""
    seed_bills(
        "".join(bill_line(f"5{i:011d}", "202001", water=40000 + i, bill_no=f"x{i}") for i in range(count))
    )
    with app.app_context():
        for i in range(count):
            with runtime.transaction() as conn:
                make_payment(conn, "00", f"5{i:011d}", f"drill-{i}", runtime.now())


def test_worker_process_posts_payments(client, partner_headers, seed_bills, pay, start_worker, run_sql):
    seed_bills.simple(CID, ["202001"])
    nob = pay(partner_headers, per=[202001])["nob"]
    start_worker()
    wait_for(lambda: run_sql("select status from payment")[0][0] != "created")
    st = client.get(f"/status/{CID}?nob={nob}", headers=partner_headers)
    assert st.status_code == 202 and st.json["meta"]["jumlah_tagihan"] == 48800
    assert run_sql("select paid_by from bill") == [(nob,)]
    wait_for(
        lambda: (
            run_sql("select status from procrastinate_jobs where task_name = 'posting.post_payment'")
            == [("succeeded",)]
        )
    )


# -- drills -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_crash_drill_sigkill_worker_during_posting(app, partner_headers, seed_bills, start_worker, run_sql):
    queue_payments(app, seed_bills, 500)
    # Also some bills paid elsewhere meanwhile, so outcomes are mixed.
    run_sql("update bill set paid_by = '991111110001', paid_at = now() where customer_id like '5%7'")
    # A slow ledger (50 ms a bill) keeps four postings in flight at every kill.
    run_sql(
        "create function slow_ledger() returns trigger language plpgsql as $$"
        " begin perform pg_sleep(0.05); return new; end $$;"
        " create trigger slow_ledger before update on bill for each row execute function slow_ledger()"
    )
    env = dict(STALLED_JOB_SECONDS=2, STALLED_MAX_RETRIES=100, WORKER_CONCURRENCY=4)
    rng = random.Random(20201)
    newest = "select coalesce(max(id), 0) from procrastinate_workers"
    posting_by_newer = (
        "select count(*) from procrastinate_jobs where status = 'doing'"
        " and task_name = 'posting.post_payment' and worker_id > %s"
    )
    kills = 0
    before = run_sql(newest)[0][0]
    proc = start_worker(supervised=False, **env)
    while kills < 10:
        # Kill mid-run: once this worker (started after ``before``) is posting, at a random moment.
        wait_for(lambda: run_sql(posting_by_newer, (before,))[0][0] > 0, timeout=30, interval=0.02)
        time.sleep(rng.uniform(0, 0.3))
        kill(proc)
        kills += 1
        if kills == 10:  # the kills are done: the last worker drains the queue at full speed
            run_sql("drop trigger slow_ledger on bill")
        before = run_sql(newest)[0][0]
        proc = start_worker(supervised=False, **env)
    wait_for(lambda: run_sql("select count(*) from payment where status = 'created'") == [(0,)], timeout=120)
    wait_for(
        lambda: (
            run_sql(
                "select count(*) from procrastinate_jobs where status in ('doing', 'todo')"
                " and task_name = 'posting.post_payment'"
            )
            == [(0,)]
        ),
        timeout=60,
    )
    assert kills == 10
    statuses = dict(run_sql("select status, count(*) from payment group by 1"))
    assert statuses == {"accepted": 450, "rejected": 50}, statuses
    # Every bill paid at most once (one paid_by column), and by the payment that says so.
    assert run_sql(
        "select count(*) from bill b join payment p on p.nob = b.paid_by"
        " where p.status not in ('accepted', 'changed')"
    ) == [(0,)]
    (ledger_sum, paid_sum) = run_sql(
        "select (select sum(total) from bill where paid_by in (select nob from payment)),"
        " (select sum(paid_total) from payment where status in ('accepted', 'changed'))"
    )[0]
    assert ledger_sum == paid_sum
    assert run_sql("select count(*) from procrastinate_jobs where status = 'doing'") == [(0,)]
    assert run_sql("select count(*) from payment where stuck_at is not null") == [(0,)]
    # The kills did land mid-job: those jobs went through stalled-job recovery.
    (recovered,) = run_sql(
        "select count(*) from procrastinate_jobs where task_name = 'posting.post_payment' and attempts > 0"
    )[0]
    assert recovered >= 10, recovered


def post_across_an_outage(make_app, private_server, url, start_worker, log, digit, *, supervised, while_down):
    """A payment posted, PostgreSQL stopped until the worker's run loop has started again
    (``while_down(proc)`` then), PostgreSQL back, a second payment posted: the worker's
    process, to check further."""
    app = make_app(DATABASE_URL=url)
    with app.app_context(), runtime.transaction() as conn:
        partners.add(conn, "00", "BANK1", SEALER)
        import_bills(
            conn,
            "".join(
                bill_line(f"{digit}{i:011d}", "202001", 1000, 0, 0, bill_no=f"b{digit}{i}") for i in range(2)
            ),
        )
    proc = start_worker(supervised=supervised, log=log, DATABASE_URL=url, DB_CONNECT_TIMEOUT=1)

    def record(i):
        with app.app_context(), runtime.transaction() as conn:
            row = make_payment(conn, "00", f"{digit}{i:011d}", f"p{digit}{i}", runtime.now())
            assert row.amount == 1000

    def status(i):
        with psycopg.connect(url) as conn:
            return conn.execute("select status from payment where pid = %s", (f"p{digit}{i}",)).fetchone()[0]

    record(0)
    wait_for(lambda: status(0) == "accepted", timeout=30)
    private_server.stop()
    # The Procrastinate run loop gives up on the lost database; the worker starts a new one.
    wait_for(lambda: "starting it again" in log.read_text(), timeout=60)
    while_down(proc)
    private_server.start()
    app.extensions["pdam.runtime"].dispose()
    record(1)
    wait_for(lambda: status(1) == "accepted", timeout=60)
    return proc


@pytest.mark.slow
def test_worker_comes_back_after_losing_the_database(
    make_app, private_server, private_database, start_worker, tmp_path
):
    """The supervised worker (`python -m jobs`, the Procfile's) keeps posting across an outage."""
    proc = post_across_an_outage(
        make_app, private_server, private_database, start_worker, tmp_path / "worker.log", 6,
        supervised=True, while_down=lambda proc: None,
    )  # fmt: skip
    assert proc.poll() is None  # the supervisor is still there


@pytest.mark.slow
def test_worker_process_survives_losing_the_database(
    make_app, private_server, private_database, start_worker, tmp_path
):
    """The worker process itself (``python -m jobs.worker``, no supervisor) outlives an outage:
    its run loop ends when the database goes, and it starts a new one in-process."""

    def still_running(proc):
        assert proc.poll() is None  # the same process, still running

    proc = post_across_an_outage(
        make_app, private_server, private_database, start_worker, tmp_path / "worker.log", 7,
        supervised=False, while_down=still_running,
    )  # fmt: skip
    assert proc.poll() is None
    proc.terminate()  # SIGTERM still stops it, gracefully and at once
    assert proc.wait(timeout=20) == 0
