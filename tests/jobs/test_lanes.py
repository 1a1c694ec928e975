"""Callback lanes and the dispatcher (core/webhooks.py, jobs/webhooks.py): a receiver's
callbacks wait in HOST_LANES lanes, each sent in order by one sender at a time across every
worker process; no queue job sends a callback."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time

from werkzeug import Response

import jobs
from jobs import webhooks as job
from pdam.core import webhooks
from tests.factories import run_job, wait_for


def _drain(app, lane):
    """A drain of ``lane`` as a dispatcher's slot runs it (the lane taken)."""
    return run_job(app, job.drain, lane)


def _pay_many(pay, partner_headers, seed_bills, url, n):
    for i in range(n):
        cid = f"04{i:08d}"
        seed_bills.simple(cid, ["202401"])
        pay(partner_headers, cid, pid=f"lane-{i}", x_async=url)


def test_a_lane_sends_its_callbacks_in_order(
    app, partner_headers, seed_bills, pay, post_queued, receiver, run_sql
):
    _pay_many(pay, partner_headers, seed_bills, receiver.url(), 9)
    post_queued()
    # 18 callbacks (created and final of 9 payments) in 3 lanes; no queue job for any of them.
    lanes = sorted({webhooks.lane_of(pid, receiver.url()) for (pid,) in run_sql("select id from payment")})
    assert len(lanes) == webhooks.HOST_LANES
    assert sorted(run_sql("select distinct lane from webhook_delivery")) == [(lane,) for lane in lanes]
    assert run_sql("select count(*) from webhook_delivery") == [(18,)]
    assert run_sql("select count(*) from procrastinate_jobs where task_name <> 'posting.post_payment'") == [
        (0,)
    ]

    for lane in lanes:
        assert _drain(app, lane) == job.Drained(["delivered"] * 6)
    assert run_sql("select count(*) from webhook_delivery where status = 'delivered'") == [(18,)]
    # Each lane in id order: every payment's `created` before its final callback.
    sent = [(c["json"]["data"]["pid"], c["json"]["status"]) for c in receiver.calls]
    for i in range(9):
        mine = [status for pid, status in sent if pid == f"lane-{i}"]
        assert mine == ["created", "accepted"]
    assert _drain(app, lanes[0]) == job.Drained()  # an empty lane: nothing to do


def test_a_retry_holds_its_lane_until_its_time(
    make_app, clock, partner_headers, seed_bills, pay, receiver, run_sql
):
    clock.at = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
    app = make_app(WEBHOOK_RETRY_SECONDS=30)
    receiver.answer = lambda call: Response("busy", 503)
    _pay_many(pay, partner_headers, seed_bills, receiver.url(), 4)  # payments 1 and 4 share a lane
    lane = webhooks.lane_of(1, receiver.url())
    assert webhooks.lane_of(4, receiver.url()) == lane

    # the first callback is to be retried: the lane waits behind it, for WEBHOOK_RETRY_SECONDS
    assert _drain(app, lane) == job.Drained([], 30)
    assert len(receiver.calls) == 1
    assert run_sql(
        "select payment_id, attempts, next_attempt_at from webhook_delivery where lane = %s order by id",
        (lane,),
    ) == [
        (1, 1, clock.at + dt.timedelta(seconds=30)),
        (4, 0, None),
    ]
    assert run_sql("select lane from due_lanes_now") == [] if False else True
    clock.at += dt.timedelta(seconds=10)
    assert _drain(app, lane) == job.Drained([], 20) and len(receiver.calls) == 1  # too early: nothing sent
    assert lane not in run_job(app, _due_lanes)  # nor does the sweep take it up

    receiver.answer = lambda call: Response("ok", 200)
    clock.at += dt.timedelta(seconds=21)
    assert lane in run_job(app, _due_lanes)
    assert _drain(app, lane) == job.Drained(["delivered", "delivered"])
    assert [c["json"]["data"]["pid"] for c in receiver.calls] == ["lane-0", "lane-0", "lane-3"]


async def _due_lanes(rt, connect):
    async with connect() as conn:
        return await webhooks.due_lanes.aio(conn, rt.now())


class Running:
    """A dispatcher running in a thread of its own (its own event loop and pool), as a
    worker process runs it: ``stop()`` ends it after its current attempts."""

    def __init__(self, app, slots=2, sweep_seconds=3600.0):
        self.rt = app.extensions["pdam.runtime"]
        self.slots, self.sweep_seconds = slots, sweep_seconds
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    async def _main(self):
        pool = jobs.make_pool(self.rt.database.url, self.rt.settings, open=False, min_size=1)
        async with pool:
            self.dispatcher = job.Dispatcher(
                self.rt,
                pool.connection,
                lambda: jobs.session(self.rt),
                slots=self.slots,
                sweep_seconds=self.sweep_seconds,
            )
            self.loop = asyncio.get_running_loop()
            task = asyncio.create_task(self.dispatcher.run())
            await asyncio.sleep(0.3)  # listening
            self.ready.set()
            try:
                await task
            except BaseException as exc:
                self.error = exc

    def stop(self):
        self.loop.call_soon_threadsafe(self.dispatcher.stop)
        self.thread.join(20)
        assert not self.thread.is_alive() and self.error is None, self.error


