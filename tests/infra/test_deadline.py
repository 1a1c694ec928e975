"""Bounded time (contract 15; pdam/infra/deadline.py): a commit waiting for a synchronous
standby that is gone, a lock, a job stuck on the database, all end within
REQUEST_DEADLINE_SECONDS; a commit not confirmed is a 503, never a 202, and the partner's
retry with the same pid gets the one payment.

Each test runs a private server whose ``synchronous_standby_names`` names a standby that
never connects (``stall``): every commit that wrote something waits for it, forever, as on
a primary promoted by hand from a standby built with ``pg_basebackup``. How psycopg 3.3
cancels, and how PostgreSQL answers a cancelled wait, is pinned first."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import psycopg
import pytest
import sqlalchemy as sa

from pdam.core import partners
from pdam.infra import deadline, migrations
from pdam.infra.db import committing
from pdam.infra.port import is_transient
from pdam.web import runtime
from tests.factories import CID, SEALER, bill_line, body, import_bills, issue
from tests.fixtures.databases import _a_private_server

_numbers = itertools.count()

WARNING = "canceling wait for synchronous replication due to user request"


def stall(url: str, standby: str = "gone") -> None:
    """Every commit that writes now waits for a synchronous standby named ``standby``
    (none: '' lets them through)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"alter system set synchronous_standby_names = '{standby}'")
        conn.execute("select pg_reload_conf()")
    time.sleep(0.3)  # the reload reaches every backend


@pytest.fixture(scope="module")
def server():
    """One private server for the module (each test gets a database of its own there)."""
    yield from _a_private_server("deadline-pg")


@pytest.fixture(scope="module")
def template(server) -> str:
    """A migrated database the tests copy (migrating each would cost seconds)."""
    migrations.upgrade(server.create_database("pdam_template"), sealer=SEALER)
    return "pdam_template"


@pytest.fixture
def database(server, template):
    name = f"pdam_{next(_numbers)}"
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f'create database "{name}" template "{template}"')
    url = server.url(name)
    yield url
    stall(url, "")


@pytest.fixture
def stalled(database):
    """A migrated database on a server whose writing commits wait forever (from ``stall()`` on)."""
    return database


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"select count(*) from {table}").fetchone()[0]


# -- the libraries' behaviour, pinned ------------------------------------------------------


def test_psycopg_cancel_of_a_commit_waiting_for_a_standby_commits_locally_with_a_warning(stalled):
    stall(stalled)
    conn = psycopg.connect(stalled)
    notices = deadline.watch_notices(conn)
    conn.execute("create table pinned (x int)")
    threading.Timer(0.5, lambda: conn.cancel_safe(timeout=2)).start()
    started = time.monotonic()
    conn.commit()  # no exception: the cancel ends the wait, not the commit
    assert 0.4 < time.monotonic() - started < 3
    assert notices.warnings == [WARNING]
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    conn.close()
    assert _count(stalled, "pg_class where relname = 'pinned'") == 1  # committed locally
    # statement_timeout does not end the wait (PostgreSQL checks it per statement, not in
    # the commit's wait for the standby): only a cancel does.
    conn = psycopg.connect(stalled, options="-c statement_timeout=200")
    conn.execute("create table pinned2 (x int)")
    threading.Timer(1.0, lambda: conn.cancel_safe(timeout=2)).start()
    started = time.monotonic()
    conn.commit()
    assert time.monotonic() - started >= 0.9
    conn.close()


def test_psycopg_async_task_cancelled_in_a_commit_sends_a_cancel(stalled):
    stall(stalled)

    async def main():
        conn = await psycopg.AsyncConnection.connect(stalled)
        notices = deadline.Notices()
        conn.add_notice_handler(notices)
        await conn.execute("create table pinned_async (x int)")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await conn.commit()
        took = time.monotonic() - started
        await asyncio.sleep(0.3)  # the server's answer to the cancel arrives
        await conn.execute("select 1")  # the connection is usable again, idle
        await conn.close()
        return took, notices.warnings

    took, warnings = asyncio.run(main())
    assert took < 2 and warnings == [WARNING]
    assert _count(stalled, "pg_class where relname = 'pinned_async'") == 1


