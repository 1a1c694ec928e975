"""A SNAP payment is a payment: inquiry -> payment -> posting -> status, reconciliation,
daily recap, reversal; answers exactly as contract sections 12.5-12.7."""

from __future__ import annotations

import datetime as dt
import re

from .conftest import CID, PSID


def test_inquiry_answer(bank, bills):
    res = bank.inquiry(
        ref="inq-1",
        trxDateInit="2026-11-30T09:15:00+07:00",
        channelCode=6017,
        language="ID",
        amount={"value": "0.00", "currency": "IDR"},
        additionalInfo={},
    )
    assert res.status_code == 200, res.json
    assert res.json == {
        "responseCode": "2002400",
        "responseMessage": "Successful",
        "virtualAccountData": {
            "inquiryStatus": "00",
            "inquiryReason": {"english": "Success", "indonesia": "Sukses"},
            "partnerServiceId": PSID,
            "customerNo": CID,
            "virtualAccountNo": PSID + CID,
            "virtualAccountName": "Semar Badranaya",
            "inquiryRequestId": "inq-1",
            "totalAmount": {"value": "177600.00", "currency": "IDR"},
            "billDetails": [
                {
                    "billCode": "01",
                    "billNo": "1234202005",
                    "billName": "Tagihan Air 202005",
                    "billShortName": "202005",
                    "billDescription": {"english": "Water May 2020", "indonesia": "Air Mei 2020"},
                    "billAmount": {"value": "88800.00", "currency": "IDR"},
                },
                {
                    "billCode": "02",
                    "billNo": "1234202006",
                    "billName": "Tagihan Air 202006",
                    "billShortName": "202006",
                    "billDescription": {"english": "Water Jun 2020", "indonesia": "Air Jun 2020"},
                    "billAmount": {"value": "88800.00", "currency": "IDR"},
                },
            ],
            "virtualAccountTrxType": "C",
            "feeAmount": {"value": "0.00", "currency": "IDR"},
            "additionalInfo": {
                "customerAddress": "Jl. Perjuangan No. 102",
                "customerTariff": "10R - Rumah Tangga 10",
            },
        },
    }
    assert res.mimetype == "application/json"
    assert res.headers["X-Request-Id"]
    assert res.data.startswith(
        b'{"responseCode":"2002400","responseMessage":"Successful","virtualAccountData":'
    )


def test_payment_then_status(bank, bills, post_queued, run_sql):
    assert bank.inquiry(ref="ref-9").status_code == 200
    res = bank.pay(
        ref="ref-9",
        flagAdvise="N",
        channelCode=6017,
        trxDateTime="2026-11-30T09:15:00+07:00",
        referenceNo="bank-ref-1",
        totalAmount={"value": "177600.00", "currency": "IDR"},
    )
    assert res.status_code == 200, res.json
    data = res.json["virtualAccountData"]
    nob = data["additionalInfo"]["nob"]
    assert re.fullmatch(r"00[0-9]{6}0001", nob)
    assert res.json["responseCode"] == "2002500" and res.json["responseMessage"] == "Successful"
    assert data["paymentFlagStatus"] == "00"
    assert data["paymentFlagReason"] == {"english": "Success", "indonesia": "Sukses"}
    assert data["paymentRequestId"] == "ref-9"
    assert data["paidAmount"] == data["totalAmount"] == {"value": "177600.00", "currency": "IDR"}
    # The bank's own referenceNo and trxDateTime, as it sent them; ours is the nob.
    assert (data["referenceNo"], data["trxDateTime"]) == ("bank-ref-1", "2026-11-30T09:15:00+07:00")
    assert [b["billerReferenceId"] for b in data["billDetails"]] == [nob, nob]
    assert re.fullmatch(r"[0-9A-F]{20}", data["additionalInfo"]["pat"])
    (row,) = run_sql("select partner_code, pid, customer_id, amount, periods, merchant, status from payment")
    assert row == ("00", "ref-9", CID, 177600, ["202005", "202006"], "6017", "created")

    status = bank.status(ref="ref-9")
    assert status.status_code == 200, status.json
    assert status.json["responseCode"] == "2002600"
    assert status.json["virtualAccountData"]["additionalInfo"] == {"nob": nob, "status": "created", "rev": 0}
    post_queued()
    status = bank.status(ref="ref-9")
    sdata = status.json["virtualAccountData"]
    assert sdata["additionalInfo"] == {"nob": nob, "status": "accepted", "rev": 0}
    assert (sdata["inquiryRequestId"], sdata["paymentRequestId"]) == ("ref-9", "ref-9")
    assert (sdata["referenceNo"], sdata["trxDateTime"]) == ("bank-ref-1", "2026-11-30T09:15:00+07:00")
    assert sdata["paymentFlagStatus"] == "00"
    assert sdata["billDetails"] == data["billDetails"]
    assert run_sql("select count(*) from bill where paid_by = %s", (nob,)) == [(2,)]


