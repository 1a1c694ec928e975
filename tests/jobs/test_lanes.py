"""Callback lanes (core/webhooks.py, jobs/webhooks.py ``drain``): a receiver's callbacks wait
in HOST_LANES lanes, each drained in order by one job at a time; the queue holds at most a
running and a waiting drain per lane, however many callbacks wait."""

from __future__ import annotations

import datetime as dt
import json

import psycopg
from werkzeug import Response

from jobs import webhooks as job
from pdam.core import webhooks
from tests.factories import run_job, wait_for

WAITING = (
    "select lock from procrastinate_jobs where task_name = 'webhooks.drain' and status = 'todo' order by id"
)


def _pay_many(pay, partner_headers, seed_bills, url, n):
    for i in range(n):
        cid = f"04{i:08d}"
        seed_bills.simple(cid, ["202401"])
        pay(partner_headers, cid, pid=f"lane-{i}", x_async=url)


def test_a_lane_holds_one_waiting_drain_that_sends_its_callbacks_in_order(
    app, partner_headers, seed_bills, pay, post_queued, receiver, run_sql
):
    _pay_many(pay, partner_headers, seed_bills, receiver.url(), 9)
    post_queued()
    # 18 callbacks (created and final of 9 payments), 3 lanes, 3 drain jobs.
    lanes = sorted({webhooks.lane_of(pid, receiver.url()) for (pid,) in run_sql("select id from payment")})
    assert len(lanes) == webhooks.HOST_LANES
    assert sorted(run_sql(WAITING)) == [(lane,) for lane in lanes]
    assert run_sql("select count(*) from webhook_delivery") == [(18,)]

    for lane in lanes:
        assert run_job(app, job.drain, lane) == ["delivered"] * 6
    assert run_sql("select count(*) from webhook_delivery where status = 'delivered'") == [(18,)]
    # Each lane in id order: every payment's `created` before its final callback.
    sent = [(c["json"]["data"]["pid"], c["json"]["status"]) for c in receiver.calls]
    for i in range(9):
        mine = [status for pid, status in sent if pid == f"lane-{i}"]
        assert mine == ["created", "accepted"]
    assert run_job(app, job.drain, lanes[0]) == []  # an empty lane: nothing to do


def test_a_retry_holds_its_lane_and_schedules_the_drain_for_its_time(
    make_app, clock, partner_headers, seed_bills, pay, receiver, run_sql
):
    clock.at = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
    app = make_app(WEBHOOK_RETRY_SECONDS=30)
    receiver.answer = lambda call: Response("busy", 503)
    _pay_many(pay, partner_headers, seed_bills, receiver.url(), 4)  # payments 1 and 4 share a lane
    lane = webhooks.lane_of(1, receiver.url())
    assert webhooks.lane_of(4, receiver.url()) == lane
    run_sql("update procrastinate_jobs set status = 'doing' where lock = %s", (lane,))  # this drain's job

    assert (
        run_job(app, job.drain, lane) == []
    )  # the first callback is to be retried: the lane waits behind it
    assert len(receiver.calls) == 1
    assert run_sql(
        "select payment_id, attempts, next_attempt_at from webhook_delivery where lane = %s order by id",
        (lane,),
    ) == [
        (1, 1, clock.at + dt.timedelta(seconds=30)),
        (4, 0, None),
    ]
    # The lane's drain is scheduled for the retry's time (the one that ran is this test's call).
    [(scheduled,)] = run_sql(
        "select scheduled_at from procrastinate_jobs where task_name = 'webhooks.drain' and lock = %s"
        " and status = 'todo' and scheduled_at is not null",
        (lane,),
    )
    assert 25 <= (scheduled - dt.datetime.now(dt.UTC)).total_seconds() <= 31
    clock.at += dt.timedelta(seconds=10)
    assert run_job(app, job.drain, lane) == [] and len(receiver.calls) == 1  # too early: nothing sent

    receiver.answer = lambda call: Response("ok", 200)
    clock.at += dt.timedelta(seconds=21)
    assert run_job(app, job.drain, lane) == ["delivered", "delivered"]
    assert [c["json"]["data"]["pid"] for c in receiver.calls] == ["lane-0", "lane-0", "lane-3"]


def test_a_finished_drain_wakes_the_one_waiting_behind_it(database_url, run_sql):
    """Procrastinate notifies workers of inserted jobs only; a drain that waited for the
    lane's running one is announced when that one finishes (sql/021_callback_lanes.sql)."""
    insert = (
        "insert into procrastinate_jobs (queue_name, task_name, lock, args, status)"
        " values ('webhooks', 'webhooks.drain', 'lane-x', '{}', %s) returning id"
    )
    [(running,)] = run_sql(insert, ("doing",))
    [(waiting,)] = run_sql(insert, ("todo",))
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("listen procrastinate_any_queue_v1")
        listener.execute('listen "procrastinate_queue_v1#webhooks"')
        run_sql("update procrastinate_jobs set status = 'succeeded' where id = %s", (running,))
        got = [(n.channel, json.loads(n.payload)) for n in listener.notifies(timeout=2, stop_after=2)]
    announced = {"type": "job_inserted", "job_id": waiting}
    assert sorted(got) == [
        ("procrastinate_any_queue_v1", announced),
        ("procrastinate_queue_v1#webhooks", announced),
    ]