# -- the deadline --------------------------------------------------------------------------


def test_a_commit_cut_by_the_deadline_is_unconfirmed_within_it(make_app, stalled):
    app = make_app(DATABASE_URL=stalled)
    engine = app.extensions["pdam.runtime"].database.engine
    stall(stalled)
    started = time.monotonic()
    with pytest.raises(deadline.CommitUnconfirmed) as caught, deadline.bounded(2):
        with engine.connect() as conn, committing(conn):
            conn.exec_driver_sql("insert into health_probe (id) values (true) on conflict do nothing")
            conn.exec_driver_sql("update health_probe set beats = beats + 1")
    assert time.monotonic() - started < 2
    assert is_transient(caught.value)
    assert WARNING in str(caught.value)


def test_a_statement_blocked_by_a_lock_ends_at_the_deadline(make_app, database):
    app = make_app(DATABASE_URL=database, DB_STATEMENT_TIMEOUT_MS=60000)
    engine = app.extensions["pdam.runtime"].database.engine
    holder = psycopg.connect(database)
    holder.execute("lock table health_probe in access exclusive mode")
    try:
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError) as caught, deadline.bounded(2):
            with engine.connect() as conn:
                conn.exec_driver_sql("select * from health_probe")
        assert 0.9 < time.monotonic() - started < 2
        assert isinstance(caught.value.orig, psycopg.errors.QueryCanceled) and is_transient(caught.value)
        # a later statement of the same work fails at once: its time is over
        with pytest.raises(deadline.DeadlineExceeded), deadline.bounded(0.2):
            time.sleep(0.15)
            deadline.check()
    finally:
        holder.close()


