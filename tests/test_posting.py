"""Contract sections 5 and 7: posting outcomes, idempotence, status."""

from __future__ import annotations

import pytest

from tests.test_payment import CID, body

STATUS_KEYS = ["status", "code", "message", "data", "meta"]


@pytest.fixture
def webhook_example(seed_bills):
    """The contract's status/webhook example: one bill of 41,500 for 201903."""
    seed_bills(f"{CID},Nala Gareng,Jl. Merdeka 7,10R,b201903,201903,0,10,10,32700,8000,800,0,0\n")


def paid_one(client, headers, inquire, **overrides):
    _, inq = inquire(CID, headers)
    res = client.post(f"/tagihan/{CID}", json=body(inq, amo=41500, per=[201903], **overrides), headers=headers)
    assert res.status_code == 202, res.json
    return res.json["data"]


def status(client, headers, **query):
    return client.get(f"/status/{CID}", query_string=query, headers=headers)


def test_status_before_posting_is_201(client, partner_headers, webhook_example, inquire):
    data = paid_one(client, partner_headers, inquire)
    res = status(client, partner_headers, nob=data["nob"])
    assert res.status_code == 201
    assert res.json["status"] == "created" and res.json["code"] == 201
    assert res.json["message"] == "payment in progress"
    assert res.json["meta"] == {
        "jumlah_tagihan": None, "jumlah_bayar": 41500, "jumlah_masalah": None,
        "lembar_tagihan": None, "lembar_bayar": 1, "lembar_masalah": None,
        "periode_tagihan": None, "periode_bayar": [201903], "periode_masalah": None,
    }


def test_accepted_with_contract_meta(client, partner_headers, webhook_example, inquire, post_queued, run_sql):
    data = paid_one(client, partner_headers, inquire)
    assert post_queued() == ["accepted"]
    res = status(client, partner_headers, nob=data["nob"])
    assert res.status_code == 202
    assert list(res.json) == STATUS_KEYS
    assert res.json == {
        "status": "accepted",
        "code": 202,
        "message": "payment done",
        "data": {**{k: data[k] for k in ("cid", "pid", "pat", "pop", "mer", "inq", "pts")}, "rev": 0, "nob": data["nob"]},
        "meta": {"jumlah_tagihan": 41500, "jumlah_bayar": 41500, "jumlah_masalah": 0, "lembar_tagihan": 1,
                 "lembar_bayar": 1, "lembar_masalah": 0, "periode_tagihan": [201903], "periode_bayar": [201903],
                 "periode_masalah": None},
    }
    assert list(res.json["data"]) == ["cid", "pid", "pat", "pop", "mer", "inq", "pts", "rev", "nob"]
    assert run_sql("select paid_by from bill") == [(data["nob"],)]
    assert run_sql("select bill_no, water, paid, live from payment_period") == [("b201903", 32700, True, True)]


def test_changed_when_denda_changed(client, partner_headers, seed_bills, inquire, post_queued, run_sql):
    seed_bills.simple(CID, ["202001", "202002"])
    _, inq = inquire(CID, partner_headers)
    res = client.post(f"/tagihan/{CID}", json=body(inq, amo=97600, per=[202001, 202002]), headers=partner_headers)
    run_sql("update bill set late_fee = 5000 where period = '202002'")  # denda grew after the inquiry
    assert post_queued() == ["changed"]
    st = status(client, partner_headers, nob=res.json["data"]["nob"])
    assert st.status_code == 206 and st.json["message"] == "suspect data"
    assert st.json["meta"] == {
        "jumlah_tagihan": 102600, "jumlah_bayar": 97600, "jumlah_masalah": -5000,
        "lembar_tagihan": 2, "lembar_bayar": 2, "lembar_masalah": 0,
        "periode_tagihan": [202001, 202002], "periode_bayar": [202001, 202002], "periode_masalah": None,
    }


def test_changed_when_a_period_was_paid_elsewhere(client, partner_headers, seed_bills, inquire, post_queued, run_sql):
    seed_bills.simple(CID, ["202001", "202002"])
    _, inq = inquire(CID, partner_headers)
    res = client.post(f"/tagihan/{CID}", json=body(inq, amo=97600, per=[202001, 202002]), headers=partner_headers)
    run_sql("update bill set paid_by = '992001010001', paid_at = now() where period = '202001'")  # at the counter
    assert post_queued() == ["changed"]
    st = status(client, partner_headers, pid="evid-123456")
    assert st.status_code == 206
    assert st.json["meta"] == {
        "jumlah_tagihan": 48800, "jumlah_bayar": 97600, "jumlah_masalah": 48800,
        "lembar_tagihan": 1, "lembar_bayar": 2, "lembar_masalah": 1,
        "periode_tagihan": [202002], "periode_bayar": [202001, 202002], "periode_masalah": [202001],
    }
    assert run_sql("select paid_by from bill order by period") == [("992001010001",), (res.json["data"]["nob"],)]
    # The problem period is free again for the bill's real state: no live claim on it.
    assert run_sql("select period, paid, live from payment_period order by period") == [
        ("202001", False, False), ("202002", True, True)
    ]


def test_rejected_when_everything_was_paid_before(client, partner_headers, webhook_example, inquire, post_queued, run_sql):
    data = paid_one(client, partner_headers, inquire)
    run_sql("update bill set paid_by = '992001010001', paid_at = now()")
    assert post_queued() == ["rejected"]
    st = status(client, partner_headers, pid=data["pid"], pat=data["pat"])
    assert st.status_code == 409
    assert st.json["status"] == "rejected" and st.json["code"] == 409 and st.json["message"] == "paid before"
    assert st.json["meta"]["jumlah_tagihan"] == 0 and st.json["meta"]["jumlah_masalah"] == 41500
    assert st.json["meta"]["periode_masalah"] == [201903] and st.json["meta"]["lembar_tagihan"] == 0
    assert run_sql("select paid_by from bill") == [("992001010001",)]