def test_a_waiting_drain_is_not_started_before_the_callers_commit(
    app, partner_headers, seed_bills, pay, run_sql, database_url
):
    """A callback recorded while its lane's drain waits joins that drain, which a worker
    cannot start (and read the lane) before the callback is committed."""
    from pdam.core import payments
    from pdam.web import runtime

    _pay_many(pay, partner_headers, seed_bills, "http://127.0.0.1:9/hook", 1)
    [(lane,)] = run_sql(WAITING)
    fetch = "select id from procrastinate_fetch_job_v2(array['webhooks'], null) where id is not null"
    with app.app_context():
        conn = runtime.connection()
        row = payments.find(conn, "00", "0400000000", reference="lane-0")
        webhooks.record(conn, row, "accepted", runtime.now())
        assert run_sql(fetch) == []  # held by the open transaction
        conn.commit()
    assert len(run_sql(fetch)) == 1
    assert run_sql(WAITING) == []
    assert run_sql("select count(*) from procrastinate_jobs where task_name = 'webhooks.drain'") == [(1,)]


def test_a_drain_given_up_fails_the_lanes_first_callback_and_goes_on(
    partner_headers, seed_bills, pay, receiver, start_worker, run_sql
):
    """Stalled-job recovery: a drain whose worker died too often (on its first callback)."""
    _pay_many(pay, partner_headers, seed_bills, receiver.url(), 1)
    run_sql("insert into procrastinate_workers (last_heartbeat) values (now() - interval '1 hour')")
    run_sql(
        "update procrastinate_jobs set status = 'doing', attempts = 3,"
        " worker_id = (select max(id) from procrastinate_workers) where task_name = 'webhooks.drain'"
    )
    start_worker(STALLED_JOB_SECONDS=2, STALLED_MAX_RETRIES=3)
    wait_for(
        lambda: run_sql("select status from webhook_delivery order by id") == [("failed",), ("delivered",)]
    )
    (reason,) = run_sql("select last_error from webhook_delivery order by id limit 1")[0]
    assert "worker died 3 times" in reason
    assert [c["json"]["status"] for c in receiver.calls] == ["accepted"]


def test_the_upgrade_puts_queued_callbacks_in_lanes(fresh_url, make_app, receiver):
    """Callbacks pending when lanes came (sql/021_callback_lanes.sql): one with its delivery
    job queued, one whose job is gone; both are sent after the upgrade, the old job run as
    its lane's drain."""
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

    assert "main/021_callback_lanes.sql" in migrations.upgrade(fresh_url, sealer=SEALER)
    assert run_sql("select id, lane from webhook_delivery order by id") == [
        (1, old_lock),
        (2, "webhook-upgrade-2"),
    ]
    assert sorted(run_sql("select task_name, lock from procrastinate_jobs where status = 'todo'")) == [
        ("webhooks.deliver", old_lock),
        ("webhooks.drain", old_lock),
        ("webhooks.drain", "webhook-upgrade-2"),
    ]
    app = make_app(DATABASE_URL=fresh_url)
    assert run_job(app, job.drain_lane_of, 1) == ["delivered"]  # the old job's run: its lane drained
    assert run_job(app, job.drain, "webhook-upgrade-2") == ["delivered"]
    assert run_sql("select status from webhook_delivery order by id") == [("delivered",), ("delivered",)]


def test_the_sweep_wakes_a_lane_left_without_a_drain(
    make_app, clock, partner_headers, seed_bills, pay, receiver, run_sql
):
    """A drain that ended on a fault of the service's own leaves its lane so until the next
    callback: the maintenance sweep (every minute) gives it a drain, and only it."""
    from jobs import maintenance

    clock.at = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
    app = make_app()
    _pay_many(pay, partner_headers, seed_bills, receiver.url(), 3)  # three payments, three lanes
    stranded, waiting, retrying = (webhooks.lane_of(n, receiver.url()) for n in (1, 2, 3))
    run_sql("update procrastinate_jobs set status = 'failed' where lock in (%s, %s)", (stranded, retrying))
    run_sql(
        "update webhook_delivery set attempts = 1, last_attempt_at = %s, next_attempt_at = %s where lane = %s",
        (clock.at, clock.at + dt.timedelta(seconds=10), retrying),
    )

    assert run_job(app, maintenance.wake_stranded) == [stranded]
    assert sorted(run_sql(WAITING)) == sorted([(stranded,), (waiting,)])
    assert run_job(app, maintenance.wake_stranded) == []  # woken: a drain waits now
    clock.at += dt.timedelta(seconds=11)  # the retry is due, and nothing would send it
    assert run_job(app, maintenance.wake_stranded) == [retrying]
    assert any(task.name == "maintenance.wake_stranded_lanes" for task in _periodic_tasks())


def _periodic_tasks():
    import jobs

    return [p.task for p in jobs.app.periodic_registry.periodic_tasks.values()]