def test_a_server_that_never_answers_is_cut_off(make_app, server, database):
    """A server that cannot even take the cancel (stopped with SIGSTOP): the connection's
    socket is shut down before the deadline, the statement fails as lost."""
    import os
    import signal

    app = make_app(DATABASE_URL=database)
    engine = app.extensions["pdam.runtime"].database.engine
    with engine.connect() as conn:
        backend = conn.exec_driver_sql("select pg_backend_pid()").scalar()
        conn.rollback()
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
        os.kill(backend, signal.SIGSTOP)
        os.kill(postmaster, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(Exception) as caught, deadline.bounded(2):
                deadline.adopt(conn.connection.driver_connection)
                conn.exec_driver_sql("select 1")
            assert time.monotonic() - started < 2
            assert is_transient(caught.value)
        finally:
            os.kill(postmaster, signal.SIGCONT)
            os.kill(backend, signal.SIGCONT)


# -- the partner's view --------------------------------------------------------------------


def _partner(app, keys) -> dict:
    with app.app_context(), runtime.transaction() as conn:
        partners.add(conn, "00", "BANK1", SEALER)
        import_bills(conn, bill_line(CID, "202001", 50000, 0, 0))
    return {"Authorization": f"Bearer {issue(app, keys['ES256']['private'], '00', days=1)}"}


def test_an_unconfirmed_payment_is_503_and_its_retry_the_one_payment(make_app, stalled, keys):
    app = make_app(DATABASE_URL=stalled, REQUEST_DEADLINE_SECONDS=3)
    headers = _partner(app, keys)
    client = app.test_client()
    inq = client.get(f"/tagihan/{CID}", headers=headers).headers["X-Cross-Site"]
    stall(stalled)
    started = time.monotonic()
    res = client.post(
        f"/tagihan/{CID}", json=body(inq, pid="p-unconfirmed", amo=50000, per=[202001]), headers=headers
    )
    took = time.monotonic() - started
    assert res.status_code == 503 and res.json["error"] == 503 and res.headers["Retry-After"], res.data
    assert took < 3
    health = client.get("/health")
    assert health.status_code == 503 and health.json["database"] == "ok"
    assert health.json["commit"] == "unavailable" and health.headers["Retry-After"]
    assert _count(stalled, "payment") == 1  # committed locally, not confirmed
    stall(stalled, "")  # the operator clears synchronous_standby_names
    res = client.post(
        f"/tagihan/{CID}", json=body(inq, pid="p-unconfirmed", amo=50000, per=[202001]), headers=headers
    )
    assert res.status_code == 202, res.data  # the replay of the one payment
    assert _count(stalled, "payment") == 1
    assert client.get("/health").status_code == 200 or wait_healthy(client)


def wait_healthy(client) -> bool:
    deadline_at = time.monotonic() + 5
    while time.monotonic() < deadline_at:
        if client.get("/health").status_code == 200:
            return True
        time.sleep(0.2)
    return False


def test_health_says_whether_the_database_answers_and_can_commit(make_app, server, database):
    client = make_app(DATABASE_URL=database).test_client()
    res = client.get("/health")
    assert res.status_code == 200
    assert res.json | {"version": None} == {"status": "ok", "database": "ok", "commit": "ok", "version": None}
    stall(database)
    try:
        time.sleep(2)  # the probe's next checks meet the stalled commits
        started = time.monotonic()
        res = client.get("/health")
        assert time.monotonic() - started < 1
        assert res.status_code == 503 and (res.json["database"], res.json["commit"]) == ("ok", "unavailable")
    finally:
        stall(database, "")
    assert wait_healthy(client)
    server.stop()
    try:
        time.sleep(1.5)
        started = time.monotonic()
        res = client.get("/health")
        assert time.monotonic() - started < 1
        assert res.status_code == 503 and res.json["database"] == "unavailable"
    finally:
        server.start()
    assert wait_healthy(client)


def test_gunicorn_answers_health_within_a_second_while_its_one_thread_is_blocked(
    make_app, stalled, keys, app_config, tmp_path
):
    """The Procfile's gunicorn, one worker of one thread: a payment holds the thread in a
    commit that waits for a standby; /health still answers within a second each time (the
    health lane), and the payment is a 503 within the deadline."""
    import urllib3

    from tests.fixtures.network import served

    app = make_app(DATABASE_URL=stalled)
    headers = _partner(app, keys)
    env = {
        "DATABASE_URL": stalled,
        "JWT_PUBLIC_KEY": app_config["PDAM_JWT_PUBLIC_KEY"],
        "JWT_ISSUER": app_config["JWT_ISSUER"],
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "WEB_THREADS": "1",
        "REQUEST_DEADLINE_SECONDS": "6",
        "PARTNER_RATE_LIMIT": "0",
    }
    with served(env, workers=1, log_path=tmp_path / "gunicorn.log") as url:
        res = urllib3.request("GET", f"{url}/tagihan/{CID}", headers=headers, timeout=10, retries=False)
        assert res.status == 200, res.data
        inq = res.headers["X-Cross-Site"]
        assert urllib3.request("GET", f"{url}/health", timeout=5, retries=False).status == 200
        stall(stalled)
        answers = {}

        def pay():
            started = time.monotonic()
            res = urllib3.request(
                "POST",
                f"{url}/tagihan/{CID}",
                json=body(inq, pid="p-lane", amo=50000, per=[202001]),
                headers=headers,
                timeout=20,
                retries=False,
            )
            answers["payment"] = (res.status, res.headers.get("Retry-After"), time.monotonic() - started)

        payer = threading.Thread(target=pay)
        payer.start()
        time.sleep(0.5)  # the payment holds the one thread
        times = []
        statuses = []
        for _ in range(6):
            started = time.monotonic()
            res = urllib3.request("GET", f"{url}/health", timeout=5, retries=False)
            times.append(time.monotonic() - started)
            statuses.append((res.status, res.json().get("commit")))
            time.sleep(0.5)
        payer.join(timeout=20)
    assert max(times) < 1.0, times
    assert statuses[-1] == (503, "unavailable"), statuses
    status, retry_after, took = answers["payment"]
    assert status == 503 and retry_after and took < 6, answers


@pytest.mark.parametrize("path", ["async", "sync"])
def test_a_posting_stuck_on_the_database_ends_as_retryable(make_app, stalled, path):
    """The job server's posting, on its async path (the worker's pool: the task is cancelled,
    psycopg cancels the statement) and its sync one (a separate ledger: the watchdog): a
    commit waiting for a standby ends within the deadline as a failure that can pass; once
    the standby is not waited for, the next attempt finds the payment posted once."""
    import datetime as dt

    from pdam.core import errors
    from tests.factories import make_payment, run_posting
    from tests.jobs.test_posting_async import run_posting_async

    app = make_app(DATABASE_URL=stalled, REQUEST_DEADLINE_SECONDS=2)
    with app.app_context(), runtime.transaction() as conn:
        partners.add(conn, "00", "BANK1", SEALER)
        import_bills(conn, bill_line(CID, "202001", 50000, 0, 0))
        payment = make_payment(conn, "00", CID, "p-job", dt.datetime.now(dt.UTC))
    post = run_posting_async if path == "async" else run_posting
    stall(stalled)
    started = time.monotonic()
    with pytest.raises(errors.Retry):
        post(app, payment.id, 1)
    assert time.monotonic() - started < 2.5
    stall(stalled, "")
    assert post(app, payment.id, 2) == "accepted"
    assert _count(stalled, "bill where paid_by is not null") == 1


def test_a_delivery_stuck_on_the_database_ends_as_retryable(make_app, stalled, keys):
    """A callback's delivery: the receiver is called (here: refuses), then recording the
    attempt waits for a standby; the job ends within the deadline plus the receiver's time
    as a failure that can pass, and a later run records it."""
    from pdam.core import errors
    from tests.factories import run_delivery

    app = make_app(DATABASE_URL=stalled, REQUEST_DEADLINE_SECONDS=2, WEBHOOK_TIMEOUT_SECONDS=1)
    headers = _partner(app, keys)
    client = app.test_client()
    inq = client.get(f"/tagihan/{CID}", headers=headers).headers["X-Cross-Site"]
    res = client.post(
        f"/tagihan/{CID}",
        json=body(inq, pid="p-hook", amo=50000, per=[202001]),
        headers={**headers, "X-Async": "http://127.0.0.1:9/hook"},
    )
    assert res.status_code == 202, res.data
    with psycopg.connect(stalled) as conn:
        (delivery,) = conn.execute("select id from webhook_delivery").fetchone()
    stall(stalled)
    started = time.monotonic()
    with pytest.raises(errors.Retry):
        run_delivery(app, delivery)
    assert time.monotonic() - started < 3
    stall(stalled, "")
    with pytest.raises(errors.Retry):  # the receiver still refuses: pending, recorded this time
        run_delivery(app, delivery)
    with psycopg.connect(stalled) as conn:
        assert conn.execute("select status from webhook_delivery").fetchone()[0] == "pending"


def test_health_answers_in_time_while_the_server_hangs(make_app, server, database):
    """Every process of the server stopped (SIGSTOP: no refusal, no answer, no cancel taken):
    /health still answers within a second, 503, the database does not answer; 200 again
    once it resumes."""
    import os
    import signal

    client = make_app(DATABASE_URL=database).test_client()
    assert client.get("/health").status_code == 200
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    pids = [postmaster, *_children(postmaster)]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    time.sleep(0.3)  # a check whose answers were on their way at the stop ends
    try:
        times, answers = [], []
        for _ in range(4):
            started = time.monotonic()
            res = client.get("/health")
            times.append(time.monotonic() - started)
            answers.append((res.status_code, res.json["database"]))
            time.sleep(0.3)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert max(times) < 1, times
    # every answer a 503; the first may come from a check whose select ran just before the stop
    # (then its commit could not: "database" ok, "commit" unavailable), the later ones not
    assert {status for status, _ in answers} == {503}, answers
    assert answers[1:] == [(503, "unavailable")] * 3, answers
    assert wait_healthy(client)


def _children(parent: int) -> list[int]:
    import os
    from pathlib import Path

    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(raw[raw.rindex(")") + 2 :].split()[1]) == parent:
                found.append(int(entry))
    return found
