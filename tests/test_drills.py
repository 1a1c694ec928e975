"""Crash and outage drills with real processes: nothing lost, nothing taken twice."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from pdam.core import inquiry, payments
from pdam.web import runtime
from tests.conftest import wait_for

pytestmark = pytest.mark.slow


def accept(conn, cid: str, pid: str, now) -> dict:
    """An inquiry of partner 00 for ``cid`` and the payment of its 202001 bill (no X-Async)."""
    inq = inquiry.inquire(conn, conn, "00", cid, now, 900)
    req = payments.PaymentRequest(
        customer_id=cid, inquiry_token=inq.token, amount=inq.bills[0]["total"], periods=("202001",),
        merchant="1", reference=pid, callback=payments.Callback(),
    )
    return payments.accept(conn, "00", req, now).payment


def queue_payments(app, seed_bills, count: int, late_fee_every: int = 0) -> None:
    """Record ``count`` payments through the real domain code, one per customer."""
    seed_bills("".join(
        f"5{i:011d},P{i},Jl. {i},10R,x{i},202001,0,10,10,{40000 + i},8000,800,0,0\n" for i in range(count)
    ))
    with app.app_context():
        for i in range(count):
            cid = f"5{i:011d}"
            with runtime.transaction() as conn:
                accept(conn, cid, f"drill-{i}", runtime.now())


def kill(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def test_crash_drill_sigkill_worker_during_posting(app, partner_headers, seed_bills, start_worker, run_sql):
    queue_payments(app, seed_bills, 500)
    # Also some bills paid elsewhere meanwhile, so outcomes are mixed.
    run_sql("update bill set paid_by = '991111110001', paid_at = now() where customer_id like '5%7'")
    # A slow ledger (50 ms a bill) keeps four postings in flight at every kill.
    run_sql("create function slow_ledger() returns trigger language plpgsql as $$"
            " begin perform pg_sleep(0.05); return new; end $$;"
            " create trigger slow_ledger before update on bill for each row execute function slow_ledger()")
    env = dict(STALLED_JOB_SECONDS=2, STALLED_MAX_RETRIES=100, WORKER_CONCURRENCY=4)
    rng = random.Random(20201)
    kills = 0
    proc = start_worker(supervised=False, **env)
    while kills < 10:
        time.sleep(rng.uniform(1.2, 2.5))  # start-up takes about a second: kill mid-run
        kill(proc)
        kills += 1
        proc = start_worker(supervised=False, **env)
    wait_for(lambda: run_sql("select count(*) from payment where status = 'created'") == [(0,)], timeout=120)
    wait_for(lambda: run_sql("select count(*) from procrastinate_jobs where status in ('doing', 'todo')"
                             " and task_name = 'posting.post_payment'") == [(0,)], timeout=60)
    assert kills == 10
    statuses = dict(run_sql("select status, count(*) from payment group by 1"))
    assert statuses == {"accepted": 450, "rejected": 50}, statuses
    # Every bill paid at most once (one paid_by column), and by the payment that says so.
    assert run_sql("select count(*) from bill b join payment p on p.nob = b.paid_by"
                   " where p.status not in ('accepted', 'changed')") == [(0,)]
    (ledger_sum, paid_sum) = run_sql(
        "select (select sum(total) from bill where paid_by in (select nob from payment)),"
        " (select sum(paid_total) from payment where status in ('accepted', 'changed'))")[0]
    assert ledger_sum == paid_sum
    assert run_sql("select count(*) from procrastinate_jobs where status = 'doing'") == [(0,)]
    assert run_sql("select count(*) from payment where stuck_at is not null") == [(0,)]
    # The kills did land mid-job: those jobs went through stalled-job recovery.
    (recovered,) = run_sql("select count(*) from procrastinate_jobs"
                           " where task_name = 'posting.post_payment' and attempts > 0")[0]
    assert recovered >= 10, recovered


def test_worker_comes_back_after_losing_the_database(make_app, private_server, start_worker, add_partner, tmp_path):
    """The supervised worker (`python -m jobs`, the Procfile's) keeps posting across an outage."""
    import io

    import psycopg

    from pdam.core import billing
    from pdam.infra import migrations
    from tests.conftest import CSV_HEADER

    url = private_server.create_database("pdam")
    migrations.upgrade(url)
    app = make_app(DATABASE_URL=url)
    with app.app_context(), runtime.transaction() as conn:
        from pdam.core import partners

        partners.add(conn, "00", "BANK1")
        billing.import_rows(conn, billing.parse_csv(io.StringIO(
            CSV_HEADER + "".join(f"6{i:011d},P,J,10R,y{i},202001,0,1,1,1000,0,0,0,0\n" for i in range(2)))))
    log = tmp_path / "worker.log"
    proc = start_worker(log=log, DATABASE_URL=url, DB_CONNECT_TIMEOUT=1)

    def record(i):
        with app.app_context(), runtime.transaction() as conn:
            row = accept(conn, f"6{i:011d}", f"w{i}", runtime.now())
            assert row["amount"] == 1000

    def status(i):
        with psycopg.connect(url) as conn:
            return conn.execute("select status from payment where pid = %s", (f"w{i}",)).fetchone()[0]

    record(0)
    wait_for(lambda: status(0) == "accepted", timeout=30)
    private_server.stop()
    # The Procrastinate worker gives up on the lost database and exits; the supervisor restarts it.
    wait_for(lambda: "restarting in" in log.read_text(), timeout=60)
    private_server.start()
    app.extensions["pdam.runtime"].dispose()
    record(1)
    wait_for(lambda: status(1) == "accepted", timeout=60)
    assert proc.poll() is None  # the supervisor is still there


def test_postgres_restart_under_api_load(make_app, private_server, add_partner):
    """503 JSON during the outage, normal answers within seconds after, no payment lost or doubled."""
    import io

    import psycopg

    from pdam.core import billing, partners, tokens
    from pdam.infra import migrations
    from tests.conftest import CSV_HEADER, ISSUER

    url = private_server.create_database("pdam")
    migrations.upgrade(url)
    app = make_app(DATABASE_URL=url, DB_CONNECT_TIMEOUT=1)
    customers = [f"7{i:011d}" for i in range(400)]
    import datetime as dt

    with app.app_context(), runtime.transaction() as conn:
        partners.add(conn, "00", "BANK1")
        billing.import_rows(conn, billing.parse_csv(io.StringIO(
            CSV_HEADER + "".join(f"{c},P,J,10R,z{c},202001,0,1,1,1000,0,0,0,0\n" for c in customers))))
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        token = tokens.issue(conn, code="00", private_key=Path(app.config["JWT_PRIVATE_KEY_FILE"]).read_text(),
                             algorithm="ES256", issuer=ISSUER, now=now, expires=now + dt.timedelta(days=1))
    headers = {"Authorization": f"Bearer {token}"}
    stop = threading.Event()
    outcomes: list[tuple[float, int, str]] = []
    accepted: dict[str, str] = {}
    lock = threading.Lock()

    def client_loop(worker: int):
        client = app.test_client()
        for cid in customers[worker::8]:
            if stop.is_set():
                return
            inq = None
            while inq is None and not stop.is_set():
                res = client.get(f"/tagihan/{cid}", headers=headers)
                with lock:
                    outcomes.append((time.monotonic(), res.status_code, res.content_type))
                if res.status_code == 200:
                    inq = res.headers["X-Cross-Site"]
                else:
                    assert res.status_code == 503 and res.json["error"] == 503, res.data
                    time.sleep(0.05)
            pid = f"pid-{cid}"
            while inq and not stop.is_set():  # a partner retries with the same pid until it has an answer
                res = client.post(f"/tagihan/{cid}", json={"inq": inq, "pid": pid, "amo": 1000, "mer": "1",
                                                           "per": [202001]}, headers=headers)
                with lock:
                    outcomes.append((time.monotonic(), res.status_code, res.content_type))
                if res.status_code == 202:
                    with lock:
                        assert accepted.setdefault(pid, res.json["data"]["nob"]) == res.json["data"]["nob"]
                    break
                assert res.status_code == 503 and res.json["error"] == 503, res.data
                time.sleep(0.05)

    threads = [threading.Thread(target=client_loop, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    private_server.stop()
    down_at = time.monotonic()
    time.sleep(4)
    private_server.start()
    up_at = time.monotonic()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    codes = {code for _, code, _ in outcomes}
    assert codes <= {200, 202, 503}, codes
    assert all(ct == "application/json" for _, _, ct in outcomes)
    assert any(code == 503 for t, code, _ in outcomes if down_at <= t <= up_at)
    first_ok_after = min(t for t, code, _ in outcomes if t > up_at and code in (200, 202))
    assert first_ok_after - up_at < 10
    assert len(accepted) == len(customers)
    with psycopg.connect(url) as conn:
        rows = conn.execute("select pid, nob from payment").fetchall()
    assert dict(rows) == accepted  # none lost, none doubled