def test_running_the_job_twice_changes_nothing(client, partner_headers, webhook_example, inquire, post_queued, run_sql):
    paid_one(client, partner_headers, inquire)
    assert post_queued() == ["accepted"]
    before = run_sql("select paid_by, paid_at from bill")
    after_payment = run_sql("select status, posted_at, paid_total from payment")
    assert post_queued() == ["accepted"]
    assert run_sql("select paid_by, paid_at from bill") == before
    assert run_sql("select status, posted_at, paid_total from payment") == after_payment


def test_two_workers_racing_on_one_payment(app, client, partner_headers, webhook_example, inquire, run_sql):
    import threading

    from jobs import posting

    rt = app.extensions["pdam.runtime"]
    paid_one(client, partner_headers, inquire)
    (payment_id,) = run_sql("select id from payment")[0]
    barrier = threading.Barrier(8)
    results = []

    def work():
        barrier.wait()
        results.append(posting.run(rt, payment_id, 1))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["accepted"] * 8
    assert run_sql("select count(*) from bill where paid_by is not null") == [(1,)]


@pytest.mark.parametrize("query", [{}, {"pat": "A" * 20}, {"inq": "a" * 32}, {"nob": "12"}, {"pid": "x" * 51}])
def test_status_bad_query_is_400(client, partner_headers, query):
    res = status(client, partner_headers, **query)
    assert res.status_code == 400 and res.json["error"] == 400


def test_status_lookups(client, partner_headers, webhook_example, inquire):
    data = paid_one(client, partner_headers, inquire)
    for query in ({"nob": data["nob"]}, {"pid": data["pid"]}, {"pid": data["pid"], "pat": data["pat"]},
                  {"pid": data["pid"], "inq": data["inq"]}):
        assert status(client, partner_headers, **query).status_code == 201, query
    for query in ({"nob": "001111110001"}, {"pid": "nope"}, {"pid": data["pid"], "pat": "F" * 20},
                  {"pid": data["pid"], "inq": "f" * 32}):
        res = status(client, partner_headers, **query)
        assert res.json == {"error": 404, "message": "payment not found"}, query
    other_cid = client.get(f"/status/0101?nob={data['nob']}", headers=partner_headers)
    assert other_cid.status_code == 404


def test_status_of_another_partner_is_404(client, partner_headers, auth_for, webhook_example, inquire):
    data = paid_one(client, partner_headers, inquire)
    res = status(client, auth_for("96", "BANK2"), nob=data["nob"])
    assert res.json == {"error": 404, "message": "payment not found"}


def test_transient_failure_is_retried_then_flagged_stuck(app, client, partner_headers, webhook_example, inquire, run_sql):
    from sqlalchemy.exc import OperationalError

    from jobs import posting
    from pdam.core.errors import GiveUp, Retry

    rt = app.extensions["pdam.runtime"]
    paid_one(client, partner_headers, inquire)
    (payment_id,) = run_sql("select id from payment")[0]
    run_sql("create function slow_bill() returns trigger language plpgsql as $$ begin"
            " raise exception using errcode = '40P01', message = 'deadlock detected'; end $$;"
            " create trigger slow_bill before update on bill for each row execute function slow_bill()")
    # A failure that can pass: re-raised for the queue's retry, no flag yet.
    with pytest.raises(Retry) as raised:
        posting.run(rt, payment_id, 1)
    assert isinstance(raised.value.__cause__, OperationalError)
    assert run_sql("select status, stuck_at from payment") == [("created", None)]
    # At the last attempt: flagged for operators, still in progress.
    with pytest.raises(GiveUp) as raised:
        posting.run(rt, payment_id, app.config["POSTING_MAX_ATTEMPTS"])
    assert isinstance(raised.value.__cause__, OperationalError)
    rows = run_sql("select status, stuck_at is not null, stuck_reason, posting_attempts from payment")
    assert rows[0][:2] == ("created", True) and "deadlock" in rows[0][2] and rows[0][3] == app.config["POSTING_MAX_ATTEMPTS"]
    run_sql("drop trigger slow_bill on bill")
    # The operator re-queues it; it then posts normally.
    cli = app.test_cli_runner()
    nob = run_sql("select nob from payment")[0][0]
    res = cli.invoke(args=["payment", "requeue", nob])
    assert res.exit_code == 0 and "queued for posting" in res.output
    assert run_sql("select stuck_at from payment") == [(None,)]
    assert posting.run(rt, payment_id, 1) == "accepted"
    again = cli.invoke(args=["payment", "requeue", nob])
    assert again.exit_code == 1 and "already final (accepted)" in again.output
    assert cli.invoke(args=["payment", "requeue", "000000000000"]).exit_code == 1


def test_missing_table_is_not_transient_and_flags_at_once(app, client, partner_headers, webhook_example, inquire, run_sql):
    from jobs import posting
    from pdam.core.errors import GiveUp

    rt = app.extensions["pdam.runtime"]
    paid_one(client, partner_headers, inquire)
    (payment_id,) = run_sql("select id from payment")[0]
    run_sql("alter table bill rename to bill_away")
    try:
        with pytest.raises(GiveUp):  # not retried
            posting.run(rt, payment_id, 1)
    finally:
        run_sql("alter table bill_away rename to bill")
    assert run_sql("select status, stuck_at is not null from payment") == [("created", True)]