def test_a_snap_payment_is_a_payment_everywhere(bank, bills, issue_token, client, start_worker, run_sql):
    """Posted by the job server like any payment, in the partner's reconciliation and daily
    recap, reversible by the same partner over PeTi (one partner, PeTi token and SNAP
    credentials at once), and its status follows."""
    from pdam.core.payments import WIB
    from tests.conftest import wait_for

    bank.inquiry(ref="full")
    paid = bank.pay(ref="full").json["virtualAccountData"]
    nob = paid["additionalInfo"]["nob"]
    start_worker()
    wait_for(lambda: run_sql("select status from payment where nob = %s", (nob,)) == [("accepted",)])
    status = bank.status(ref="full").json["virtualAccountData"]
    assert status["additionalInfo"] == {"nob": nob, "status": "accepted", "rev": 0}
    assert status["paymentFlagStatus"] == "00"

    day = dt.datetime.now(WIB).date().isoformat()
    peti = {"Authorization": f"Bearer {issue_token('00')}"}
    audit = client.get(f"/audit?tgl={day}", headers=peti).json
    assert [(r["nob"], r["nopel"], r["periode"], r["pid"], r["mer"], r["rev"]) for r in audit["data"]] == [
        (nob, CID, "202005", "full", "VA", 0),
        (nob, CID, "202006", "full", "VA", 0),
    ]
    recap = run_sql(
        "select pop, transaksi, accepted, jumlah_bayar, lembar, jumlah from daily_recap where tanggal = %s",
        (day,),
    )
    assert recap == [("00", 1, 1, 177600, 2, 177600)]

    reversed_ = client.delete(f"/tagihan/{CID}?pid=full&pat={paid['additionalInfo']['pat']}", headers=peti)
    assert reversed_.status_code == 200, reversed_.json
    status = bank.status(ref="full").json["virtualAccountData"]
    assert status["additionalInfo"] == {"nob": nob, "status": "accepted", "rev": 1}
    assert status["paymentFlagStatus"] == "01"
    assert status["paymentFlagReason"] == {
        "english": "Payment reversed",
        "indonesia": "Pembayaran dibatalkan",
    }
    assert run_sql("select count(*) from bill where paid_by is not null") == [(0,)]


def test_rejected_payment_flag_and_attention_view(bank, bills, post_queued, run_sql):
    bank.inquiry(ref="late")
    nob = bank.pay(ref="late").json["virtualAccountData"]["additionalInfo"]["nob"]
    run_sql("update bill set paid_by = '992001010001', paid_at = now()")  # paid elsewhere meanwhile
    post_queued()
    status = bank.status(ref="late").json["virtualAccountData"]
    assert status["additionalInfo"] == {"nob": nob, "status": "rejected", "rev": 0}
    assert status["paymentFlagStatus"] == "01"
    assert run_sql("select reason, pop, nob, pid from payments_needing_attention") == [
        ("rejected", "00", nob, "late")
    ]


def test_status_route_reads_what_the_payment_showed(bank, bills, run_sql):
    """The bills in status answers are the inquiry's, not the ledger's of now."""
    bank.inquiry(ref="r-1")
    paid = bank.pay(ref="r-1").json["virtualAccountData"]
    run_sql("update bill set late_fee = late_fee + 5")
    assert bank.status(ref="r-1").json["virtualAccountData"]["billDetails"] == paid["billDetails"]


def test_status_of_a_peti_payment_of_the_same_partner(bank, bills, issue_token, client, run_sql):
    """A payment whose inquiry snapshot is gone (made before snapshots were kept) still has
    a status: no bill lines, the rest as recorded."""
    peti = {"Authorization": f"Bearer {issue_token('00')}"}
    inq = client.get(f"/tagihan/{CID}", headers=peti)
    body = {"inq": inq.headers["X-Cross-Site"], "pid": "peti-9", "amo": 88800, "mer": "1", "per": [202005]}
    assert client.post(f"/tagihan/{CID}", json=body, headers=peti).status_code == 202
    run_sql("delete from inquiry")
    data = bank.status(ref="peti-9").json["virtualAccountData"]
    assert data["billDetails"] == [] and data["virtualAccountName"] == ""
    assert data["paidAmount"] == {"value": "88800.00", "currency": "IDR"}
