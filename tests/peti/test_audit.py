"""Contract section 9: GET /audit (reconciliation), JSON and CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from tests.factories import CONTRACT_BILL, CONTRACT_CUSTOMER, WIB, H

#: Every app of this module runs on the test clock, which starts at H (day H, 10:00 WIB).
pytestmark = pytest.mark.usefixtures("clock")
DAY = "2020-08-26"
AMOUNT_FIELDS = [
    "air",
    "administrasi",
    "administrasi_angsuran",
    "ppn_administrasi",
    "denda",
    "angsuran",
    "materai",
    "registrasi",
    "biaya_pemasangan",
    "ppn_pemasangan",
    "biaya_jarak",
]
ROW_FIELDS = ["no", "id", "nob", "nopel", "periode", "rid", "pid", "mer", "rev", *AMOUNT_FIELDS]
CUSTOMERS = [f"0101{n:06d}" for n in range(8)]
PERIODS = ["202001", "202002", "202003", "202004"]


@pytest.fixture
def many(seed_bills, pay, partner_headers, post_queued, clock):
    """8 customers x 4 bills paid on day H by 16 payments of 2 bills each (32 rows)."""
    seed_bills(
        "".join(
            f"{cid},Pelanggan {i},Jl. {i},10R,{cid}{p},{p},0,10,10,{40000 + 100 * i + j},8000,800,{1000 * j},0\n"
            for i, cid in enumerate(CUSTOMERS)
            for j, p in enumerate(PERIODS)
        )
    )
    payments = []
    for half in (PERIODS[:2], PERIODS[2:]):
        for i, cid in enumerate(CUSTOMERS):
            clock.at = H + dt.timedelta(minutes=len(payments))
            per = [int(p) for p in half]
            payments.append(pay(partner_headers, cid, per, pid=f"pid-{cid}-{half[0]}", mer=str(i)))
    assert post_queued() == ["accepted"] * 16
    return payments


@pytest.fixture
def bulk(run_sql, partner_headers):
    """1,200 accepted one-bill payments of partner 00 on day H, written straight into the tables."""
    run_sql(
        "insert into payment (partner_code, pid, customer_id, inquiry_token, amount, periods, merchant, pat, nob,"
        "   accepted_at, status, posted_at, paid_total, paid_periods, problem_periods)"
        " select '00', 'bulk-' || i, '0202' || lpad(i::text, 6, '0'), md5(i::text), 48800, array['202001'], 'B',"
        "   upper(lpad(to_hex(i), 20, '0')), '00200826' || lpad(i::text, 4, '0'),"
        "   timestamptz '2020-08-26 08:00+07' + i * interval '1 second', 'accepted',"
        "   timestamptz '2020-08-26 09:00+07', 48800, array['202001'], array[]::text[]"
        " from generate_series(1, 1200) i"
    )
    run_sql(
        "insert into payment_period (payment_id, customer_id, period, bill_id, bill_no, water, admin_fee,"
        "   admin_vat, late_fee, installment, paid)"
        " select id, customer_id, '202001', id + 5000, 'bulk' || id, 40000, 8000, 800, 0, 0, true from payment"
    )
    return 1200


def audit(client, headers, **query):
    return client.get("/audit", query_string=query, headers=headers)


def parse_csv(text: str) -> tuple[list[str], list[dict]]:
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames), list(reader)


def as_text(rows: list[dict]) -> list[dict]:
    return [{k: str(v) for k, v in row.items()} for row in rows]


def test_contract_example_shape(client, partner_headers, seed_bills, pay, post_queued, run_sql):
    seed_bills(CONTRACT_BILL)
    data = pay(partner_headers, CONTRACT_CUSTOMER, [202005], pid="5428a641-0e18-4d14-bd6f-dcb32ab29956")
    assert post_queued() == ["accepted"]
    (rid,) = run_sql("select id from bill")[0]
    res = audit(client, partner_headers, tgl=DAY)
    assert res.status_code == 200
    assert list(res.json) == ["status", "meta", "data"]
    assert res.json == {
        "status": "success",
        "meta": {"page": 1, "limit": 10, "total": 1, "tanggal": DAY},
        "data": [
            {
                "no": 1,
                "id": "1234202005",
                "nob": data["nob"],
                "nopel": CONTRACT_CUSTOMER,
                "periode": "202005",
                "rid": rid,
                "pid": "5428a641-0e18-4d14-bd6f-dcb32ab29956",
                "mer": "1234",
                "rev": 0,
                "air": 50000,
                "administrasi": 8000,
                "administrasi_angsuran": 0,
                "ppn_administrasi": 800,
                "denda": 30000,
                "angsuran": 0,
                "materai": 0,
                "registrasi": 0,
                "biaya_pemasangan": 0,
                "ppn_pemasangan": 0,
                "biaya_jarak": 0,
            }
        ],
    }
    assert list(res.json["data"][0]) == ROW_FIELDS
    assert list(res.json["meta"]) == ["page", "limit", "total", "tanggal"]


def test_pages_are_continuous_and_stable(client, partner_headers, many):
    everything = audit(client, partner_headers, tgl=DAY, limit=0)
    assert everything.json["meta"] == {"page": 1, "limit": 0, "total": 32, "tanggal": DAY}
    rows = everything.json["data"]
    assert [r["no"] for r in rows] == list(range(1, 33))
    assert [(r["nob"], r["periode"]) for r in rows] == sorted((r["nob"], r["periode"]) for r in rows)
    assert {r["nob"] for r in rows} == {p["nob"] for p in many}
    paged = []
    for page in range(1, 8):
        res = audit(client, partner_headers, tgl=DAY, page=page, limit=5)
        assert res.json["meta"] == {"page": page, "limit": 5, "total": 32, "tanggal": DAY}
        assert len(res.json["data"]) == (5 if page < 7 else 2)
        paged += res.json["data"]
    assert paged == rows
    beyond = audit(client, partner_headers, tgl=DAY, page=8, limit=5)
    assert beyond.status_code == 200 and beyond.json["data"] == [] and beyond.json["meta"]["total"] == 32
    default = audit(client, partner_headers, tgl=DAY)
    assert default.json["meta"]["limit"] == 10 and default.json["data"] == rows[:10]
    # The same question gives the same answer (stable order).
    assert audit(client, partner_headers, tgl=DAY, limit=0).json == everything.json


def test_amounts_are_the_bills_as_paid(client, partner_headers, many, run_sql):
    rows = audit(client, partner_headers, tgl=DAY, limit=0).json["data"]
    ledger = {
        (cid, period): (rid, bill_no, water, late)
        for rid, bill_no, cid, period, water, late in run_sql(
            "select id, bill_no, customer_id, period, water, late_fee from bill"
        )
    }
    for r in rows:
        rid, bill_no, water, late = ledger[(r["nopel"], r["periode"])]
        assert (r["rid"], r["id"], r["air"], r["denda"]) == (rid, bill_no, water, late)
        assert (r["administrasi"], r["ppn_administrasi"], r["angsuran"], r["rev"]) == (8000, 800, 0, 0)
        assert all(
            r[f] == 0
            for f in (
                "administrasi_angsuran",
                "materai",
                "registrasi",
                "biaya_pemasangan",
                "ppn_pemasangan",
                "biaya_jarak",
            )
        )
    assert (
        sum(r["air"] + r["administrasi"] + r["ppn_administrasi"] + r["denda"] for r in rows)
        == run_sql("select sum(total) from bill")[0][0]
    )


def test_limit_zero_is_every_row_beyond_the_maximum(client, partner_headers, bulk):
    res = audit(client, partner_headers, tgl=DAY, limit=0)
    assert res.json["meta"]["total"] == 1200 and len(res.json["data"]) == 1200
    assert [r["no"] for r in res.json["data"]] == list(range(1, 1201))
    first = audit(client, partner_headers, tgl=DAY, limit=1000)
    second = audit(client, partner_headers, tgl=DAY, limit=1000, page=2)
    assert len(first.json["data"]) == 1000 and [r["no"] for r in second.json["data"]] == list(
        range(1001, 1201)
    )
    assert first.json["data"] + second.json["data"] == res.json["data"]


def test_both_date_formats(client, partner_headers, many):
    dashed = audit(client, partner_headers, tgl="2020-08-26", limit=0)
    compact = audit(client, partner_headers, tgl="20200826", limit=0)
    assert dashed.status_code == compact.status_code == 200
    assert dashed.json == compact.json and dashed.json["meta"]["total"] == 32
    other = audit(client, partner_headers, tgl="20200827")
    assert other.json == {
        "status": "success",
        "meta": {"page": 1, "limit": 10, "total": 0, "tanggal": "2020-08-27"},
        "data": [],
    }


def test_default_day_is_yesterday_in_wib(client, partner_headers, many, clock):
    # 06:00 WIB on the 27th is still the 26th in UTC: "yesterday" (WIB) is the 26th.
    clock.at = dt.datetime(2020, 8, 26, 23, 0, tzinfo=dt.UTC)
    res = audit(client, partner_headers)
    assert res.json["meta"]["tanggal"] == "2020-08-26" and res.json["meta"]["total"] == 32
    clock.at = dt.datetime(2020, 8, 27, 16, 59, tzinfo=WIB)
    assert audit(client, partner_headers).json["meta"]["tanggal"] == "2020-08-26"
    clock.at = dt.datetime(2020, 8, 28, 0, 0, tzinfo=WIB)
    res = audit(client, partner_headers)
    assert res.json["meta"]["tanggal"] == "2020-08-27" and res.json["meta"]["total"] == 0


def test_rows_fall_on_the_wib_day_of_acceptance(client, partner_headers, seed_bills, pay, post_queued, clock):
    seed_bills.simple("0101000001", ["202001"])
    clock.at = dt.datetime(2020, 8, 26, 0, 30, tzinfo=WIB)  # 25 August 17:30 UTC
    pay(partner_headers, "0101000001", [202001], pid="early")
    clock.at = dt.datetime(2020, 8, 27, 1, 0, tzinfo=WIB)  # posted the next day: the payment day counts
    post_queued()
    assert audit(client, partner_headers, tgl="2020-08-25").json["meta"]["total"] == 0
    assert audit(client, partner_headers, tgl="2020-08-27").json["meta"]["total"] == 0
    assert [r["pid"] for r in audit(client, partner_headers, tgl="2020-08-26").json["data"]] == ["early"]


def test_only_bills_paid_and_rev_per_row(client, partner_headers, seed_bills, pay, post_queued, run_sql):
    seed_bills.simple("0101000001", ["202001", "202002"])
    seed_bills.simple("0101000002", ["202001"])
    seed_bills.simple("0101000003", ["202001"])
    seed_bills.simple("0101000004", ["202001"])
    reversed_one = pay(partner_headers, "0101000001", [202001], pid="to-reverse")
    changed = pay(partner_headers, "0101000001", [202002], pid="changed")
    pay(partner_headers, "0101000002", [202001], pid="rejected")
    pay(partner_headers, "0101000003", [202001], pid="ok")
    run_sql("update bill set late_fee = 2500 where customer_id = '0101000001' and period = '202002'")
    run_sql("update bill set paid_by = '992001010001', paid_at = now() where customer_id = '0101000002'")
    assert sorted(post_queued()) == ["accepted", "accepted", "changed", "rejected"]
    pay(partner_headers, "0101000004", [202001], pid="in-progress")  # not posted yet
    res = client.delete(
        "/tagihan/0101000001",
        query_string={"pid": "to-reverse", "pat": reversed_one["pat"]},
        headers=partner_headers,
    )
    assert res.status_code == 200
    rows = audit(client, partner_headers, tgl=DAY, limit=0).json["data"]
    assert [(r["pid"], r["periode"], r["rev"], r["denda"]) for r in rows] == [
        ("to-reverse", "202001", 1, 0),
        ("changed", "202002", 0, 2500),
        ("ok", "202001", 0, 0),
    ]
    assert rows[1]["nob"] == changed["nob"]


def test_changed_payment_lists_only_the_bills_it_paid(
    client, partner_headers, seed_bills, pay, post_queued, run_sql
):
    seed_bills.simple("0101000001", ["202001", "202002"])
    pay(partner_headers, "0101000001", [202001, 202002], pid="half")
    run_sql("update bill set paid_by = '992001010001', paid_at = now() where period = '202001'")
    assert post_queued() == ["changed"]
    rows = audit(client, partner_headers, tgl=DAY).json["data"]
    assert [(r["pid"], r["periode"], r["no"]) for r in rows] == [("half", "202002", 1)]


@pytest.mark.parametrize(
    "query, field",
    [
        ({"tgl": "2020-02-30"}, "tgl"),
        ({"tgl": "2020/08/26"}, "tgl"),
        ({"tgl": "26-08-2020"}, "tgl"),
        ({"tgl": "2020-8-26"}, "tgl"),
        ({"tgl": "2020-0826"}, "tgl"),
        ({"tgl": "202008260"}, "tgl"),
        ({"tgl": "20201301"}, "tgl"),
        ({"tgl": ""}, "tgl"),
        ({"tgl": "kemarin"}, "tgl"),
        ({"page": "0"}, "page"),
        ({"page": "-1"}, "page"),
        ({"page": "1.5"}, "page"),
        ({"page": "x"}, "page"),
        ({"page": ""}, "page"),
        ({"page": "+2"}, "page"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": " 5"}, "limit"),
        ({"limit": "9999999999"}, "limit"),
        ({"format": "xml"}, "format"),
        ({"format": ""}, "format"),
    ],
)
def test_bad_values_are_400(client, partner_headers, query, field):
    res = audit(client, partner_headers, **query)
    assert res.status_code == 400, res.json
    assert res.json["error"] == 400 and field in res.json["errors"]


def test_bad_values_are_400_for_csv_too(client, partner_headers):
    res = client.get("/audit?limit=-1", headers={**partner_headers, "Accept": "text/csv"})
    assert res.status_code == 400 and res.json["errors"]["limit"]


def test_without_token_is_401(client):
    assert audit(client, {}).status_code == 401


def test_partner_sees_only_its_own_rows(client, partner_headers, auth_for, seed_bills, pay, post_queued):
    other = auth_for("96", "BANK2")
    seed_bills.simple("0101000001", ["202001"])
    seed_bills.simple("0101000002", ["202001", "202002"])
    mine = pay(partner_headers, "0101000001", [202001], pid="same-pid")
    theirs = pay(other, "0101000002", [202001, 202002], pid="same-pid")
    post_queued()
    own = audit(client, partner_headers, tgl=DAY, limit=0).json
    assert own["meta"]["total"] == 1 and [r["nob"] for r in own["data"]] == [mine["nob"]]
    assert [r["no"] for r in own["data"]] == [1]
    other_rows = audit(client, other, tgl=DAY, limit=0).json
    assert other_rows["meta"]["total"] == 2 and {r["nob"] for r in other_rows["data"]} == {theirs["nob"]}
    assert [r["no"] for r in other_rows["data"]] == [1, 2]
    csv_rows = parse_csv(client.get(f"/audit?tgl={DAY}&format=csv&limit=0", headers=other).text)[1]
    assert {r["nob"] for r in csv_rows} == {theirs["nob"]}


@pytest.mark.parametrize("how", ["format", "accept"])
def test_csv_equals_json(client, partner_headers, many, how):
    want = audit(client, partner_headers, tgl=DAY, limit=0).json["data"]
    if how == "format":
        res = audit(client, partner_headers, tgl=DAY, limit=0, format="csv")
    else:
        res = client.get(f"/audit?tgl={DAY}&limit=0", headers={**partner_headers, "Accept": "text/csv"})
    assert res.status_code == 200
    assert res.mimetype == "text/csv" and res.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert res.headers["Content-Disposition"] == f'attachment; filename="audit-00-{DAY}.csv"'
    assert res.headers["X-Total-Count"] == "32"
    header, rows = parse_csv(res.text)
    assert header == ROW_FIELDS
    assert rows == as_text(want)


def test_csv_pages_like_json(client, partner_headers, many):
    for query in ({"page": 2, "limit": 5}, {}, {"page": 9, "limit": 4}):
        json_rows = audit(client, partner_headers, tgl=DAY, **query).json["data"]
        header, csv_rows = parse_csv(audit(client, partner_headers, tgl=DAY, format="csv", **query).text)
        assert header == ROW_FIELDS and csv_rows == as_text(json_rows), query


def test_format_json_wins_over_accept(client, partner_headers, many):
    res = client.get(f"/audit?tgl={DAY}&format=json", headers={**partner_headers, "Accept": "text/csv"})
    assert res.mimetype == "application/json" and res.json["meta"]["total"] == 32
    browserish = client.get(f"/audit?tgl={DAY}", headers={**partner_headers, "Accept": "*/*"})
    assert browserish.mimetype == "application/json"


def test_csv_of_an_empty_day_is_just_the_header(client, partner_headers):
    res = audit(client, partner_headers, tgl="2020-01-01", format="csv")
    assert res.status_code == 200 and res.text == ",".join(ROW_FIELDS) + "\r\n"
    assert res.headers["X-Total-Count"] == "0"


def test_csv_is_streamed_in_batches(client, partner_headers, bulk, monkeypatch):
    from pdam.core import reconciliation as audit_module

    monkeypatch.setattr(audit_module, "STREAM_BATCH", 7)
    want = audit(client, partner_headers, tgl=DAY, limit=0).json["data"]
    res = audit(client, partner_headers, tgl=DAY, limit=0, format="csv")
    assert res.is_streamed
    header, rows = parse_csv(res.text)
    assert rows == as_text(want) and len(rows) == 1200


def test_stream_reads_through_a_server_side_cursor(app, bulk, run_sql):
    from pdam.core import reconciliation as audit_module

    engine = app.extensions["pdam.runtime"].database.engine
    rows = audit_module.stream(engine, "00", dt.date(2020, 8, 26), page=1, limit=0, batch=7)
    assert [next(rows).line_no for _ in range(20)] == list(range(1, 21))
    # Its own connection, inside a transaction, fetching 7 rows at a time from a declared cursor.
    active = run_sql(
        "select state, query from pg_stat_activity"
        " where datname = current_database() and query ilike 'fetch forward % from%'"
    )
    assert [(state, query.split(" FROM ")[0]) for state, query in active] == [
        ("idle in transaction", "FETCH FORWARD 7")
    ]
    assert sum(1 for _ in rows) == 1180
    # Exhausted (or closed): the connection went back to the pool, no transaction left open.
    assert run_sql(
        "select count(*) from pg_stat_activity where datname = current_database()"
        " and state like 'idle in transaction%'"
    ) == [(0,)]


def test_closing_the_stream_early_releases_its_connection(app, bulk, run_sql):
    from pdam.core import reconciliation as audit_module

    rows = audit_module.stream(
        app.extensions["pdam.runtime"].database.engine, "00", dt.date(2020, 8, 26), page=1, limit=0, batch=5
    )
    next(rows)
    rows.close()  # what the WSGI server does when a client goes away
    assert run_sql(
        "select count(*) from pg_stat_activity where datname = current_database()"
        " and state like 'idle in transaction%'"
    ) == [(0,)]