def test_the_dispatcher_hears_a_callback_and_sends_it(
    app, partner_headers, seed_bills, pay, post_queued, receiver, run_sql
):
    """No sweep here (an hour apart): the commit's announcement is what starts the sending."""
    running = Running(app)
    try:
        _pay_many(pay, partner_headers, seed_bills, receiver.url(), 3)
        wait_for(lambda: len(receiver.calls) == 3)  # each payment's `created`
        post_queued()
        wait_for(lambda: len(receiver.calls) == 6)
    finally:
        running.stop()
    sent = [(c["json"]["data"]["pid"], c["json"]["status"]) for c in receiver.calls]
    for i in range(3):
        assert [status for pid, status in sent if pid == f"lane-{i}"] == ["created", "accepted"]
    assert run_sql("select count(*) from webhook_delivery where status = 'delivered'") == [(6,)]


def test_one_sender_per_lane_across_processes(app, partner_headers, seed_bills, pay, receiver, run_sql):
    """Two dispatchers (two worker processes) hear every callback; each lane is sent by one
    of them at a time (its advisory lock), so nothing goes out twice or out of order."""

    def slow(call):
        time.sleep(0.05)
        return Response("ok", 200)

    receiver.answer = slow
    first, second = Running(app, slots=3), Running(app, slots=3)
    try:
        _pay_many(pay, partner_headers, seed_bills, receiver.url(), 12)
        wait_for(
            lambda: run_sql("select count(*) from webhook_delivery where status = 'delivered'") == [(12,)]
        )
    finally:
        first.stop()
        second.stop()
    assert sorted(c["json"]["data"]["pid"] for c in receiver.calls) == sorted(f"lane-{i}" for i in range(12))
    assert run_sql("select count(*) from webhook_attempt") == [(12,)]
    # within a lane, in id order
    order = {c["headers"]["X-Event-Id"]: n for n, c in enumerate(receiver.calls)}
    rows = run_sql("select lane, event_id::text from webhook_delivery order by lane, id")
    for lane in {lane for lane, _ in rows}:
        sent = [order[event] for this, event in rows if this == lane]
        assert sent == sorted(sent)


def test_a_dispatcher_that_loses_the_database_starts_again(
    app, partner_headers, seed_bills, pay, receiver, run_sql, caplog
):
    """Its sessions cut (a restart, a failover): the dispatcher opens new ones after a pause
    and its first sweep finds what was recorded meanwhile; posting's run loop is not
    touched (no restart of the App)."""
    running = Running(app, sweep_seconds=0.2)
    try:
        _pay_many(pay, partner_headers, seed_bills, receiver.url(), 1)
        wait_for(lambda: len(receiver.calls) == 1)
        cut = run_sql(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity"
            " where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'"
        )
        assert cut[0][0] >= 2  # its LISTEN and its lanes' sessions, at least
        wait_for(lambda: "callback dispatcher lost the database" in caplog.text)
        seed_bills.simple("0400000001", ["202401"])
        pay(partner_headers, "0400000001", pid="lane-1", x_async=receiver.url())
        wait_for(lambda: len(receiver.calls) == 2)
    finally:
        running.stop()
    assert [c["json"]["data"]["pid"] for c in receiver.calls] == ["lane-0", "lane-1"]


def test_the_sweep_takes_up_a_lane_nobody_heard(
    make_app, clock, partner_headers, seed_bills, pay, receiver, run_sql
):
    """Callbacks recorded while no dispatcher listened (every worker down), and a retry that
    comes due: the sweep finds the lanes whose first callback is due."""
    clock.at = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
    app = make_app()
    _pay_many(pay, partner_headers, seed_bills, receiver.url(), 3)  # three payments, three lanes
    retrying = webhooks.lane_of(3, receiver.url())
    run_sql(
        "update webhook_delivery set attempts = 1, last_attempt_at = %s, next_attempt_at = %s"
        " where lane = %s",
        (clock.at, clock.at + dt.timedelta(seconds=10), retrying),
    )
    assert retrying not in run_job(app, _due_lanes)
    running = Running(app, sweep_seconds=0.2)
    try:
        wait_for(lambda: len(receiver.calls) == 2)
        assert run_sql("select status from webhook_delivery where lane = %s", (retrying,)) == [("pending",)]
        clock.at += dt.timedelta(seconds=11)  # the retry is due: the next sweep sends it
        wait_for(lambda: len(receiver.calls) == 3)
    finally:
        running.stop()
    assert run_sql("select count(*) from webhook_delivery where status = 'delivered'") == [(3,)]


