"""Contract section 3: GET /tagihan/<cid>, the inquiry (pdam/peti/bills.py)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from pdam.core import inquiry
from pdam.web import runtime
from tests.factories import CONTRACT_BILL, CONTRACT_CUSTOMER

PERIODS = ["201901", "201902", "201903"]


# -- GET /tagihan/<cid>: the inquiry (contract section 3) ----------------------------------


def test_contract_example_round_trips(client, partner_headers, seed_bills, app):
    seed_bills(CONTRACT_BILL)
    res = client.get(f"/tagihan/{CONTRACT_CUSTOMER}", headers=partner_headers)
    assert res.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", res.headers["X-Cross-Site"])
    assert res.headers["X-Message"] == app.config["INQUIRY_MESSAGE"]
    assert res.json == {
        "pelanggan": {
            "id": "010101010101",
            "nama": "Semar Badranaya",
            "alamat": "Jl. Perjuangan No. 102",
            "golongan": "10R - Rumah Tangga 10",
        },
        "tagihan": [
            {
                "id": "1234202005",
                "periode": "202005",
                "meter": {"awal": 496, "akhir": 501, "pakai": 10},
                "biaya": {
                    "air": 50000,
                    "administrasi": 8000,
                    "ppn": {"administrasi": 800},
                    "denda": 30000,
                    "angsuran": 0,
                    "jumlah": 88800,
                },
            }
        ],
    }


def test_unpaid_bills_only_oldest_first(client, partner_headers, seed_bills, run_sql):
    seed_bills.simple("0101020304", ["202003", "202001", "202002"])
    run_sql("update bill set paid_by = '992001010001', paid_at = now() where period = '202002'")
    res = client.get("/tagihan/0101020304", headers=partner_headers)
    assert [b["periode"] for b in res.json["tagihan"]] == ["202001", "202003"]
    assert all(b["biaya"]["jumlah"] == 48800 for b in res.json["tagihan"])


def test_snapshot_stored_for_partner_with_expiry(client, partner_headers, seed_bills, run_sql, app):
    seed_bills(CONTRACT_BILL)
    res = client.get(f"/tagihan/{CONTRACT_CUSTOMER}", headers=partner_headers)
    rows = run_sql(
        "select partner_code, customer_id, extract(epoch from expires_at - created_at),"
        " snapshot->'bills'->0->>'total' from inquiry where token = %s",
        (res.headers["X-Cross-Site"],),
    )
    assert rows == [("00", CONTRACT_CUSTOMER, 900, "88800")]


def test_message_header_configurable(make_app, partner_headers, seed_bills):
    seed_bills(CONTRACT_BILL)
    client = make_app(INQUIRY_MESSAGE="").test_client()
    res = client.get(f"/tagihan/{CONTRACT_CUSTOMER}", headers=partner_headers)
    assert res.headers["X-Message"] == ""


@pytest.mark.parametrize("cid", ["01010101010a", "0101-0101", "%20", "1" * 21, "١٢٣"])
def test_inquiry_of_a_malformed_cid_is_400(client, partner_headers, cid):
    res = client.get(f"/tagihan/{cid}", headers=partner_headers)
    assert res.status_code == 400
    assert res.json["error"] == 400 and "cid" in res.json["errors"]


def test_unknown_customer_is_404(client, partner_headers):
    res = client.get("/tagihan/999999999999", headers=partner_headers)
    assert res.json == {"error": 404, "message": "customer not found"}


def test_no_unpaid_bill_is_404(client, partner_headers, seed_bills, run_sql):
    seed_bills(CONTRACT_BILL)
    run_sql("update bill set paid_by = '992001010001', paid_at = now()")
    res = client.get(f"/tagihan/{CONTRACT_CUSTOMER}", headers=partner_headers)
    assert res.json == {"error": 404, "message": "no unpaid bills"}


def test_expired_snapshots_purged_by_job_not_requests(client, partner_headers, seed_bills, run_sql, app):
    seed_bills(CONTRACT_BILL)
    client.get(f"/tagihan/{CONTRACT_CUSTOMER}", headers=partner_headers)
    run_sql(
        "update inquiry set created_at = created_at - interval '1 hour', expires_at = expires_at - interval '1 hour'"
    )
    client.get(f"/tagihan/{CONTRACT_CUSTOMER}", headers=partner_headers)
    assert run_sql("select count(*) from inquiry") == [(2,)]
    with app.app_context(), runtime.transaction() as conn:
        assert inquiry.purge_expired(conn, dt.datetime.now(dt.UTC)) == 1
    assert run_sql("select count(*) from inquiry") == [(1,)]
