"""The posting job (jobs/posting.py): transactions over one database or two (a separate
ledger, BILLING_DATABASE_URL), the retry decision, stuck payments, a lost ledger."""

from __future__ import annotations

import psycopg
import pytest

from pdam.core import errors, posting
from pdam.web import runtime
from tests.factories import driver_error, run_posting, wait_for


def ledger_rows(url):
    with psycopg.connect(url) as conn:
        return conn.execute("select period, paid_by from bill order by period").fetchall()


def test_ledger_lives_in_the_other_database(split_app, partner_headers, pay, run_sql):
    nob = pay(partner_headers, app=split_app)["nob"]
    (payment_id,) = run_sql("select id from payment")[0]
    assert run_posting(split_app, payment_id, 1) == "accepted"
    assert ledger_rows(split_app.ledger_url) == [("202001", nob), ("202002", nob)]
    assert run_sql("select count(*) from bill") == [(0,)]  # nothing in the payments database's copy


def test_crash_between_the_two_commits_is_recognised(split_app, partner_headers, pay, run_sql):
    nob = pay(partner_headers, app=split_app)["nob"]
    (payment_id,) = run_sql("select id from payment")[0]
    with split_app.app_context():
        conn, led = runtime.connection(), runtime.ledger_connection()
        posting.post(conn, led, payment_id, runtime.now())
        led.commit()  # the ledger committed ...
        conn.rollback()  # ... and the process died before the payments database did
    assert ledger_rows(split_app.ledger_url) == [("202001", nob), ("202002", nob)]
    assert run_sql("select status from payment") == [("created",)]
    assert run_posting(split_app, payment_id, 2) == "accepted"  # "paid by this payment", not "paid before"
    assert run_sql("select status, paid_total, problem_periods from payment") == [("accepted", 97600, [])]


def test_ledger_down_then_back(split_app, partner_headers, pay, ledger_server, start_worker, run_sql):
    nob = pay(partner_headers, app=split_app)["nob"]
    ledger_server.stop()
    try:
        start_worker(BILLING_DATABASE_URL=split_app.ledger_url, POSTING_RETRY_SECONDS=1, DB_CONNECT_TIMEOUT=1)
        # Attempts fail while the ledger is down; the payment stays in progress, not stuck.
        wait_for(
            lambda: (
                run_sql("select attempts from procrastinate_jobs where task_name = 'posting.post_payment'")[
                    0
                ][0]
                >= 2
            ),
            timeout=30,
        )
        assert run_sql("select status, stuck_at from payment") == [("created", None)]
    finally:
        ledger_server.start()
    wait_for(lambda: run_sql("select status from payment")[0][0] != "created", timeout=30)
    assert run_sql("select status, paid_total from payment") == [("accepted", 97600)]
    assert ledger_rows(split_app.ledger_url) == [("202001", nob), ("202002", nob)]


@pytest.mark.parametrize("separate", [False, True], ids=["one-database", "separate-ledger"])
def test_a_missing_payment_is_not_retried(request, app, separate):
    with pytest.raises(errors.GiveUp) as raised:
        run_posting(request.getfixturevalue("split_app") if separate else app, 987654321, 1)
    assert isinstance(raised.value.__cause__, posting.PaymentMissing)


# -- the retry decision and stuck payments --------------------------------------------------------


def test_transient_failure_is_retried_then_flagged_stuck(app, partner_headers, example_bill, pay, run_sql):
    pay(partner_headers, per=[201903])
    (payment_id,) = run_sql("select id from payment")[0]
    run_sql(
        "create function slow_bill() returns trigger language plpgsql as $$ begin"
        " raise exception using errcode = '40P01', message = 'deadlock detected'; end $$;"
        " create trigger slow_bill before update on bill for each row execute function slow_bill()"
    )
    # A failure that can pass: re-raised for the queue's retry, no flag yet.
    with pytest.raises(errors.Retry) as raised:
        run_posting(app, payment_id, 1)
    assert isinstance(driver_error(raised.value), psycopg.OperationalError)  # the port runs on psycopg
    assert run_sql("select status, stuck_at from payment") == [("created", None)]
    # At the last attempt: flagged for operators, still in progress.
    with pytest.raises(errors.GiveUp) as raised:
        run_posting(app, payment_id, app.config["POSTING_MAX_ATTEMPTS"])
    assert isinstance(driver_error(raised.value), psycopg.OperationalError)  # the port runs on psycopg
    rows = run_sql("select status, stuck_at is not null, stuck_reason, posting_attempts from payment")
    assert (
        rows[0][:2] == ("created", True)
        and "deadlock" in rows[0][2]
        and rows[0][3] == app.config["POSTING_MAX_ATTEMPTS"]
    )
    run_sql("drop trigger slow_bill on bill")
    # The operator re-queues it; it then posts normally.
    cli = app.test_cli_runner()
    nob = run_sql("select nob from payment")[0][0]
    res = cli.invoke(args=["payment", "requeue", nob])
    assert res.exit_code == 0 and "queued for posting" in res.output
    assert run_sql("select stuck_at from payment") == [(None,)]
    assert run_posting(app, payment_id, 1) == "accepted"
    again = cli.invoke(args=["payment", "requeue", nob])
    assert again.exit_code == 1 and "already final (accepted)" in again.output
    assert cli.invoke(args=["payment", "requeue", "000000000000"]).exit_code == 1


def test_missing_table_is_not_transient_and_flags_at_once(app, partner_headers, example_bill, pay, run_sql):
    pay(partner_headers, per=[201903])
    (payment_id,) = run_sql("select id from payment")[0]
    run_sql("alter table bill rename to bill_away")
    try:
        with pytest.raises(errors.GiveUp):  # not retried
            run_posting(app, payment_id, 1)
    finally:
        run_sql("alter table bill_away rename to bill")
    assert run_sql("select status, stuck_at is not null from payment") == [("created", True)]
