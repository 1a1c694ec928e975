"""The sandbox over SNAP (contract 14.1): a sandbox client (``snap register --sandbox``)
on the same test customers as PeTi (``virtualAccountNo`` = partnerServiceId + cid), the
same codes, ``X-Sandbox: true`` on every answer; a live client never sees sandbox
payments nor a sandbox client live ones (SNAP's not-found codes)."""

from __future__ import annotations

import pytest

from .conftest import CID, PSID, Bank, expect, register

THIRTY, REJECTED = "990000000006", "990000000003"


@pytest.fixture
def sandbox_bank(app, bank, rsa_keys, tmp_path):
    """Partner 00's sandbox client (the partner's live client is ``bank``)."""
    key = rsa_keys[1]
    secret = register(app, key, "00", "bank-one-sandbox", "12345", tmp_path, sandbox=True)
    return Bank(app, "bank-one-sandbox", key, secret, "00")


def test_a_sandbox_client_is_registered_and_listed_as_such(cli, sandbox_bank):
    lines = cli("snap", "list").output.strip().splitlines()[1:]
    assert [(line.split()[0], line.endswith("  sandbox")) for line in lines] == [
        ("bank-one", False),
        ("bank-one-sandbox", True),
    ]
    token = sandbox_bank.request_token()
    assert token.status_code == 200 and token.headers["X-Sandbox"] == "true"


def test_thirty_bills_show_24_then_the_payment_is_posted(sandbox_bank, post_queued):
    res = sandbox_bank.inquiry(cid=THIRTY, ref="sb-30")
    assert res.status_code == 200 and res.headers["X-Sandbox"] == "true", res.json
    data = res.json["virtualAccountData"]
    assert data["virtualAccountNo"] == PSID + THIRTY and len(data["billDetails"]) == 24
    total = data["totalAmount"]["value"]
    assert total == f"{24 * 58800}.00"
    paid = sandbox_bank.pay(cid=THIRTY, ref="sb-30", amount=total)
    assert paid.status_code == 200 and paid.headers["X-Sandbox"] == "true", paid.json
    nob = paid.json["virtualAccountData"]["additionalInfo"]["nob"]
    assert int(nob[4:6]) > 50  # a sandbox nob
    post_queued()
    status = sandbox_bank.status(cid=THIRTY, ref="sb-30")
    assert status.json["virtualAccountData"]["additionalInfo"] == {"nob": nob, "status": "accepted", "rev": 0}
    # The bills come back after the final payment: the next inquiry shows the oldest 24 again.
    again = sandbox_bank.inquiry(cid=THIRTY, ref="sb-30-again")
    assert len(again.json["virtualAccountData"]["billDetails"]) == 24


def test_paid_before_is_flagged_01_in_status(sandbox_bank, post_queued):
    inquiry = sandbox_bank.inquiry(cid=REJECTED, ref="sb-3")
    total = inquiry.json["virtualAccountData"]["totalAmount"]["value"]
    assert sandbox_bank.pay(cid=REJECTED, ref="sb-3", amount=total).status_code == 200
    post_queued()
    data = sandbox_bank.status(cid=REJECTED, ref="sb-3").json["virtualAccountData"]
    assert (data["paymentFlagStatus"], data["additionalInfo"]["status"]) == ("01", "rejected")


def test_live_and_sandbox_clients_never_see_each_others_data(bank, sandbox_bank, bills, post_queued):
    # A live payment and a sandbox payment, under the same inquiryRequestId: each its own.
    assert bank.inquiry(ref="same").status_code == 200
    assert bank.pay(ref="same").status_code == 200
    sb = sandbox_bank.inquiry(cid=THIRTY, ref="same")
    assert sb.status_code == 200, sb.json
    assert sandbox_bank.pay(
        cid=THIRTY, ref="same", amount=sb.json["virtualAccountData"]["totalAmount"]["value"]
    )
    post_queued()
    # The sandbox client: a live customer does not exist; the live payment is not found.
    res = expect(
        sandbox_bank.inquiry(cid=CID, ref="x"), "4042412", "Invalid Bill/Virtual Account [Not Found]"
    )
    assert sandbox_bank.inquiry(cid=CID, ref="x").headers["X-Sandbox"] == "true" and res
    expect(sandbox_bank.status(cid=CID, ref="same"), "4042601", "Transaction Not Found")
    expect(sandbox_bank.pay(cid=CID, ref="never"), "4042512", "Invalid Bill/Virtual Account [Not Found]")
    # The live client: the sandbox's customers do not exist; the sandbox payment is not found.
    live = bank.inquiry(cid=THIRTY, ref="y")
    expect(live, "4042412", "Invalid Bill/Virtual Account [Not Found]")
    assert "X-Sandbox" not in live.headers
    expect(bank.status(cid=THIRTY, ref="same"), "4042601", "Transaction Not Found")
    expect(bank.pay(cid=THIRTY, ref="sb-only"), "4042512", "Invalid Bill/Virtual Account [Not Found]")
    # Each side's status finds its own payment.
    assert bank.status(ref="same").json["virtualAccountData"]["additionalInfo"]["status"] == "accepted"
    own = sandbox_bank.status(cid=THIRTY, ref="same").json["virtualAccountData"]["additionalInfo"]
    assert own["status"] == "accepted"


def test_no_bills_is_paid_bill_as_live(sandbox_bank):
    res = expect(sandbox_bank.inquiry(cid="990000000005", ref="sb-5"), "4042414", "Paid Bill")
    assert res["virtualAccountData"]["inquiryStatus"] == "01"


def test_a_reset_forgets_the_sandbox_clients_external_ids_only(app, keys, bank, sandbox_bank, bills, run_sql):
    from tests.factories import issue

    assert bank.inquiry(ref="live").status_code == 200
    assert sandbox_bank.inquiry(cid=THIRTY, ref="sb").status_code == 200
    token = issue(app, keys["ES256"]["private"], "00", sandbox=True)
    res = app.test_client().post("/sandbox/reset", headers={"Authorization": f"Bearer {token}"})
    assert res.status_code == 204
    assert run_sql("select client_id from snap_external_id") == [("bank-one",)]
    assert run_sql("select count(*) from inquiry where sandbox") == [(0,)]
