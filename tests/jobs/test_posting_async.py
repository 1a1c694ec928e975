"""The async posting path (jobs/posting.py ``run``, the posting task, with the
ledger in this database) on a pool made as the worker makes its own (``jobs.make_pool``):
the same outcomes and callbacks as the sync path, the callback in the posting's
transaction, idempotence, the retry decision and the stuck flag."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import psycopg
import pytest
import sqlalchemy as sa

from pdam.core import errors, posting, webhooks
from pdam.core.records import Payment
from pdam.infra.db import pyformat
from pdam.peti import callbacks
from tests.factories import CID, driver_error, run_posting

CID2 = "020202020202"
HOOK = "http://127.0.0.1:9/hook"


#: One attempt of the posting task, on a pool configured like the worker's.
run_posting_async = run_posting


def payment_ids(run_sql) -> list[int]:
    return [r[0] for r in run_sql("select id from payment order by id")]


SCENARIOS = {
    "accepted": None,
    "changed": "update bill set late_fee = 5000 where period = '202002'",  # denda grew after the inquiry
    "rejected": "update bill set paid_by = '992001010001', paid_at = now()",  # paid at the counter
}


@pytest.mark.parametrize("outcome", list(SCENARIOS))
@pytest.mark.parametrize("hook", [HOOK, None], ids=["x-async", "no-callback"])
def test_same_outcomes_and_callbacks_as_the_sync_path(
    app, partner_headers, seed_bills, pay, run_sql, outcome, hook
):
    for cid, pid in ((CID, "evid-sync"), (CID2, "evid-async")):
        seed_bills.simple(cid, ["202001", "202002"])
        pay(partner_headers, cid=cid, pid=pid, per=[202001, 202002], x_async=hook)
    if SCENARIOS[outcome]:
        run_sql(SCENARIOS[outcome])
    sync_id, async_id = payment_ids(run_sql)
    assert run_posting(app, sync_id, 1) == outcome
    assert run_posting_async(app, async_id, 1) == outcome

    rows = run_sql(
        "select status, paid_total, paid_periods, problem_periods, posted_at is not null, stuck_at"
        " from payment order by id"
    )
    assert rows[0] == rows[1] and rows[0][0] == outcome
    periods = run_sql(
        "select payment_id, period, water, late_fee, paid, live from payment_period order by 1, 2"
    )
    assert [p[1:] for p in periods if p[0] == sync_id] == [p[1:] for p in periods if p[0] == async_id]
    paid = run_sql(
        "select p.id, count(b.id) from payment p left join bill b on b.paid_by = p.nob group by 1 order by 1"
    )
    assert paid[0][1] == paid[1][1]
    finals = run_sql(
        "select payment_id, event, body from webhook_delivery where event <> 'created' order by 1"
    )
    # a callback is no queue job (the dispatcher sends it): the posting jobs are all there is
    assert run_sql("select distinct task_name from procrastinate_jobs") == [("posting.post_payment",)]
    if hook is None:  # no X-Async: no callback either way
        assert finals == []
        return
    # The final callback: recorded for both, the same body but for the payment's own fields ...
    assert [(f[0], f[1]) for f in finals] == [(sync_id, outcome), (async_id, outcome)]
    sync_body, async_body = finals[0][2], finals[1][2]
    assert {k: sync_body[k] for k in ("status", "code", "message", "meta")} == {
        k: async_body[k] for k in ("status", "code", "message", "meta")
    }
    # ... exactly what the edge renders from the committed row (the sync path's row type).
    with app.app_context():
        from pdam.web import runtime

        row = (
            runtime.connection()
            .execute(sa.text("select * from payment where id = :id"), {"id": async_id})
            .one()
            ._asdict()
        )
    assert async_body == json.loads(json.dumps(callbacks.body_for(Payment.from_row(row), outcome)))
    # Each in its payment's callback lane.
    lanes = [webhooks.lane_of(sync_id, HOOK), webhooks.lane_of(async_id, HOOK)]
    assert run_sql("select payment_id, lane from webhook_delivery order by id") == [
        (sync_id, lanes[0]),
        (async_id, lanes[1]),
        (sync_id, lanes[0]),
        (async_id, lanes[1]),
    ]


@pytest.mark.parametrize("hook", [HOOK, None])
def test_the_posting_job_says_whether_its_payment_has_a_callback(
    partner_headers, example_bill, pay, run_sql, hook
):
    """So that posting a payment with X-Async skips ``post_alone`` (one statement fewer)."""
    pay(partner_headers, per=[201903], x_async=hook)
    assert run_sql("select args->'callback' from procrastinate_jobs") == [(hook is not None,)]


@pytest.mark.parametrize("told", [True, False, None])
@pytest.mark.parametrize("hook", [HOOK, None])
def test_what_the_job_says_of_the_callback_changes_no_outcome(
    partner_headers, example_bill, pay, app, run_sql, told, hook
):
    """Told right, wrong (a job's arguments are data) or not at all (a job queued before the
    hint, ``payment requeue``): posted once, the final callback recorded exactly when the
    payment has one."""
    from jobs import posting as job
    from tests.factories import run_job

    pay(partner_headers, per=[201903], x_async=hook)
    (payment_id,) = payment_ids(run_sql)
    assert run_job(app, job.run, payment_id, 1, told) == "accepted"
    assert run_job(app, job.run, payment_id, 2, told) == "accepted"  # again: nothing changes
    finals = run_sql("select event from webhook_delivery where event <> 'created'")
    assert finals == ([("accepted",)] if hook else [])
    assert run_sql("select count(*) from bill where paid_by is not null") == [(1,)]


def test_after_a_posting_in_a_transaction_the_connection_is_back_in_autocommit(
    partner_headers, example_bill, pay, app, run_sql
):
    """The pool's one connection: the posting with its callback began a transaction on it
    and committed; the pool's ``reset`` puts autocommit back for Procrastinate's next
    statement."""
    import jobs
    from jobs import posting as job

    pay(partner_headers, per=[201903], x_async=HOOK)
    (payment_id,) = payment_ids(run_sql)
    rt = app.extensions["pdam.runtime"]

    async def scenario():
        pool = jobs.make_pool(rt.database.url, rt.settings, open=False, min_size=1, max_size=1)
        async with pool:
            status = await job.run(rt, pool.connection, payment_id, 1, True)
            async with pool.connection() as conn:
                return status, conn.autocommit, conn.info.transaction_status.name

    assert asyncio.run(scenario()) == ("accepted", True, "IDLE")
    assert run_sql("select event from webhook_delivery order by id") == [("created",), ("accepted",)]


def test_a_payment_with_a_callback_is_never_posted_alone(partner_headers, example_bill, pay, run_sql):
    """``post_alone`` (autocommit) leaves a payment with X-Async to ``post``, so its callback
    is recorded in the posting's transaction."""
    pay(partner_headers, per=[201903], x_async=HOOK)
    (payment_id,) = payment_ids(run_sql)
    params = {"id": payment_id, "now": dt.datetime.now(dt.UTC), "attempt": 1}
    assert run_sql(pyformat(posting.Q["post_alone"]), params) == []
    assert run_sql("select status from payment") == [("created",)]
    assert run_sql("select paid_by from bill") == [(None,)]


