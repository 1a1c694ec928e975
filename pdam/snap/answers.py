"""SNAP's answers: marshmallow schemas of the response bodies (camelCase), each field's
length ASPI's (``MAX_LENGTH``) and its OpenAPI description in its metadata."""

from __future__ import annotations

import datetime as dt

from marshmallow import Schema, fields, post_dump, validate

from ..core import ids
from ..core.payments import WIB
from .fields import MAX_BILLS, MAX_LENGTH, Money, length

#: Month abbreviations of ``billDescription`` (18 characters at most: ``Air Sep 2020``).
MONTHS_EN = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
MONTHS_ID = "Jan Feb Mar Apr Mei Jun Jul Agu Sep Okt Nov Des".split()


def month(period: str, names: list[str]) -> str:
    return f"{names[int(period[4:]) - 1]} {period[:4]}"


def wib_iso(when: dt.datetime) -> str:
    """A time as SNAP writes it: ISO-8601 in WIB, seconds (``2026-11-30T09:15:00+07:00``)."""
    return when.astimezone(WIB).replace(microsecond=0).isoformat()


def _string(name: str, **kwargs) -> fields.String:
    """A dumped string field limited to ``MAX_LENGTH[name]``."""
    return fields.String(required=True, validate=length(name), **kwargs)


# What the OpenAPI document says of the answers' fields beyond their types.
NAME = {"type": "string", "description": "the customer's name"}
FLAG = {"type": "string", "enum": ["00", "01"]}
_BILL_DETAIL_REF = {"$ref": "#/components/schemas/SnapBillDetail"}
BILLS = {
    "type": "array",
    "items": {
        "allOf": [_BILL_DETAIL_REF, {"required": ["billerReferenceId"]}],
        "description": "with `billerReferenceId`, the receipt number (nob)",
    },
}
UNPAID_BILLS = {
    "type": "array",
    "items": {"allOf": [_BILL_DETAIL_REF], "description": "without `billerReferenceId` (not paid yet)"},
}


def bank_value(name: str) -> dict:
    return {
        "type": "string",
        "description": f"your `{name}` of the payment request that recorded the payment, as sent (absent "
        "when you sent none)",
    }


class Reason(Schema):
    english = _string("reason.english")
    indonesia = _string("reason.indonesia")


class BillDescription(Schema):
    english = _string("billDescription.english")
    indonesia = _string("billDescription.indonesia")


def _bill_no(bill: dict) -> str | None:
    """The bill id, when it fits ``billNo`` (ASPI: 18; the ledger allows 40): else absent."""
    return bill["bill_no"] if len(bill["bill_no"]) <= MAX_LENGTH["billNo"] else None


class BillDetail(Schema):
    """One bill of the inquiry; ``billerReferenceId`` (the receipt number) once paid."""

    billCode = fields.Function(
        lambda b: f"{b['index']:02d}",
        required=True,
        validate=length("billCode"),
        metadata={"type": "string", "pattern": "^[0-9]{2}$", "description": '"01", "02"...'},
    )
    billNo = fields.Function(
        _bill_no,
        validate=length("billNo"),
        metadata={"type": "string", "description": "the bill id (absent when longer than 18)"},
    )
    billName = fields.Function(
        lambda b: f"Tagihan Air {b['period']}",
        required=True,
        validate=length("billName"),
        metadata={"type": "string"},
    )
    billShortName = _string(
        "billShortName",
        attribute="period",
        metadata={"pattern": ids.ecma(ids.PERIOD), "description": "the period `YYYYMM`"},
    )
    billDescription = fields.Function(
        lambda b: BILL_DESCRIPTION.dump(
            {
                "english": f"Water {month(b['period'], MONTHS_EN)}",
                "indonesia": f"Air {month(b['period'], MONTHS_ID)}",
            }
        ),
        required=True,
        metadata={"schema": BillDescription},
    )
    billAmount = Money(attribute="total", required=True)
    billerReferenceId = fields.String(
        attribute="nob",
        validate=length("billerReferenceId"),
        metadata={"pattern": ids.ecma(ids.NOB), "description": "the receipt number (nob)"},
    )

    @post_dump
    def _absent(self, data, **kwargs):
        return {key: value for key, value in data.items() if value is not None}


