"""Posting (pdam/core/posting.py, contract sections 5 and 7): each outcome with the
contract's ``meta``, with one database and with a separate ledger; idempotence and races."""

from __future__ import annotations

import psycopg
import pytest

from tests.factories import CID, race, run_posting

STATUS_KEYS = ["status", "code", "message", "data", "meta"]


def status(client, headers, **query):
    return client.get(f"/status/{CID}", query_string=query, headers=headers)


def test_accepted_with_contract_meta(client, partner_headers, example_bill, pay, post_queued, run_sql):
    data = pay(partner_headers, per=[201903])
    assert post_queued() == ["accepted"]
    res = status(client, partner_headers, nob=data["nob"])
    assert res.status_code == 202
    assert list(res.json) == STATUS_KEYS
    assert res.json == {
        "status": "accepted",
        "code": 202,
        "message": "payment done",
        "data": {
            **{k: data[k] for k in ("cid", "pid", "pat", "pop", "mer", "inq", "pts")},
            "rev": 0,
            "nob": data["nob"],
        },
        "meta": {
            "jumlah_tagihan": 41500,
            "jumlah_bayar": 41500,
            "jumlah_masalah": 0,
            "lembar_tagihan": 1,
            "lembar_bayar": 1,
            "lembar_masalah": 0,
            "periode_tagihan": [201903],
            "periode_bayar": [201903],
            "periode_masalah": None,
        },
    }
    assert list(res.json["data"]) == ["cid", "pid", "pat", "pop", "mer", "inq", "pts", "rev", "nob"]
    assert run_sql("select paid_by from bill") == [(data["nob"],)]
    assert run_sql("select bill_no, water, paid, live from payment_period") == [
        ("b201903", 32700, True, True)
    ]


def test_changed_when_denda_changed(client, partner_headers, seed_bills, pay, post_queued, run_sql):
    seed_bills.simple(CID, ["202001", "202002"])
    data = pay(partner_headers, per=[202001, 202002])  # 97,600
    run_sql("update bill set late_fee = 5000 where period = '202002'")  # denda grew after the inquiry
    assert post_queued() == ["changed"]
    st = status(client, partner_headers, nob=data["nob"])
    assert st.status_code == 206 and st.json["message"] == "suspect data"
    assert st.json["meta"] == {
        "jumlah_tagihan": 102600,
        "jumlah_bayar": 97600,
        "jumlah_masalah": -5000,
        "lembar_tagihan": 2,
        "lembar_bayar": 2,
        "lembar_masalah": 0,
        "periode_tagihan": [202001, 202002],
        "periode_bayar": [202001, 202002],
        "periode_masalah": None,
    }


def test_changed_when_a_period_was_paid_elsewhere(
    client, partner_headers, seed_bills, pay, post_queued, run_sql
):
    seed_bills.simple(CID, ["202001", "202002"])
    data = pay(partner_headers, per=[202001, 202002])
    run_sql(
        "update bill set paid_by = '992001010001', paid_at = now() where period = '202001'"
    )  # at the counter
    assert post_queued() == ["changed"]
    st = status(client, partner_headers, pid="evid-123456")
    assert st.status_code == 206
    assert st.json["meta"] == {
        "jumlah_tagihan": 48800,
        "jumlah_bayar": 97600,
        "jumlah_masalah": 48800,
        "lembar_tagihan": 1,
        "lembar_bayar": 2,
        "lembar_masalah": 1,
        "periode_tagihan": [202002],
        "periode_bayar": [202001, 202002],
        "periode_masalah": [202001],
    }
    assert run_sql("select paid_by from bill order by period") == [("992001010001",), (data["nob"],)]
    # The problem period is free again for the bill's real state: no live claim on it.
    assert run_sql("select period, paid, live from payment_period order by period") == [
        ("202001", False, False),
        ("202002", True, True),
    ]


def test_rejected_when_everything_was_paid_before(
    client, partner_headers, example_bill, pay, post_queued, run_sql
):
    data = pay(partner_headers, per=[201903])
    run_sql("update bill set paid_by = '992001010001', paid_at = now()")
    assert post_queued() == ["rejected"]
    st = status(client, partner_headers, pid=data["pid"], pat=data["pat"])
    assert st.status_code == 409
    assert st.json["status"] == "rejected" and st.json["code"] == 409 and st.json["message"] == "paid before"
    assert st.json["meta"]["jumlah_tagihan"] == 0 and st.json["meta"]["jumlah_masalah"] == 41500
    assert st.json["meta"]["periode_masalah"] == [201903] and st.json["meta"]["lembar_tagihan"] == 0
    assert run_sql("select paid_by from bill") == [("992001010001",)]


def test_running_the_job_twice_changes_nothing(partner_headers, example_bill, pay, post_queued, run_sql):
    pay(partner_headers, per=[201903])
    assert post_queued() == ["accepted"]
    before = run_sql("select paid_by, paid_at from bill")
    after_payment = run_sql("select status, posted_at, paid_total from payment")
    assert post_queued() == ["accepted"]
    assert run_sql("select paid_by, paid_at from bill") == before
    assert run_sql("select status, posted_at, paid_total from payment") == after_payment


def test_two_workers_racing_on_one_payment(app, partner_headers, example_bill, pay, run_sql):
    pay(partner_headers, per=[201903])
    (payment_id,) = run_sql("select id from payment")[0]
    results = race([lambda: run_posting(app, payment_id, 1)] * 8)
    assert results == ["accepted"] * 8
    assert run_sql("select count(*) from bill where paid_by is not null") == [(1,)]


# -- a separate ledger (BILLING_DATABASE_URL): the same outcomes --------------------------------


def ledger_rows(url):
    with psycopg.connect(url) as conn:
        return conn.execute("select period, paid_by from bill order by period").fetchall()


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
def test_outcomes_with_a_separate_ledger(split_app, partner_headers, pay, run_sql, change, expected):
    """The same outcomes and meta as with one database (above), and a second run of the
    job changes nothing."""
    nob = pay(partner_headers, app=split_app)["nob"]
    ledger_sql(split_app.ledger_url, change)
    before = dict(ledger_rows(split_app.ledger_url))
    (payment_id,) = run_sql("select id from payment")[0]
    assert run_posting(split_app, payment_id, 1) == expected[0]
    payment = "select status, paid_total, paid_periods, problem_periods from payment"
    assert run_sql(payment) == [expected]
    paid, problems = expected[2], expected[3]
    late_fee = {"202002": 5000} if "late_fee" in change else {}
    assert ledger_rows(split_app.ledger_url) == sorted({**before, **dict.fromkeys(paid, nob)}.items())
    assert run_sql(
        "select period, bill_no, late_fee, paid, live from payment_period order by period"
    ) == sorted(
        [(p, f"b{p}", late_fee.get(p, 0), True, True) for p in paid]
        + [(p, None, None, False, False) for p in problems]
    )
    # the job again: nothing changes
    assert run_posting(split_app, payment_id, 2) == expected[0]
    assert run_sql(payment) == [expected]
    assert ledger_rows(split_app.ledger_url) == sorted({**before, **dict.fromkeys(paid, nob)}.items())