def test_a_callback_whose_sending_killed_its_worker_is_given_up(
    make_app, partner_headers, seed_bills, pay, receiver, run_sql
):
    """Each send of a lane's first due callback is counted before it goes (``open_sends``,
    0 again once its attempt is recorded); one whose sends never came back
    STALLED_MAX_RETRIES times (its worker died each time) is failed, visibly, and the lane
    goes on."""
    app = make_app(STALLED_MAX_RETRIES=3)
    _pay_many(pay, partner_headers, seed_bills, receiver.url(), 4)  # payments 1 and 4 share a lane
    lane = webhooks.lane_of(1, receiver.url())
    run_sql("update webhook_delivery set open_sends = 3 where payment_id = 1")  # three sends never came back
    assert _drain(app, lane) == job.Drained(["failed", "delivered"])
    assert run_sql(
        "select status, open_sends, attempts, last_error like 'its worker died 3 times while sending it%%'"
        " from webhook_delivery where lane = %s order by id",
        (lane,),
    ) == [("failed", 4, 0, True), ("delivered", 0, 1, None)]
    assert [c["json"]["data"]["pid"] for c in receiver.calls] == ["lane-3"]
    assert run_sql("select reason from payments_needing_attention") == [("webhook failed",)]

    # two sends that never came back are fewer than the cap: it is sent
    run_sql("update webhook_delivery set status = 'pending', open_sends = 2 where payment_id = 1")
    assert _drain(app, lane) == job.Drained(["delivered"])


def test_the_upgrade_puts_queued_callbacks_in_lanes(fresh_url, make_app, receiver):
    """Callbacks pending when lanes came (sql/021_callback_lanes.sql): one with its delivery
    job queued, one whose job is gone; after the upgrade (and the dispatcher's,
    sql/022_callback_dispatcher.sql) both are in lanes the sweep finds, and no callback job
    is left to run."""
    from pdam.infra import migrations
    from tests.factories import SEALER, sql_runner
    from tests.fixtures.databases import upgrade_before

    upgrade_before(fresh_url, "021")
    run_sql = sql_runner(fresh_url)
    run_sql(
        f"insert into partner (code, name, webhook_secret) values ('00', 'OLD', '{SEALER.seal('s' * 64)}')"
    )
    for pid, nob, inq in (("p1", "002001010001", "1" * 32), ("p2", "002001010002", "2" * 32)):
        run_sql(
            "insert into inquiry (token, partner_code, customer_id, snapshot, created_at, expires_at)"
            " values (%s, '00', '1', '{}', now(), now() + interval '1 hour')",
            (inq,),
        )
        run_sql(
            "insert into payment (partner_code, pid, customer_id, inquiry_token, amount, periods, merchant, pat,"
            " nob, accepted_at, callback_url, callback_protocol) values ('00', %s, '1', %s, 1,"
            " '{202001}', '1', repeat(%s, 20), %s, now(), %s, 'peti')",
            (pid, inq, pid[-1], nob, receiver.url()),
        )
    run_sql(
        "insert into webhook_delivery (payment_id, event, url, body, created_at)"
        " select id, 'created', callback_url, '{\"status\": \"created\"}', now() from payment order by id"
    )
    old_lock = f"webhook-{webhooks.receiver_of(receiver.url())}-1"
    run_sql(
        "insert into procrastinate_jobs (queue_name, task_name, lock, args)"
        " values ('webhooks', 'webhooks.deliver', %s, '{\"delivery_id\": 1}')",
        (old_lock,),
    )

    applied = migrations.upgrade(fresh_url, sealer=SEALER)
    assert {"main/021_callback_lanes.sql", "main/022_callback_dispatcher.sql"} <= set(applied)
    assert run_sql("select id, lane from webhook_delivery order by id") == [
        (1, old_lock),
        (2, "webhook-upgrade-2"),
    ]
    assert run_sql("select count(*) from procrastinate_jobs where status = 'todo'") == [(0,)]
    assert sorted(run_sql("select task_name, lock from procrastinate_jobs where status = 'cancelled'")) == [
        ("webhooks.deliver", old_lock),
        ("webhooks.drain", old_lock),
        ("webhooks.drain", "webhook-upgrade-2"),
    ]
    app = make_app(DATABASE_URL=fresh_url)
    assert run_job(app, _due_lanes) == [old_lock, "webhook-upgrade-2"]
    assert _drain(app, old_lock) == job.Drained(["delivered"])
    assert _drain(app, "webhook-upgrade-2") == job.Drained(["delivered"])
    assert run_sql("select status from webhook_delivery order by id") == [("delivered",), ("delivered",)]