def bill_details(bills, nob: str | None = None) -> list[dict]:
    """The ``billDetails`` of the core's bills (records)."""
    schema = BILL_DETAIL if nob is None else BILL_DETAIL_PAID
    return [
        schema.dump({**{name: getattr(bill, name) for name in bill.FIELDS}, "index": i, "nob": nob})
        for i, bill in enumerate(bills, 1)
    ]


def _flag_reason(d: dict) -> dict:
    return d["flag_reason"]


def _name(d: dict) -> str:
    return d["name"][: MAX_LENGTH["virtualAccountName"]]


class InquiryData(Schema):
    inquiryStatus = fields.Constant("00", required=True, validate=length("inquiryStatus"))
    inquiryReason = fields.Constant(
        {"english": "Success", "indonesia": "Sukses"}, required=True, metadata={"schema": Reason}
    )
    partnerServiceId = _string("partnerServiceId", attribute="service_id")
    customerNo = _string("customerNo", attribute="customer_no")
    virtualAccountNo = _string("virtualAccountNo", attribute="va_no")
    virtualAccountName = fields.Function(
        _name, required=True, validate=length("virtualAccountName"), metadata=NAME
    )
    inquiryRequestId = _string("inquiryRequestId", attribute="reference")
    totalAmount = Money(attribute="total", required=True)
    billDetails = fields.Function(
        lambda d: bill_details(d["bills"]),
        required=True,
        validate=validate.Length(max=MAX_BILLS),
        metadata={
            **UNPAID_BILLS,
            "maxItems": MAX_BILLS,
            "description": f"the oldest unpaid bills, at most {MAX_BILLS}: the inquiry (and so the payment) covers exactly these; the rest are offered by a later inquiry",
        },
    )
    virtualAccountTrxType = fields.Constant("C", required=True, validate=length("virtualAccountTrxType"))
    feeAmount = Money(attribute="fee", required=True)
    additionalInfo = fields.Function(
        lambda d: {"customerAddress": d["address"], "customerTariff": d["tariff"]},
        required=True,
        metadata={
            "type": "object",
            "required": ["customerAddress", "customerTariff"],
            "properties": {"customerAddress": {"type": "string"}, "customerTariff": {"type": "string"}},
        },
    )


#: Fields of a payment's answer that are the bank's own values from its payment request:
#: absent when it sent none.
BANK_VALUES = ("trxDateTime", "referenceNo")


class PaymentData(Schema):
    paymentFlagStatus = _string(
        "paymentFlagStatus",
        attribute="flag",
        metadata={**FLAG, "enum": ["00"], "description": '"00": recorded'},
    )
    paymentFlagReason = fields.Function(_flag_reason, required=True, metadata={"schema": Reason})
    partnerServiceId = _string("partnerServiceId", attribute="service_id")
    customerNo = _string("customerNo", attribute="customer_no")
    virtualAccountNo = _string("virtualAccountNo", attribute="va_no")
    virtualAccountName = fields.Function(
        _name, required=True, validate=length("virtualAccountName"), metadata=NAME
    )
    paymentRequestId = _string("paymentRequestId", attribute="pid")
    paidAmount = Money(attribute="amount", required=True)
    totalAmount = Money(attribute="total", required=True)
    trxDateTime = fields.String(
        attribute="trx_date_time", validate=length("trxDateTime"), metadata=bank_value("trxDateTime")
    )
    referenceNo = fields.String(
        attribute="reference_no", validate=length("referenceNo"), metadata=bank_value("referenceNo")
    )
    billDetails = fields.Function(
        lambda d: bill_details(d["bills"], d["nob"]),
        required=True,
        validate=validate.Length(max=MAX_BILLS),
        metadata={**BILLS, "maxItems": MAX_BILLS},
    )
    additionalInfo = fields.Function(
        lambda d: {"nob": d["nob"], "pat": d["pat"]},
        required=True,
        metadata={
            "type": "object",
            "required": ["nob", "pat"],
            "properties": {
                "nob": {"type": "string", "pattern": ids.ecma(ids.NOB)},
                "pat": {
                    "type": "string",
                    "pattern": "^[0-9A-F]{20}$",
                    "description": "the payment's secret handle",
                },
            },
        },
    )

    @post_dump
    def _absent(self, data, **kwargs):
        return {key: value for key, value in data.items() if value is not None or key not in BANK_VALUES}


