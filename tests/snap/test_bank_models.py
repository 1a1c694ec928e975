"""Our SNAP answers as a bank's own code sees them: validated with an independent SNAP
implementation's response models (the ``snapapi`` package on PyPI, pydantic models of the
ASPI VA tables written by other people), not with our schemas.

Where that package and ASPI differ, ASPI wins and the difference is named here: its
``Oauth2Response`` wants ``tokenType`` "BearerToken", where ASPI's access-token table and
banks' portals say "Bearer" (contract 12.2), so the token answer is checked field by field.
"""

from __future__ import annotations

import datetime as dt

import pytest
from snapapi.model.virtual_account import inquiry as aspi_inquiry
from snapapi.model.virtual_account import payment as aspi_payment
from snapapi.tools import datetime_string

pytestmark = pytest.mark.usefixtures("bills")


def assert_timestamp_header(res) -> None:
    """Every /snap/ answer carries X-TIMESTAMP, ISO-8601 with the WIB offset."""
    value = res.headers.get("X-TIMESTAMP")
    assert value, dict(res.headers)
    datetime_string(value)
    assert dt.datetime.fromisoformat(value).utcoffset() == dt.timedelta(hours=7)


def test_token_answer(bank):
    res = bank.request_token()
    assert res.status_code == 200
    assert_timestamp_header(res)
    assert res.headers["X-CLIENT-KEY"] == bank.client_id
    assert res.json["responseCode"] == "2007300" and res.json["tokenType"] == "Bearer"


def test_inquiry_answer_is_valid_for_the_banks_model(bank):
    res = bank.inquiry()
    assert res.status_code == 200, res.json
    assert_timestamp_header(res)
    model = aspi_inquiry.InquiryResponseData.model_validate(res.json)
    va = model.virtualAccountData
    assert (va.inquiryStatus, va.partnerServiceId, va.customerNo) == ("00", "   12345", "010101010101")
    assert [b.billCode for b in va.billDetails] == ["01", "02"]


def test_payment_answer_is_valid_for_the_banks_model(bank):
    assert bank.inquiry().status_code == 200
    res = bank.pay(referenceNo="REF-778899", trxDateTime="2026-12-04T10:15:00+07:00")
    assert res.status_code == 200, res.json
    assert_timestamp_header(res)
    model = aspi_payment.PaymentResponseData.model_validate(res.json)
    va = model.virtualAccountData
    assert va.paymentFlagStatus == "00" and va.paidAmount.value == "177600.00"
    assert (res.json["virtualAccountData"]["referenceNo"], res.json["virtualAccountData"]["trxDateTime"]) == (
        "REF-778899",
        "2026-12-04T10:15:00+07:00",
    )


@pytest.mark.parametrize("path", ["inquiry", "pay", "status"])
def test_error_answers_carry_the_timestamp_too(bank, path):
    res = getattr(bank, path)(cid="999999")
    assert res.status_code == 404
    assert_timestamp_header(res)


def test_a_customer_with_30_bills_is_within_the_banks_24(bank, seed_bills):
    seed_bills.simple("5550030", [f"{2020 + i // 12}{i % 12 + 1:02d}" for i in range(30)])
    inquiry = bank.inquiry(cid="5550030", ref="b-30")
    model = aspi_inquiry.InquiryResponseData.model_validate(inquiry.json)
    assert len(model.virtualAccountData.billDetails) == 24
    paid = bank.pay(
        cid="5550030", ref="b-30", amount=inquiry.json["virtualAccountData"]["totalAmount"]["value"]
    )
    assert (
        len(aspi_payment.PaymentResponseData.model_validate(paid.json).virtualAccountData.billDetails) == 24
    )
