"""Contract section 4: POST /tagihan/<cid> (pdam/peti/bills.py); the inquiry (GET) is in
tests/peti/test_inquiry.py, the reversal (DELETE) in tests/core/test_reversal.py."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.factories import CID, CONTRACT_BILL, CONTRACT_CUSTOMER, SEALER

PERIODS = ["201901", "201902", "201903"]


# -- POST /tagihan/<cid>: the payment (contract section 4) ---------------------------------


@pytest.fixture
def bills(seed_bills):
    # 3 bills of 115,033 + ... chosen so the total is the contract's 345100.
    seed_bills(
        f"{CID},Nala Gareng,Jl. Merdeka 7,10R,a201901,201901,0,10,10,106233,8000,800,0,0\n"
        f"{CID},Nala Gareng,Jl. Merdeka 7,10R,a201902,201902,10,20,10,106233,8000,800,0,0\n"
        f"{CID},Nala Gareng,Jl. Merdeka 7,10R,a201903,201903,20,30,10,106234,8000,800,0,0\n"
    )
    return 345100


def test_contract_example(pay, partner_headers, bills, inquire, run_sql, app):
    _, inq = inquire(CID, partner_headers)
    before = dt.datetime.now(dt.UTC)
    res = pay.response(partner_headers, inq=inq)
    assert res.status_code == 202, res.json
    data = res.json["data"]
    assert res.json == {
        "status": "accepted",
        "message": "Bayarlah tagihan tepat waktu untuk menghindari denda",
        "data": {
            "cid": CID,
            "pid": "evid-123456",
            "pat": data["pat"],
            "pop": "00",
            "mer": "1234",
            "inq": inq,
            "pts": data["pts"],
            "nob": data["nob"],
        },
        "meta": {
            "jumlah_tagihan": None,
            "jumlah_bayar": 345100,
            "jumlah_masalah": None,
            "lembar_tagihan": None,
            "lembar_bayar": 3,
            "lembar_masalah": None,
            "periode_tagihan": None,
            "periode_bayar": [201901, 201902, 201903],
            "periode_masalah": None,
        },
    }
    assert list(res.json) == ["status", "message", "data", "meta"]
    assert list(data) == ["cid", "pid", "pat", "pop", "mer", "inq", "pts", "nob"]
    assert re.fullmatch(r"[0-9A-F]{20}", data["pat"])
    wib_day = (before + dt.timedelta(hours=7)).strftime("%y%m%d")
    assert re.fullmatch(rf"00{wib_day}0001", data["nob"])
    assert before.timestamp() * 1000 - 1 <= data["pts"] <= dt.datetime.now(dt.UTC).timestamp() * 1000
    assert res.headers["X-Advice-Url"] == f"/status/{CID}?nob={data['nob']}"
    assert "Idempotent-Replayed" not in res.headers
    # Recorded and queued together.
    assert run_sql("select status, amount, periods, merchant from payment") == [
        ("created", 345100, PERIODS, "1234")
    ]
    jobs = run_sql(
        "select task_name, queue_name, args from procrastinate_jobs where task_name like 'posting.%'"
    )
    assert [(j[0], j[1]) for j in jobs] == [("posting.post_payment", "posting")]
    assert run_sql("select count(*) from payment_period where live") == [(3,)]


def test_seed_example_single_period_with_numeric_mer_and_string_per(
    pay, partner_headers, seed_bills, inquire, run_sql
):
    seed_bills(CONTRACT_BILL)
    _, inq = inquire(CONTRACT_CUSTOMER, partner_headers)
    res = pay.response(partner_headers, inq=inq, cid=CONTRACT_CUSTOMER, amo=88800, per=["202005"], mer=1234)
    assert res.status_code == 202, res.json
    assert res.json["data"]["mer"] == "1234"
    assert res.json["meta"]["periode_bayar"] == [202005]


def test_paying_part_of_the_inquiry(pay, partner_headers, bills, inquire):
    _, inq = inquire(CID, partner_headers)
    res = pay.response(partner_headers, inq=inq, amo=115033, per=[201901])
    assert res.status_code == 202, res.json
    assert res.json["meta"]["lembar_bayar"] == 1


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"inq": ...}, "inq"),
        ({"inq": "XYZ"}, "inq"),
        ({"amo": ...}, "amo"),
        ({"amo": "345100"}, "amo"),
        ({"amo": 345100.0}, "amo"),
        ({"amo": 3451.5}, "amo"),
        ({"amo": True}, "amo"),
        ({"amo": -1}, "amo"),
        ({"per": ...}, "per"),
        ({"per": []}, "per"),
        ({"per": 201901}, "per"),
        ({"per": [201913]}, "per"),
        ({"per": ["2019-01"]}, "per"),
        ({"per": [201901.0]}, "per"),
        ({"per": [201901, 201901]}, "per"),
        ({"per": [201901, "201901"]}, "per"),  # one period twice
        ({"per": [201901, "201902"]}, "per"),  # all numbers or all strings (uniqueItems is exact)
        ({"mer": ...}, "mer"),
        ({"mer": "12345"}, "mer"),
        ({"mer": ""}, "mer"),
        ({"mer": 12345}, "mer"),
        ({"mer": None}, "mer"),
        ({"pid": ...}, "pid"),
        ({"pid": ""}, "pid"),
        ({"pid": "x" * 51}, "pid"),
        ({"pid": 12}, "pid"),
    ],
)
def test_bad_fields_are_400(pay, partner_headers, bills, inquire, run_sql, overrides, field):
    _, inq = inquire(CID, partner_headers)
    fields = dict(overrides)
    res = pay.response(partner_headers, inq=fields.pop("inq", inq), **fields)
    assert res.status_code == 400, res.json
    assert res.json["error"] == 400 and field in res.json["errors"]
    assert run_sql("select count(*) from payment") == [(0,)]


@pytest.mark.parametrize(
    "data, content_type",
    [
        (b"not json", "application/json"),
        (b'{"inq": "a"', "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"inq": "a"}', "text/plain"),
        (b"", "application/json"),
    ],
)
def test_non_json_body_is_400(client, partner_headers, data, content_type):
    res = client.post(f"/tagihan/{CID}", data=data, headers={**partner_headers, "Content-Type": content_type})
    assert res.status_code == 400
    assert res.json["error"] == 400


def test_malformed_cid_is_400(pay, partner_headers, bills, inquire):
    _, inq = inquire(CID, partner_headers)
    assert pay.response(partner_headers, inq=inq, cid="12ab").status_code == 400


def test_unknown_fields_cannot_set_server_values(pay, partner_headers, bills, inquire, run_sql):
    _, inq = inquire(CID, partner_headers)
    res = pay.response(
        partner_headers,
        inq=inq,
        nob="999999999999",
        status="accepted",
        pop="99",
        pat="F" * 20,
        pts=1,
        rev=1,
        id=5,
    )
    assert res.status_code == 202
    assert res.json["data"]["pop"] == "00" and res.json["data"]["nob"] != "999999999999"
    assert run_sql("select status, partner_code, reversed_at from payment") == [("created", "00", None)]


def test_unknown_inq_is_404(pay, partner_headers, bills):
    res = pay.response(partner_headers, inq="0" * 32)
    assert res.json == {"error": 404, "message": "inquiry token unknown or expired"}


def test_expired_inq_is_404(pay, partner_headers, bills, inquire, run_sql):
    _, inq = inquire(CID, partner_headers)
    run_sql(
        "update inquiry set created_at = now() - interval '20 minutes', expires_at = now() - interval '5 minutes'"
    )
    assert pay.response(partner_headers, inq=inq).status_code == 404


def test_inq_of_another_partner_is_404(pay, partner_headers, auth_for, bills, inquire):
    _, inq = inquire(CID, partner_headers)
    res = pay.response(auth_for("96", "BANK2"), inq=inq)
    assert res.json == {"error": 404, "message": "inquiry token unknown or expired"}


def test_inq_for_another_customer_is_410(pay, partner_headers, bills, seed_bills, inquire):
    seed_bills(CONTRACT_BILL)
    _, inq = inquire(CONTRACT_CUSTOMER, partner_headers)
    res = pay.response(partner_headers, inq=inq)
    assert res.json == {"error": 410, "message": "the inquiry was made for another customer"}


def test_period_not_in_inquiry_is_410(pay, partner_headers, bills, inquire):
    _, inq = inquire(CID, partner_headers)
    res = pay.response(partner_headers, inq=inq, per=[201901, 201904], amo=115033)
    assert res.status_code == 410 and "201904" in res.json["message"]


def test_wrong_amount_is_410(pay, partner_headers, bills, inquire):
    _, inq = inquire(CID, partner_headers)
    res = pay.response(partner_headers, inq=inq, amo=345099)
    assert res.json == {
        "error": 410,
        "message": "amo does not match the bills of the inquiry (expected 345100)",
    }


def test_idempotent_replay(pay, partner_headers, bills, inquire, run_sql):
    _, inq = inquire(CID, partner_headers)
    first = pay.response(partner_headers, inq=inq)
    again = pay.response(partner_headers, inq=inq, per=[201903, 201901, 201902])
    assert again.status_code == 202
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["X-Advice-Url"] == first.headers["X-Advice-Url"]
    assert run_sql("select count(*) from payment") == [(1,)]
    assert run_sql("select count(*) from procrastinate_jobs where task_name = 'posting.post_payment'") == [
        (1,)
    ]


def test_replay_after_inq_expired_and_purged(pay, partner_headers, bills, inquire, run_sql):
    _, inq = inquire(CID, partner_headers)
    first = pay.response(partner_headers, inq=inq)
    run_sql("delete from inquiry")
    again = pay.response(partner_headers, inq=inq)
    assert again.status_code == 202 and again.json == first.json


@pytest.mark.parametrize(
    "change", [{"amo": 115033, "per": [201901]}, {"mer": "9999"}, {"cid": CONTRACT_CUSTOMER}]
)
def test_same_pid_different_request_is_409(pay, partner_headers, bills, seed_bills, inquire, run_sql, change):
    seed_bills(CONTRACT_BILL)
    _, inq = inquire(CID, partner_headers)
    assert pay.response(partner_headers, inq=inq).status_code == 202
    res = pay.response(partner_headers, inq=inq, **change)
    assert res.status_code == 409
    assert res.json["message"] == "pid evid-123456 was already used for another payment"
    assert run_sql("select count(*) from payment") == [(1,)]


def test_same_pid_other_partner_is_independent(pay, partner_headers, auth_for, bills, seed_bills, inquire):
    seed_bills(CONTRACT_BILL)
    _, inq1 = inquire(CID, partner_headers)
    other = auth_for("96", "BANK2")
    _, inq2 = inquire(CONTRACT_CUSTOMER, other)
    assert pay.response(partner_headers, inq=inq1).status_code == 202
    res = pay.response(other, inq=inq2, cid=CONTRACT_CUSTOMER, amo=88800, per=[202005])
    assert res.status_code == 202 and res.json["data"]["nob"].startswith("96")


def test_second_pid_for_same_inq_is_409(pay, partner_headers, bills, inquire):
    _, inq = inquire(CID, partner_headers)
    assert pay.response(partner_headers, inq=inq, amo=115033, per=[201901]).status_code == 202
    res = pay.response(partner_headers, inq=inq, pid="other", amo=115033, per=[201902])
    assert res.json == {"error": 409, "message": "this inquiry already has a payment"}


def test_period_already_in_progress_is_409(pay, partner_headers, bills, inquire):
    _, inq1 = inquire(CID, partner_headers)
    _, inq2 = inquire(CID, partner_headers)
    assert pay.response(partner_headers, inq=inq1, amo=115033, per=[201901]).status_code == 202
    res = pay.response(partner_headers, inq=inq2, pid="second", amo=115033, per=[201901])
    assert res.status_code == 409 and "201901" in res.json["message"]


def test_period_in_progress_hidden_from_next_inquiry(pay, partner_headers, bills, inquire):
    _, inq = inquire(CID, partner_headers)
    pay.response(partner_headers, inq=inq, amo=115033, per=[201901])
    shown, _ = inquire(CID, partner_headers)
    assert [b["periode"] for b in shown["tagihan"]] == ["201902", "201903"]


@pytest.mark.parametrize(
    "url",
    ["ftp://x.example/", "/relative", "http://", "not a url", "https://x.example:99999/", "h" * 10 + "://a"],
)
def test_bad_x_async_is_400(pay, partner_headers, bills, inquire, run_sql, url):
    _, inq = inquire(CID, partner_headers)
    res = pay.response(partner_headers, inq=inq, extra_headers={"X-Async": url})
    assert res.status_code == 400, res.json
    assert run_sql("select count(*) from payment") == [(0,)]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1:9/_GET%20/"])
def test_x_async_of_another_scheme_is_refused_at_the_door(pay, partner_headers, bills, inquire, run_sql, url):
    """Refused here already; the delivery refuses such a URL too (tests/infra/test_http.py)."""
    _, inq = inquire(CID, partner_headers)
    res = pay.response(partner_headers, inq=inq, x_async=url)
    assert res.status_code == 400 and "X-Async" in res.json["message"]
    assert run_sql("select count(*) from payment") == [(0,)]


def test_x_async_too_long_is_400(pay, partner_headers, bills, inquire):
    _, inq = inquire(CID, partner_headers)
    url = "https://hooks.example/" + "a" * 2030
    res = pay.response(partner_headers, inq=inq, extra_headers={"X-Async": url})
    assert res.status_code == 400 and "2048" in res.json["message"]


def test_x_async_stored_with_token_and_authorization(pay, partner_headers, bills, inquire, run_sql):
    _, inq = inquire(CID, partner_headers)
    res = pay.response(
        partner_headers,
        inq=inq,
        extra_headers={"X-Async": "https://hooks.bank.example/pdam", "X-Async-Token": "Bearer cb-secret"},
    )
    assert res.status_code == 202
    ((url, token, authorization),) = run_sql(
        "select callback_url, callback_token, request_authorization from payment"
    )
    assert url == "https://hooks.bank.example/pdam"  # the credentials sealed, the URL not
    assert "cb-secret" not in token and partner_headers["Authorization"] not in authorization
    assert (SEALER.open(token), SEALER.open(authorization)) == (
        "Bearer cb-secret",
        partner_headers["Authorization"],
    )


def test_job_insert_failure_rolls_back_everything(pay, partner_headers, bills, inquire, run_sql):
    _, inq = inquire(CID, partner_headers)
    run_sql(
        "create function refuse_jobs() returns trigger language plpgsql as"
        " $$ begin raise exception 'queue is broken'; end $$;"
        " create trigger refuse_jobs before insert on procrastinate_jobs"
        " for each row execute function refuse_jobs()"
    )
    res = pay.response(partner_headers, inq=inq)
    assert res.status_code == 503, res.json
    assert res.json == {"error": 503, "message": "Service temporarily unavailable, please retry"}
    assert run_sql("select count(*) from payment") == [(0,)]
    assert run_sql("select count(*) from payment_period") == [(0,)]
    assert run_sql("select count(*) from inquiry where token = %s", (inq,)) == [(1,)]
    # The inquiry was not consumed: once the queue works, the same payment goes through.
    run_sql("drop trigger refuse_jobs on procrastinate_jobs")
    assert pay.response(partner_headers, inq=inq).status_code == 202


def test_nob_sequence_used_up_is_503(pay, partner_headers, bills, inquire, run_sql):
    from pdam.core.payments import WIB

    _, inq = inquire(CID, partner_headers)
    today = dt.datetime.now(WIB).date()
    run_sql("insert into nob_counter values ('00', %s, 9999)", (today,))
    res = pay.response(partner_headers, inq=inq)
    assert res.status_code == 503
    assert "receipt numbers of partner 00" in res.json["message"] and "used up" in res.json["message"]
    assert run_sql("select count(*) from payment") == [(0,)]


@pytest.mark.parametrize("path", [f"/tagihan/{CID}%0A", f"/status/{CID}%0A?nob=001111110001"])
def test_trailing_newline_is_not_a_valid_cid(client, partner_headers, path):
    res = client.get(path, headers=partner_headers)
    assert res.status_code == 400 and "cid" in res.json["errors"]


def test_trailing_newline_is_not_a_valid_inq(pay, partner_headers, bills, inquire):
    _, inq = inquire(CID, partner_headers)
    res = pay.response(partner_headers, inq=inq + "\n")
    assert res.status_code == 400 and "inq" in res.json["errors"]


def test_a_separate_ledger_answers_the_same_inquiry(split_app, partner_headers, pay, run_sql):
    """With BILLING_DATABASE_URL the inquiry reads the ledger, then saves on ours (two
    statements instead of one): the same answer, the same snapshot, in-progress periods
    hidden the same way; an unknown customer and a customer who owes nothing as usual."""
    from tests.factories import CID

    client = split_app.test_client()
    res = client.get(f"/tagihan/{CID}", headers=partner_headers)
    assert res.status_code == 200
    assert res.json["pelanggan"] == {"id": CID, "nama": "Nala", "alamat": "Jl. X", "golongan": "10R"}
    assert [(b["id"], b["periode"], b["biaya"]["jumlah"]) for b in res.json["tagihan"]] == [
        ("b202001", "202001", 48800),
        ("b202002", "202002", 48800),
    ]
    (snapshot,) = run_sql("select snapshot from inquiry where token = %s", (res.headers["X-Cross-Site"],))[0]
    assert snapshot["customer"]["name"] == "Nala" and len(snapshot["bills"]) == 2
    pay(partner_headers, per=[202001], app=split_app)
    res = client.get(f"/tagihan/{CID}", headers=partner_headers)
    assert [b["periode"] for b in res.json["tagihan"]] == ["202002"]
    assert client.get("/tagihan/999999999999", headers=partner_headers).json == {
        "error": 404,
        "message": "customer not found",
    }
    pay(partner_headers, per=[202002], pid="evid-2", app=split_app)
    assert client.get(f"/tagihan/{CID}", headers=partner_headers).json == {
        "error": 404,
        "message": "no unpaid bills",
    }