def test_the_connection_goes_back_to_the_pool_as_it_came(partner_headers, example_bill, pay, app, run_sql):
    """Failed in its statement, given up or posted alone: the pool's connection is back in
    autocommit and idle, as Procrastinate's own statements expect it (each commits alone)."""
    import jobs
    from jobs import posting as job

    pay(partner_headers, per=[201903])
    (payment_id,) = payment_ids(run_sql)
    rt = app.extensions["pdam.runtime"]
    run_sql(
        "create function no_bill() returns trigger language plpgsql as $$ begin"
        " raise exception using errcode = '40P01', message = 'deadlock detected'; end $$;"
        " create trigger no_bill before update on bill for each row execute function no_bill()"
    )

    async def attempts() -> list:
        seen = []
        pool = jobs.make_pool(rt.database.url, rt.settings, open=False, min_size=1, max_size=1)
        async with pool:
            for pid in (payment_id, 987654321, payment_id):
                try:
                    seen.append(await job.run(rt, pool.connection, pid, 1))
                except (errors.Retry, errors.GiveUp) as exc:
                    seen.append(type(exc).__name__)
                    if pid == payment_id:
                        run_sql("drop trigger no_bill on bill")
                async with pool.connection() as conn:
                    seen.append((conn.autocommit, conn.info.transaction_status.name))
        return seen

    assert asyncio.run(attempts()) == [
        "Retry",
        (True, "IDLE"),  # the statement failed (alone: no callback)
        "GiveUp",
        (True, "IDLE"),  # no such payment
        "accepted",
        (True, "IDLE"),  # posted alone
    ]
    assert run_sql("select status from payment") == [("accepted",)]


def test_a_second_run_changes_nothing(partner_headers, example_bill, pay, app, run_sql):
    pay(partner_headers, per=[201903], x_async=HOOK)
    (payment_id,) = payment_ids(run_sql)
    assert run_posting_async(app, payment_id, 1) == "accepted"
    before = (
        run_sql("select paid_by, paid_at from bill"),
        run_sql("select status, posted_at, paid_total from payment"),
        run_sql("select count(*) from webhook_delivery"),
        run_sql("select count(*) from procrastinate_jobs"),
    )
    assert run_posting_async(app, payment_id, 2) == "accepted"  # the status, nothing posted
    assert run_posting(app, payment_id, 3) == "accepted"  # nor by the other path
    after = (
        run_sql("select paid_by, paid_at from bill"),
        run_sql("select status, posted_at, paid_total from payment"),
        run_sql("select count(*) from webhook_delivery"),
        run_sql("select count(*) from procrastinate_jobs"),
    )
    assert after == before and before[2] == [(2,)]  # created + the one final callback