class StatusData(Schema):
    paymentFlagStatus = _string(
        "paymentFlagStatus",
        attribute="flag",
        metadata={
            **FLAG,
            "description": '"00" recorded and standing; "01" rejected (paid before) or reversed',
        },
    )
    paymentFlagReason = fields.Function(_flag_reason, required=True, metadata={"schema": Reason})
    partnerServiceId = _string("partnerServiceId", attribute="service_id")
    customerNo = _string("customerNo", attribute="customer_no")
    virtualAccountNo = _string("virtualAccountNo", attribute="va_no")
    virtualAccountName = fields.Function(
        _name, required=True, validate=length("virtualAccountName"), metadata=NAME
    )
    # The inquiry's id is the payment's (a payment's paymentRequestId is its inquiryRequestId).
    inquiryRequestId = fields.Function(
        lambda d: d["pid"],
        required=True,
        validate=length("inquiryRequestId"),
        metadata={
            "type": "string",
            "description": "the inquiry the payment paid (its `paymentRequestId` is this id)",
        },
    )
    paymentRequestId = _string("paymentRequestId", attribute="pid")
    paidAmount = Money(attribute="amount", required=True)
    trxDateTime = fields.String(
        attribute="trx_date_time", validate=length("trxDateTime"), metadata=bank_value("trxDateTime")
    )
    referenceNo = fields.String(
        attribute="reference_no", validate=length("referenceNo"), metadata=bank_value("referenceNo")
    )
    billDetails = fields.Function(
        lambda d: bill_details(d["bills"], d["nob"]),
        required=True,
        validate=validate.Length(max=MAX_BILLS),
        metadata={**BILLS, "maxItems": MAX_BILLS},
    )
    additionalInfo = fields.Function(
        lambda d: {"nob": d["nob"], "status": d["status"], "rev": 1 if d["reversed_at"] else 0},
        required=True,
        metadata={
            "type": "object",
            "required": ["nob", "status", "rev"],
            "properties": {
                "nob": {"type": "string", "pattern": ids.ecma(ids.NOB)},
                "status": {"type": "string", "enum": ["created", "accepted", "changed", "rejected"]},
                "rev": {"type": "integer", "enum": [0, 1]},
            },
        },
    )

    @post_dump
    def _absent(self, data, **kwargs):
        return {key: value for key, value in data.items() if value is not None or key not in BANK_VALUES}


class _Answer(Schema):
    responseCode = _string("responseCode")
    responseMessage = _string("responseMessage")


class InquiryResponse(_Answer):
    virtualAccountData = fields.Nested(InquiryData, required=True)


class PaymentResponse(_Answer):
    virtualAccountData = fields.Nested(PaymentData, required=True)


class StatusResponse(_Answer):
    virtualAccountData = fields.Nested(StatusData, required=True)


class TokenResponse(_Answer):
    accessToken = _string("accessToken")
    tokenType = fields.Constant("Bearer", required=True, validate=length("tokenType"))
    expiresIn = _string("expiresIn", metadata={"pattern": "^[0-9]+$", "description": "seconds, as a string"})


BILL_DETAIL = BillDetail(exclude=("billerReferenceId",))
BILL_DETAIL_PAID = BillDetail()
BILL_DESCRIPTION = BillDescription()
