"""BILLING_DATABASE_URL: the ledger in another PostgreSQL, posting keyed by the payment."""

from __future__ import annotations

import io

import psycopg
import pytest
import sqlalchemy as sa

from jobs import posting as jobs_posting
from pdam.core import billing, errors, posting
from pdam.infra import migrations
from pdam.web import runtime
from tests.conftest import CSV_HEADER, wait_for
from tests.test_payment import CID, body


@pytest.fixture
def ledger(private_server, database_url):
    url = private_server.create_database("ledger")
    migrations.upgrade(database_url, url)
    return url


@pytest.fixture
def split_app(make_app, ledger, add_partner):
    app = make_app(BILLING_DATABASE_URL=ledger)
    rows = billing.parse_csv(io.StringIO(CSV_HEADER + "".join(
        f"{CID},Nala,Jl. X,10R,b{p},{p},0,10,10,40000,8000,800,0,0\n" for p in ("202001", "202002"))))
    with app.app_context(), runtime.ledger_transaction() as conn:
        billing.import_rows(conn, rows)
    return app


def ledger_rows(url):
    with psycopg.connect(url) as conn:
        return conn.execute("select period, paid_by from bill order by period").fetchall()


def accept_one(app, headers):
    client = app.test_client()
    res = client.get(f"/tagihan/{CID}", headers=headers)
    assert res.status_code == 200, res.json
    pay = client.post(f"/tagihan/{CID}", json=body(res.headers["X-Cross-Site"], amo=97600, per=[202001, 202002]),
                      headers=headers)
    assert pay.status_code == 202, pay.json
    return pay.json["data"]["nob"]


def payment_id(app):
    with app.app_context():
        return runtime.connection().execute(sa.text("select id from payment")).scalar()


def run_job(app, payment_id, attempt):
    """One posting attempt as the job server runs it, on the app's runtime."""
    return jobs_posting.run(app.extensions["pdam.runtime"], payment_id, attempt)


def test_ledger_lives_in_the_other_database(split_app, partner_headers, ledger, run_sql):
    nob = accept_one(split_app, partner_headers)
    assert run_job(split_app, payment_id(split_app), 1) == "accepted"
    assert ledger_rows(ledger) == [("202001", nob), ("202002", nob)]
    assert run_sql("select count(*) from bill") == [(0,)]  # nothing in the payments database's copy


def test_crash_between_the_two_commits_is_recognised(split_app, partner_headers, ledger, run_sql):
    nob = accept_one(split_app, partner_headers)
    pid = payment_id(split_app)
    with split_app.app_context():
        conn, led = runtime.connection(), runtime.ledger_connection()
        posting.post(conn, led, pid, runtime.now())
        led.commit()  # the ledger committed ...
        conn.rollback()  # ... and the process died before the payments database did
    assert ledger_rows(ledger) == [("202001", nob), ("202002", nob)]
    assert run_sql("select status from payment") == [("created",)]
    assert run_job(split_app, pid, 2) == "accepted"  # "paid by this payment", not "paid before"
    assert run_sql("select status, paid_total, problem_periods from payment") == [("accepted", 97600, [])]


def test_ledger_down_then_back(split_app, partner_headers, private_server, start_worker, ledger, run_sql):
    nob = accept_one(split_app, partner_headers)
    private_server.stop()
    try:
        start_worker(BILLING_DATABASE_URL=ledger, POSTING_RETRY_SECONDS=1, DB_CONNECT_TIMEOUT=1)
        # Attempts fail while the ledger is down; the payment stays in progress, not stuck.
        wait_for(lambda: run_sql("select attempts from procrastinate_jobs where task_name = 'posting.post_payment'")[0][0] >= 2,
                 timeout=30)
        assert run_sql("select status, stuck_at from payment") == [("created", None)]
    finally:
        private_server.start()
    wait_for(lambda: run_sql("select status from payment")[0][0] != "created", timeout=30)
    assert run_sql("select status, paid_total from payment") == [("accepted", 97600)]
    assert ledger_rows(ledger) == [("202001", nob), ("202002", nob)]


def test_inquiry_answers_503_while_ledger_down(split_app, partner_headers, private_server):
    private_server.stop()
    try:
        res = split_app.test_client().get(f"/tagihan/{CID}", headers=partner_headers)
        assert res.status_code == 503 and res.json["error"] == 503
    finally:
        private_server.start()
    assert split_app.test_client().get(f"/tagihan/{CID}", headers=partner_headers).status_code == 200


def ledger_sql(url, sql):
    with psycopg.connect(url) as conn:
        conn.execute(sql)


# The ledger changes between the inquiry and posting, and the outcome the payment gets.
OUTCOMES = {
    "accepted": ("select", ("accepted", 97600, ["202001", "202002"], [])),
    "changed-denda": (
        "update bill set late_fee = 5000 where period = '202002'",
        ("changed", 102600, ["202001", "202002"], []),
    ),
    "changed-paid-elsewhere": (
        "update bill set paid_by = '992001010001', paid_at = now() where period = '202001'",
        ("changed", 48800, ["202002"], ["202001"]),
    ),
    "rejected": (
        "update bill set paid_by = '992001010001', paid_at = now()",
        ("rejected", 0, [], ["202001", "202002"]),
    ),
}


@pytest.mark.parametrize("change, expected", OUTCOMES.values(), ids=OUTCOMES)
def test_outcomes_with_a_separate_ledger(split_app, partner_headers, ledger, run_sql, change, expected):
    """The same outcomes and meta as with one database (tests/test_posting.py), and a
    second run of the job changes nothing."""
    nob = accept_one(split_app, partner_headers)
    ledger_sql(ledger, change)
    before = dict(ledger_rows(ledger))
    assert run_job(split_app, payment_id(split_app), 1) == expected[0]
    payment = "select status, paid_total, paid_periods, problem_periods from payment"
    assert run_sql(payment) == [expected]
    paid, problems = expected[2], expected[3]
    late_fee = {"202002": 5000} if "late_fee" in change else {}
    assert ledger_rows(ledger) == sorted({**before, **dict.fromkeys(paid, nob)}.items())
    assert run_sql("select period, bill_no, late_fee, paid, live from payment_period order by period") == sorted(
        [(p, f"b{p}", late_fee.get(p, 0), True, True) for p in paid]
        + [(p, None, None, False, False) for p in problems]
    )
    # the job again: nothing changes
    assert run_job(split_app, payment_id(split_app), 2) == expected[0]
    assert run_sql(payment) == [expected]
    assert ledger_rows(ledger) == sorted({**before, **dict.fromkeys(paid, nob)}.items())


@pytest.mark.parametrize("separate", [False, True], ids=["one-database", "separate-ledger"])
def test_a_missing_payment_is_not_retried(make_app, split_app, separate):
    app = split_app if separate else make_app()
    with pytest.raises(errors.GiveUp) as raised:
        run_job(app, 987654321, 1)
    assert isinstance(raised.value.__cause__, posting.PaymentMissing)