def test_the_callback_commits_with_the_posting(partner_headers, example_bill, pay, app, run_sql):
    pay(partner_headers, per=[201903], x_async=HOOK)
    (payment_id,) = payment_ids(run_sql)
    # Recording the final callback fails (after the posting statement ran) ...
    run_sql(
        "create function no_delivery() returns trigger language plpgsql as $$ begin"
        " raise exception using errcode = '40P01', message = 'deadlock detected'; end $$;"
        " create trigger no_delivery before insert on webhook_delivery for each row"
        " execute function no_delivery()"
    )
    with pytest.raises(errors.Retry) as raised:
        run_posting_async(app, payment_id, 1)
    assert isinstance(driver_error(raised.value), psycopg.errors.DeadlockDetected)
    # ... so nothing of the posting stays: no paid bill, no final status, no final callback.
    assert run_sql("select status, posted_at, stuck_at from payment") == [("created", None, None)]
    assert run_sql("select paid_by from bill") == [(None,)]
    assert run_sql("select event from webhook_delivery") == [("created",)]
    run_sql("drop trigger no_delivery on webhook_delivery")
    assert run_posting_async(app, payment_id, 2) == "accepted"
    lane = webhooks.lane_of(payment_id, HOOK)
    assert run_sql("select event, lane from webhook_delivery order by id") == [
        ("created", lane),
        ("accepted", lane),
    ]


def test_transient_failure_is_retried_then_flagged_stuck(app, partner_headers, example_bill, pay, run_sql):
    pay(partner_headers, per=[201903])
    (payment_id,) = payment_ids(run_sql)
    run_sql(
        "create function slow_bill() returns trigger language plpgsql as $$ begin"
        " raise exception using errcode = '40P01', message = 'deadlock detected'; end $$;"
        " create trigger slow_bill before update on bill for each row execute function slow_bill()"
    )
    with pytest.raises(errors.Retry) as raised:
        run_posting_async(app, payment_id, 1)
    assert isinstance(driver_error(raised.value), psycopg.OperationalError)
    assert run_sql("select status, stuck_at from payment") == [("created", None)]
    last = app.config["POSTING_MAX_ATTEMPTS"]
    with pytest.raises(errors.GiveUp) as raised:
        run_posting_async(app, payment_id, last)
    assert isinstance(driver_error(raised.value), psycopg.OperationalError)
    rows = run_sql("select status, stuck_at is not null, stuck_reason, posting_attempts from payment")
    assert rows[0][:2] == ("created", True) and "deadlock" in rows[0][2] and rows[0][3] == last
    run_sql("drop trigger slow_bill on bill")
    assert run_posting_async(app, payment_id, 1) == "accepted"  # posting clears the flag
    assert run_sql("select status, stuck_at from payment") == [("accepted", None)]


def test_a_lock_held_too_long_is_retried(make_app, partner_headers, example_bill, pay, run_sql, database_url):
    """The worker's connections have the web's timeouts: a posting blocked on the payment's
    row lock fails as transient instead of waiting for ever."""
    app = make_app(DB_STATEMENT_TIMEOUT_MS=300)
    pay(partner_headers, per=[201903], app=app)
    (payment_id,) = payment_ids(run_sql)
    with psycopg.connect(database_url) as holder:
        holder.execute("select 1 from payment where id = %s for update", (payment_id,))
        with pytest.raises(errors.Retry) as raised:
            run_posting_async(app, payment_id, 1)
        # The statement or the lock timeout, whichever fires first (both are 300 ms).
        timed_out = (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable)
        assert isinstance(driver_error(raised.value), timed_out)
    assert run_posting_async(app, payment_id, 2) == "accepted"


def test_not_transient_gives_up_and_flags_at_once(app, partner_headers, example_bill, pay, run_sql):
    pay(partner_headers, per=[201903])
    (payment_id,) = payment_ids(run_sql)
    run_sql("alter table bill rename to bill_away")
    try:
        with pytest.raises(errors.GiveUp):
            run_posting_async(app, payment_id, 1)
    finally:
        run_sql("alter table bill_away rename to bill")
    assert run_sql("select status, stuck_at is not null from payment") == [("created", True)]


def test_a_missing_payment_is_given_up_without_a_flag(app, run_sql):
    with pytest.raises(errors.GiveUp) as raised:
        run_posting_async(app, 987654321, 1)
    assert isinstance(raised.value.__cause__, posting.PaymentMissing)
    assert run_sql("select count(*) from payment") == [(0,)]


def test_the_worker_pool_has_the_web_session(app):
    import jobs

    rt = app.extensions["pdam.runtime"]

    async def settings() -> tuple:
        pool = jobs.make_pool(rt.database.url, rt.settings, open=False, min_size=1, max_size=1)
        async with pool, pool.connection() as conn:
            cur = await conn.execute(
                "select current_setting('statement_timeout'),"
                " current_setting('lock_timeout'), current_setting('TimeZone')"
            )
            return await cur.fetchone()

    timeout = f"{app.config['DB_STATEMENT_TIMEOUT_MS'] // 1000}s"
    assert asyncio.run(settings()) == (timeout, timeout, "UTC")
