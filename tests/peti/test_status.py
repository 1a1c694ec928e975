"""GET /status/<cid> (pdam/peti/status.py, contract section 7): lookups, bad queries,
isolation. The answer of each posting outcome is in tests/core/test_posting.py."""

from __future__ import annotations

import pytest

from tests.factories import CID


def status(client, headers, **query):
    return client.get(f"/status/{CID}", query_string=query, headers=headers)


def test_status_before_posting_is_201(client, partner_headers, example_bill, pay):
    data = pay(partner_headers, per=[201903])
    res = status(client, partner_headers, nob=data["nob"])
    assert res.status_code == 201
    assert res.json["status"] == "created" and res.json["code"] == 201
    assert res.json["message"] == "payment in progress"
    assert res.json["meta"] == {
        "jumlah_tagihan": None,
        "jumlah_bayar": 41500,
        "jumlah_masalah": None,
        "lembar_tagihan": None,
        "lembar_bayar": 1,
        "lembar_masalah": None,
        "periode_tagihan": None,
        "periode_bayar": [201903],
        "periode_masalah": None,
    }


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"pat": "A" * 20},
        {"inq": "a" * 32},
        {"nob": "12"},
        {"pid": "x" * 51},
        {"nob": "001111110001", "pat": "A" * 20},
        {"nob": "001111110001", "inq": "a" * 32},
    ],
)
def test_status_bad_query_is_400(client, partner_headers, query):
    res = status(client, partner_headers, **query)
    assert res.status_code == 400 and res.json["error"] == 400


def test_status_lookups(client, partner_headers, example_bill, pay):
    data = pay(partner_headers, per=[201903])
    for query in (
        {"nob": data["nob"]},
        {"pid": data["pid"]},
        {"pid": data["pid"], "pat": data["pat"]},
        {"pid": data["pid"], "inq": data["inq"]},
        # the document allows any set with nob or pid (pat/inq only with pid): each key narrows
        {"nob": data["nob"], "pid": data["pid"]},
        {"nob": data["nob"], "pid": data["pid"], "pat": data["pat"]},
        {"pid": data["pid"], "pat": data["pat"], "inq": data["inq"]},
    ):
        assert status(client, partner_headers, **query).status_code == 201, query
    for query in ({"nob": data["nob"], "pid": "nope"}, {"nob": "001111110001", "pid": data["pid"]}):
        assert status(client, partner_headers, **query).status_code == 404, query
    for query in (
        {"nob": "001111110001"},
        {"pid": "nope"},
        {"pid": data["pid"], "pat": "F" * 20},
        {"pid": data["pid"], "inq": "f" * 32},
    ):
        res = status(client, partner_headers, **query)
        assert res.json == {"error": 404, "message": "payment not found"}, query
    other_cid = client.get(f"/status/0101?nob={data['nob']}", headers=partner_headers)
    assert other_cid.status_code == 404


def test_status_takes_pat_in_either_case(client, partner_headers, example_bill, pay):
    """pat is issued as uppercase hex; hex is case-insensitive, so a lowercased copy finds it."""
    data = pay(partner_headers, per=[201903])
    assert data["pat"] == data["pat"].upper()
    res = status(client, partner_headers, pid=data["pid"], pat=data["pat"].lower())
    assert res.status_code == 201 and res.json["data"]["pat"] == data["pat"]


def test_status_of_another_partner_is_404(client, partner_headers, auth_for, example_bill, pay):
    data = pay(partner_headers, per=[201903])
    res = status(client, auth_for("96", "BANK2"), nob=data["nob"])
    assert res.json == {"error": 404, "message": "payment not found"}
