"""Contract 12.2-12.4: every response code of the table for the transactional routes (the
token route's: tests/snap/test_token_codes.py), each produced by a real request, with the exact responseCode/responseMessage and the HTTP
status equal to the code's first three digits."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tests.conftest import wait_for
from tests.factories import SEALER

from .conftest import (
    CID,
    INQUIRY,
    PAYMENT,
    PSID,
    STATUS,
    Bank,
    compact,
    expect,
    hmac_signature,
    wib_timestamp,
)

# -- transactional requests (services 24, 25, 26) ---------------------------------------------


def test_successes(bank, bills):
    expect(bank.inquiry(), "2002400", "Successful")
    expect(bank.pay(), "2002500", "Successful")
    expect(bank.status(), "2002600", "Successful")


@pytest.mark.parametrize(("path", "service"), [(INQUIRY, "24"), (PAYMENT, "25"), (STATUS, "26")])
def test_body_not_json(bank, bills, path, service):
    for raw in (b"not json", b"[1, 2]", b'"text"', b"", b'{"a": NaN}', b"\xff\xfe", b"[" * 5000):
        # These bodies have no whitespace inside strings: minified, they lose every space.
        res = bank.post(path, raw=raw, minified=raw.replace(b" ", b""))
        body = expect(res, f"400{service}00", "Bad Request")
        assert "virtualAccountData" not in body  # the body could not be read


def va_body(service: str, **fields) -> dict:
    body = {"partnerServiceId": PSID, "customerNo": CID, "virtualAccountNo": PSID + CID}
    if service == "24":
        body["inquiryRequestId"] = "r-1"
    else:
        body["paymentRequestId"] = "r-1"
    if service == "25":
        body["paidAmount"] = {"value": "177600.00", "currency": "IDR"}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


PATHS = {"24": INQUIRY, "25": PAYMENT, "26": STATUS}


@pytest.mark.parametrize(
    ("service", "fields", "field"),
    [
        ("24", {"customerNo": "01010101010A", "virtualAccountNo": PSID + "01010101010A"}, "customerNo"),
        ("24", {"customerNo": "1" * 21, "virtualAccountNo": PSID + "1" * 21}, "customerNo"),
        ("24", {"virtualAccountNo": "12346" + CID}, "virtualAccountNo"),
        ("24", {"virtualAccountNo": " 12345" + CID}, "virtualAccountNo"),
        ("24", {"virtualAccountNo": PSID + CID + " " * 9}, "virtualAccountNo"),
        ("24", {"virtualAccountNo": PSID + " " + CID}, "virtualAccountNo"),
        ("24", {"partnerServiceId": "12345", "virtualAccountNo": "12345" + CID}, "partnerServiceId"),
        ("24", {"partnerServiceId": "1234567 ", "virtualAccountNo": "1234567 " + CID}, "partnerServiceId"),
        ("24", {"partnerServiceId": 12345}, "partnerServiceId"),
        ("24", {"inquiryRequestId": "x" * 129}, "inquiryRequestId"),
        ("24", {"inquiryRequestId": "a\u0000b"}, "inquiryRequestId"),
        ("24", {"trxDateInit": "yesterday"}, "trxDateInit"),
        ("24", {"channelCode": 60111}, "channelCode"),
        ("24", {"amount": {"value": "10.5", "currency": "IDR"}}, "amount.value"),
        ("24", {"amount": {"value": "10.50", "currency": "IDR"}, "channelCode": 60111}, "channelCode"),
        ("24", {"additionalInfo": "x"}, "additionalInfo"),
        ("25", {"paidAmount": {"value": "177600.5", "currency": "IDR"}}, "paidAmount.value"),
        ("25", {"paidAmount": {"value": "177600.50", "currency": "IDR"}, "flagAdvise": "YES"}, "flagAdvise"),
        ("25", {"trxDateTime": "2026-11-30T09:15:00.1234567+07:00"}, "trxDateTime"),
        ("24", {"trxDateInit": "2026-11-30T09:15:00.1234567+07:00"}, "trxDateInit"),
        ("25", {"referenceNo": "r" * 65}, "referenceNo"),
        ("25", {"referenceNo": ""}, "referenceNo"),
        ("25", {"virtualAccountName": "n" * 256}, "virtualAccountName"),
        ("25", {"billDetails": [{}] * 25}, "billDetails"),
        ("25", {"paidAmount": {"value": "177600", "currency": "IDR"}}, "paidAmount.value"),
        ("25", {"paidAmount": {"value": 177600, "currency": "IDR"}}, "paidAmount.value"),
        ("25", {"paidAmount": {"value": "-1.00", "currency": "IDR"}}, "paidAmount.value"),
        ("25", {"paidAmount": {"value": "177600.00", "currency": "USD"}}, "paidAmount.currency"),
        ("25", {"paidAmount": "177600.00"}, "paidAmount"),
        ("25", {"flagAdvise": "YES"}, "flagAdvise"),
        ("25", {"totalAmount": {"value": "1.5", "currency": "IDR"}}, "totalAmount.value"),
        ("25", {"billDetails": [1]}, "billDetails[0]"),
        ("26", {"paymentRequestId": "x" * 129}, "paymentRequestId"),
        ("26", {"inquiryRequestId": "x" * 129}, "inquiryRequestId"),
    ],
)
def test_invalid_field_format(bank, bills, service, fields, field):
    body = expect(
        bank.post(PATHS[service], va_body(service, **fields)),
        f"400{service}01",
        f"Invalid Field Format [{field}]",
    )
    data = body["virtualAccountData"]  # the body could be read: the VA data comes back, flagged
    status_key = "inquiryStatus" if service == "24" else "paymentFlagStatus"
    assert data[status_key] == "01"
    assert data["inquiryReason" if service == "24" else "paymentFlagReason"] == {
        "english": "Invalid field format",
        "indonesia": "Format field tidak valid",
    }


@pytest.mark.parametrize(
    ("service", "fields", "field"),
    [
        ("24", {"inquiryRequestId": None}, "inquiryRequestId"),
        ("24", {"inquiryRequestId": ""}, "inquiryRequestId"),
        ("24", {"partnerServiceId": None, "customerNo": None}, "partnerServiceId"),
        ("24", {"customerNo": None}, "customerNo"),
        ("24", {"virtualAccountNo": ""}, "virtualAccountNo"),
        ("25", {"paidAmount": None}, "paidAmount"),
        ("25", {"paidAmount": {"value": "1.00"}}, "paidAmount.currency"),
        ("25", {"paidAmount": {"currency": "IDR"}}, "paidAmount.value"),
        ("25", {"paymentRequestId": None}, "paymentRequestId"),
        ("26", {"paymentRequestId": None}, "inquiryRequestId"),  # one of the two is needed
        ("26", {"paymentRequestId": None, "inquiryRequestId": None}, "inquiryRequestId"),
    ],
)
def test_invalid_mandatory_field(bank, bills, service, fields, field):
    expect(
        bank.post(PATHS[service], va_body(service, **fields)),
        f"400{service}02",
        f"Invalid Mandatory Field [{field}]",
    )


def test_null_mandatory_field(bank, bills):
    body = va_body("24")
    body["inquiryRequestId"] = None
    expect(bank.post(INQUIRY, body), "4002402", "Invalid Mandatory Field [inquiryRequestId]")


@pytest.mark.parametrize(
    "header", ["X-TIMESTAMP", "X-SIGNATURE", "X-PARTNER-ID", "X-EXTERNAL-ID", "CHANNEL-ID"]
)
@pytest.mark.parametrize("service", ["24", "25", "26"])
def test_missing_header(bank, bills, service, header):
    expect(
        bank.post(PATHS[service], va_body(service), **{header: None}),
        f"400{service}02",
        f"Invalid Mandatory Field [{header}]",
    )


@pytest.mark.parametrize(
    ("headers", "name"),
    [
        ({"timestamp": "2026-11-30 09:15:00"}, "X-TIMESTAMP"),
        ({"X-EXTERNAL-ID": "1" * 37}, "X-EXTERNAL-ID"),
        ({"X-EXTERNAL-ID": "a b"}, "X-EXTERNAL-ID"),
        ({"CHANNEL-ID": "952210"}, "CHANNEL-ID"),
    ],
)
def test_ill_formed_header(bank, bills, headers, name):
    expect(bank.post(INQUIRY, va_body("24"), **headers), "4002401", f"Invalid Field Format [{name}]")


def test_unauthorized(bank, bills, make_bank):
    body = compact(va_body("24"))
    # A signature that is not HMAC-SHA512 of the string to sign with our secret.
    expect(
        bank.post(INQUIRY, va_body("24"), **{"X-SIGNATURE": "AAAA"}), "4012400", "Unauthorized. [Signature]"
    )
    ts = bank.timestamp()
    wrong_secret = hmac_signature("x" * 64, "POST", INQUIRY, bank.token, body, ts)
    expect(
        bank.post(INQUIRY, va_body("24"), timestamp=ts, **{"X-SIGNATURE": wrong_secret}),
        "4012400",
        "Unauthorized. [Signature]",
    )
    wrong_path = hmac_signature(bank.secret, "POST", PAYMENT, bank.token, body, ts)
    expect(
        bank.post(INQUIRY, va_body("24"), timestamp=ts, **{"X-SIGNATURE": wrong_path}),
        "4012400",
        "Unauthorized. [Signature]",
    )
    # X-PARTNER-ID must be the token's client.
    other = make_bank("96", "bank-two", "99999")
    expect(
        bank.post(INQUIRY, va_body("24"), **{"X-PARTNER-ID": other.client_id}),
        "4012400",
        "Unauthorized. [X-PARTNER-ID]",
    )
    # Another client's token with our id: the token decides whose request it is.
    expect(bank.post(INQUIRY, va_body("24"), token=other.token), "4012400", "Unauthorized. [X-PARTNER-ID]")


@pytest.mark.parametrize("offset", [-301, 301])
def test_timestamp_outside_the_window(bank, bills, offset):
    ts = wib_timestamp(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset))
    expect(bank.post(INQUIRY, va_body("24"), timestamp=ts), "4012400", "Unauthorized. [X-TIMESTAMP]")


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Basic abc", "Bearer unknown-token", "Bearer a b"]
)
def test_invalid_token(bank, bills, authorization):
    expect(bank.post(STATUS, va_body("26"), Authorization=authorization), "4012601", "Invalid Token (B2B)")


def test_token_expires_after_its_lifetime(make_app, make_bank, bills, clock):
    app = make_app(CLOCK=clock)
    bank = make_bank(app_=app, clock=clock)
    token = bank.token
    clock.at += dt.timedelta(seconds=899)
    expect(bank.inquiry(headers={"token": token}), "2002400", "Successful")
    clock.at += dt.timedelta(seconds=1)
    expect(bank.inquiry(ref="r-2", headers={"token": token}), "4012401", "Invalid Token (B2B)")


def test_token_of_a_deactivated_partner_is_refused(app, bank, bills):
    token = bank.token
    assert app.test_cli_runner().invoke(args=["partner", "deactivate", "00"]).exit_code == 0
    expect(bank.inquiry(headers={"token": token}), "4012401", "Invalid Token (B2B)")


def test_bill_not_found(bank, bills, make_bank):
    expect(bank.inquiry(cid="999999"), "4042412", "Invalid Bill/Virtual Account [Not Found]")
    # A VA of another company code than this client's (its partnerServiceId is 12345).
    other_va = {"partnerServiceId": "   99999", "customerNo": CID, "virtualAccountNo": "   99999" + CID}
    expect(
        bank.post(INQUIRY, {**other_va, "inquiryRequestId": "r"}),
        "4042412",
        "Invalid Bill/Virtual Account [Not Found]",
    )
    expect(
        bank.post(
            PAYMENT, {**other_va, "paymentRequestId": "r", "paidAmount": {"value": "1.00", "currency": "IDR"}}
        ),
        "4042512",
        "Invalid Bill/Virtual Account [Not Found]",
    )


def test_invalid_amount(bank, bills, run_sql):
    bank.inquiry(ref="r-1")
    body = expect(bank.pay(ref="r-1", amount="88800.00"), "4042513", "Invalid Amount")
    assert body["virtualAccountData"] == {
        "paymentFlagStatus": "01",
        "paymentFlagReason": {"english": "Invalid amount", "indonesia": "Jumlah pembayaran tidak sesuai"},
        "partnerServiceId": PSID,
        "customerNo": CID,
        "virtualAccountNo": PSID + CID,
        "paymentRequestId": "r-1",
    }
    assert run_sql("select count(*) from payment") == [(0,)]


def test_paid_bill(bank, bills, run_sql, issue_token, client):
    partner_headers = {"Authorization": f"Bearer {issue_token('00')}"}  # the bank also speaks PeTi
    # Inquiry: nothing left to pay.
    run_sql("update bill set paid_by = '992001010001', paid_at = now()")
    expect(bank.inquiry(ref="r-0"), "4042414", "Paid Bill")
    run_sql("update bill set paid_by = null, paid_at = null")
    # Payment: a bill of the inquiry was paid meanwhile by another payment (PeTi, same partner).
    assert bank.inquiry(ref="r-1").status_code == 200
    inq = client.get(f"/tagihan/{CID}", headers=partner_headers)
    peti = client.post(
        f"/tagihan/{CID}",
        headers=partner_headers,
        json={"inq": inq.headers["X-Cross-Site"], "pid": "peti-1", "amo": 88800, "mer": "1", "per": [202005]},
    )
    assert peti.status_code == 202, peti.json
    expect(bank.pay(ref="r-1"), "4042514", "Paid Bill")
    assert run_sql("select pid from payment") == [("peti-1",)]


def test_inconsistent_request(bank, bills, seed_bills, run_sql):
    seed_bills.simple("5550001", ["202001"])
    assert bank.inquiry(ref="r-1").status_code == 200
    # The same inquiryRequestId for another VA.
    expect(bank.inquiry(cid="5550001", ref="r-1"), "4042418", "Inconsistent Request")
    # A paymentRequestId whose inquiry was for another VA.
    expect(bank.pay(cid="5550001", ref="r-1", amount="48800.00"), "4042518", "Inconsistent Request")
    nob = bank.pay(ref="r-1").json["virtualAccountData"]["additionalInfo"]["nob"]
    # The same paymentRequestId with another amount or VA.
    expect(bank.pay(ref="r-1", amount="100.00"), "4042518", "Inconsistent Request")
    expect(bank.pay(cid="5550001", ref="r-1", amount="177600.00"), "4042518", "Inconsistent Request")
    assert run_sql("select nob from payment") == [(nob,)]


def test_expired_inquiry(make_app, make_bank, bills, clock, run_sql):
    app = make_app(CLOCK=clock)
    bank = make_bank(app_=app, clock=clock)
    expect(bank.pay(ref="never-asked"), "4042519", "Invalid Bill/Virtual Account [Expired]")
    assert bank.inquiry(ref="r-1").status_code == 200
    clock.at += dt.timedelta(seconds=900)
    bank._token = None  # the token expired with the inquiry: a new one
    expect(bank.pay(ref="r-1"), "4042519", "Invalid Bill/Virtual Account [Expired]")
    assert run_sql("select count(*) from payment") == [(0,)]


def test_transaction_not_found(bank, bills, make_bank):
    expect(bank.status(ref="nothing"), "4042601", "Transaction Not Found")
    bank.inquiry(ref="r-1")
    bank.pay(ref="r-1")
    expect(bank.status(ref="r-1", cid="5550001"), "4042601", "Transaction Not Found")
    # Another client's payment is invisible.
    other = make_bank("96", "bank-two", SERVICE_ID_OTHER)
    va = {
        "partnerServiceId": "   " + SERVICE_ID_OTHER,
        "customerNo": CID,
        "virtualAccountNo": "   " + SERVICE_ID_OTHER + CID,
    }
    expect(other.post(STATUS, {**va, "paymentRequestId": "r-1"}), "4042601", "Transaction Not Found")


SERVICE_ID_OTHER = "77777"


@pytest.mark.parametrize(("path", "service"), [(INQUIRY, "24"), (PAYMENT, "25"), (STATUS, "26")])
def test_conflicting_external_id(bank, bills, path, service):
    first = bank.post(path, va_body(service), **{"X-EXTERNAL-ID": "ext-1"})
    assert first.status_code in (200, 404)
    body = expect(
        bank.post(
            path, va_body(service, customerNo="5", virtualAccountNo=PSID + "5"), **{"X-EXTERNAL-ID": "ext-1"}
        ),
        f"409{service}00",
        "Conflict",
    )
    assert body["virtualAccountData"]["customerNo"] == "5"


def test_body_too_large(bank, bills):
    body = va_body("24", additionalInfo={"x": "y" * 20000})
    expect(bank.post(INQUIRY, body), "4132400", "Request Entity Too Large")


def test_general_error_when_the_database_is_down(make_app, private_server, rsa_keys, tmp_path):
    from pdam.infra import migrations

    from .conftest import register

    url = private_server.create_database("pdam")
    migrations.upgrade(url, sealer=SEALER)
    app = make_app(DATABASE_URL=url, DB_CONNECT_TIMEOUT=1)
    assert app.test_cli_runner().invoke(args=["partner", "add", "00", "BANK"]).exit_code == 0
    bank = Bank(app, "bank-one", rsa_keys[0], register(app, rsa_keys[0], tmp_path=tmp_path), "00")
    token = bank.token
    private_server.stop()
    try:
        for send, code in (
            (lambda: bank.request_token(), "5007300"),
            (lambda: bank.post(INQUIRY, va_body("24"), token=token), "5002400"),
            (lambda: bank.post(PAYMENT, va_body("25"), token=token), "5002500"),
            (lambda: bank.post(STATUS, va_body("26"), token=token), "5002600"),
        ):
            started = time.monotonic()
            res = send()
            expect(res, code, "General Error")
            assert res.headers["Retry-After"] == "5"
            assert time.monotonic() - started < 5
            assert "Traceback" not in res.get_data(as_text=True)
    finally:
        private_server.start()
    wait_for(lambda: bank.post(STATUS, va_body("26"), token=token).status_code == 404, timeout=20)


def test_unexpected_error_is_a_general_error_without_trace(bank, bills, monkeypatch):
    from pdam.core import inquiry

    def boom(*args, **kwargs):
        raise RuntimeError("SELECT secret FROM somewhere")

    body = va_body("24")
    monkeypatch.setattr(inquiry, "inquire", boom)
    res = bank.post(INQUIRY, body, **{"X-EXTERNAL-ID": "ext-500"})
    expect(res, "5002400", "General Error")
    assert "secret" not in res.get_data(as_text=True) and "Retry-After" not in res.headers
    # A 5xx is never recorded for X-EXTERNAL-ID: the same request again is a new attempt.
    monkeypatch.undo()
    expect(bank.post(INQUIRY, body, **{"X-EXTERNAL-ID": "ext-500"}), "2002400", "Successful")
