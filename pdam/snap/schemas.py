"""SNAP's wire format: marshmallow schemas of the request and response bodies.

camelCase on the wire, the domain's names inside. Amounts are ``{"value":
"177600.00", "currency": "IDR"}`` here and whole rupiah everywhere else: a well-formed
value with cents other than ``.00`` cannot match a bill (``404xx13`` Invalid Amount).
Unknown fields are ignored, and an optional field sent as JSON ``null`` is absent. A
failed load names one field: the first one missing (``4002402``), else the first one
ill-formed (``4002401``), in the schema's order.

Every string field's length limit is ASPI's (the VA service tables, the token's), written
once in ``MAX_LENGTH`` below: the schemas' ``validate.Length`` read it, so the OpenAPI
document shows it as ``maxLength``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_dump,
    pre_load,
    validate,
    validates_schema,
)

from ..core import ids
from ..core.payments import WIB
from ..web import fields as fields_
from . import codes, signatures

#: The message of a mandatory field that is absent, null or empty.
MISSING = "missing"
#: The message of a well-formed amount with cents other than ``.00`` (Invalid Amount).
CENTS = "cents"
#: An amount with two decimals below 10^15 (PeTi's limit too); only ``.00`` is whole rupiah.
AMOUNT_VALUE = re.compile(r"(0|[1-9][0-9]{0,14})\.[0-9]{2}")
WHOLE = ".00"
SERVICE_ID = re.compile(r" {0,7}[0-9A-Za-z]{1,8}")
SERVICE_ID_WIDTH = 8
CURRENCY = "IDR"

#: ASPI's maximum length of each string field of the SNAP bodies (SNAP-BI VA services
#: 24-26 and the B2B token, service 73), by wire name; a nested object's fields as
#: ``object.field`` (``reason`` is inquiryReason/paymentFlagReason and the error bodies'
#: reasons: 64 in the inquiry's table, 200 in the payment's; ``value`` an amount's).
#: ``additionalInfo`` is free-form in the standard: its fields have no limit.
MAX_LENGTH = {
    "responseCode": 7,
    "responseMessage": 150,
    "accessToken": 2048,
    "tokenType": 2048,
    "expiresIn": 10,
    "partnerServiceId": 8,
    "customerNo": 20,
    "virtualAccountNo": 28,
    "virtualAccountName": 255,
    "inquiryRequestId": 128,
    "paymentRequestId": 128,
    "inquiryStatus": 2,
    "paymentFlagStatus": 2,
    "reason.english": 64,
    "reason.indonesia": 64,
    "virtualAccountTrxType": 1,
    "trxDateTime": 25,
    # The payment request's table allows 64, its answer's and the status answer's say 15:
    # the answer echoes the bank's own value, so the request's limit is the one that holds.
    "referenceNo": 64,
    "language": 2,
    "flagAdvise": 1,
    "billCode": 2,
    "billNo": 18,
    "billName": 20,
    "billShortName": 10,
    "billDescription.english": 18,
    "billDescription.indonesia": 18,
    "billerReferenceId": 64,
    "value": 19,
    "currency": 3,
}
#: At most this many ``billDetails`` in an answer (ASPI): an inquiry shows the oldest ones.
MAX_BILLS = 24


def length(name: str, minimum: int | None = None) -> validate.Length:
    """``validate.Length`` of field ``name`` (``MAX_LENGTH``)."""
    return validate.Length(min=minimum, max=MAX_LENGTH[name])


def _required(**kwargs) -> dict:
    return {"required": True, "error_messages": {"required": MISSING, "null": MISSING}, **kwargs}


class Text(fields_.Text):
    """A string PostgreSQL can store; a required one may not be empty (``MISSING``)."""

    empty_when_required = MISSING


class ServiceId(Text):
    """``partnerServiceId``: 8 characters, the company code left-padded with spaces."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) != SERVICE_ID_WIDTH or not SERVICE_ID.fullmatch(text):
            raise ValidationError("8 characters: the company code left-padded with spaces.")
        return text


class Timestamp(Text):
    """An ISO-8601 date and time with an offset (``2026-11-30T09:15:00+07:00``)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if signatures.parse_timestamp(text) is None:
            raise ValidationError("Not an ISO-8601 date and time with an offset.")
        return text


class CustomerNo(Text):
    """``customerNo``: the customer number (cid), digits only."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not ids.matches(ids.CID, text):
            raise ValidationError("Digits only, 1 to 20.")
        return text


class ChannelCode(fields.Field):
    """The channel's category code (ISO 18245, e.g. 6011 ATM, 6017 mobile banking): a
    number of at most 4 digits, or such a digit string. Loaded as the string."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValidationError("A number of at most 4 digits.")
        text = str(value)
        if not re.fullmatch(r"[0-9]{1,4}", text):
            raise ValidationError("A number of at most 4 digits.")
        return text


class Money(fields.Field):
    """``{"value": "177600.00", "currency": "IDR"}`` <-> whole rupiah (an int)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else {"value": f"{value}.00", "currency": CURRENCY}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError("An object with value and currency.")
        amount, currency = value.get("value"), value.get("currency")
        if amount in (None, "") or currency in (None, ""):
            raise ValidationError({"value" if amount in (None, "") else "currency": [MISSING]})
        if not isinstance(amount, str) or not AMOUNT_VALUE.fullmatch(amount):
            raise ValidationError({"value": ["Whole rupiah with two decimals: 177600.00."]})
        if currency != CURRENCY:
            raise ValidationError({"currency": ["IDR."]})
        if not amount.endswith(WHOLE):
            raise ValidationError({"value": [CENTS]})
        return int(amount[:-3])


class _Request(Schema):
    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _null_is_absent(self, data, **kwargs):
        """A field sent as JSON ``null`` is absent (a mandatory one is then missing)."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


def va_number(service_id: str, customer_no: str, va_no: str) -> bool:
    """Whether ``va_no`` is ``partnerServiceId`` + ``customerNo``: the company code
    left-padded with spaces to 8 (or not padded), the whole number possibly padded with
    trailing spaces (as some banks send it)."""
    number = va_no.rstrip(" ")
    return number in (service_id + customer_no, service_id.lstrip(" ") + customer_no)


class _VirtualAccount(_Request):
    """The VA fields every transactional request carries; loaded as received (the answer
    repeats them so), checked in their normal form."""

    partnerServiceId = ServiceId(**_required(attribute="service_id"))
    customerNo = CustomerNo(**_required(attribute="customer_no"))
    virtualAccountNo = Text(**_required(attribute="va_no", validate=length("virtualAccountNo")))

    @validates_schema
    def _va_no(self, data, **kwargs):
        if not va_number(data["service_id"], data["customer_no"], data["va_no"]):
            raise ValidationError("Must be partnerServiceId + customerNo.", "virtualAccountNo")


class InquiryRequest(_VirtualAccount):
    inquiryRequestId = Text(**_required(attribute="reference", validate=length("inquiryRequestId", 1)))
    trxDateInit = Timestamp()  # not repeated in the answer: its length is not held against a bank
    channelCode = ChannelCode()
    language = Text(validate=length("language"))
    amount = Money()
    additionalInfo = fields.Dict()


class PaymentRequest(_VirtualAccount):
    paymentRequestId = Text(**_required(attribute="reference", validate=length("paymentRequestId", 1)))
    paidAmount = Money(**_required(attribute="amount"))
    virtualAccountName = Text(validate=length("virtualAccountName"))
    totalAmount = Money()
    trxDateTime = Timestamp(attribute="trx_date_time", validate=length("trxDateTime"))
    referenceNo = Text(attribute="reference_no", validate=length("referenceNo", 1))
    flagAdvise = fields.String(validate=validate.OneOf(["Y", "N"]))
    channelCode = ChannelCode()
    billDetails = fields.List(fields.Dict(), validate=validate.Length(max=MAX_BILLS))
    additionalInfo = fields.Dict()


class StatusRequest(_VirtualAccount):
    """``inquiryRequestId`` and/or ``paymentRequestId``: either finds the payment made
    under that inquiry (its ``paymentRequestId`` is the ``inquiryRequestId``)."""

    inquiryRequestId = Text(attribute="inquiry_reference", validate=length("inquiryRequestId", 1))
    paymentRequestId = Text(attribute="reference", validate=length("paymentRequestId", 1))
    additionalInfo = fields.Dict()

    @validates_schema
    def _one_reference(self, data, **kwargs):
        if "inquiry_reference" not in data and "reference" not in data:
            raise ValidationError(MISSING, "inquiryRequestId")


class TokenRequest(_Request):
    grantType = fields.String(**_required(validate=validate.OneOf(["client_credentials"])))
    additionalInfo = fields.Dict()


def _kind(reasons: list) -> str:
    return MISSING if MISSING in reasons else CENTS if reasons == [CENTS] else "format"


def _first(messages: dict, schema: Schema, kind: str) -> str | None:
    """The path of the first field (schema order) whose messages are of ``kind``
    (``MISSING``, ``CENTS`` or "format")."""
    order = [f.data_key or name for name, f in schema.fields.items()]
    for key in sorted(messages, key=lambda k: order.index(k) if k in order else len(order)):
        value = messages[key]
        if isinstance(value, dict):
            for sub, reasons in value.items():
                if isinstance(reasons, list) and _kind(reasons) == kind:
                    return f"{key}.{sub}" if not isinstance(sub, int) else f"{key}[{sub}]"
            continue
        if _kind(value) == kind:
            return str(key)
    return None


def load(schema: Schema, data: Any) -> dict:
    """Validate a body; a failure is the SNAP error naming one field: missing, else
    ill-formed, else an amount with cents (Invalid Amount)."""
    if not isinstance(data, dict):
        raise codes.bad_request()
    try:
        return schema.load(data)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        field = _first(messages, schema, MISSING)
        if field is not None:
            raise codes.missing(field) from None
        field = _first(messages, schema, "format")
        if field is None and _first(messages, schema, CENTS) is not None:
            raise codes.invalid_amount() from None
        raise codes.invalid_format(field or "body") from None


# -- responses ---------------------------------------------------------------------------

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

    billCode = fields.Function(lambda b: f"{b['index']:02d}", required=True, validate=length("billCode"))
    billNo = fields.Function(_bill_no, validate=length("billNo"))
    billName = fields.Function(
        lambda b: f"Tagihan Air {b['period']}", required=True, validate=length("billName")
    )
    billShortName = _string("billShortName", attribute="period")
    billDescription = fields.Function(
        lambda b: BILL_DESCRIPTION.dump(
            {
                "english": f"Water {month(b['period'], MONTHS_EN)}",
                "indonesia": f"Air {month(b['period'], MONTHS_ID)}",
            }
        ),
        required=True,
    )
    billAmount = Money(attribute="total", required=True)
    billerReferenceId = fields.String(attribute="nob", validate=length("billerReferenceId"))

    @post_dump
    def _absent(self, data, **kwargs):
        return {key: value for key, value in data.items() if value is not None}


def bill_details(bills: list[dict], nob: str | None = None) -> list[dict]:
    schema = BILL_DETAIL if nob is None else BILL_DETAIL_PAID
    return [schema.dump({**bill, "index": i, "nob": nob}) for i, bill in enumerate(bills, 1)]


def _flag_reason(d: dict) -> dict:
    return d["flag_reason"]


def _name(d: dict) -> str:
    return d["name"][: MAX_LENGTH["virtualAccountName"]]


class InquiryData(Schema):
    inquiryStatus = fields.Constant("00", required=True, validate=length("inquiryStatus"))
    inquiryReason = fields.Constant({"english": "Success", "indonesia": "Sukses"}, required=True)
    partnerServiceId = _string("partnerServiceId", attribute="service_id")
    customerNo = _string("customerNo", attribute="customer_no")
    virtualAccountNo = _string("virtualAccountNo", attribute="va_no")
    virtualAccountName = fields.Function(_name, required=True, validate=length("virtualAccountName"))
    inquiryRequestId = _string("inquiryRequestId", attribute="reference")
    totalAmount = Money(attribute="total", required=True)
    billDetails = fields.Function(
        lambda d: bill_details(d["bills"]), required=True, validate=validate.Length(max=MAX_BILLS)
    )
    virtualAccountTrxType = fields.Constant("C", required=True, validate=length("virtualAccountTrxType"))
    feeAmount = Money(attribute="fee", required=True)
    additionalInfo = fields.Function(
        lambda d: {"customerAddress": d["address"], "customerTariff": d["tariff"]}, required=True
    )


#: Fields of a payment's answer that are the bank's own values from its payment request:
#: absent when it sent none.
BANK_VALUES = ("trxDateTime", "referenceNo")


class PaymentData(Schema):
    paymentFlagStatus = _string("paymentFlagStatus", attribute="flag")
    paymentFlagReason = fields.Function(_flag_reason, required=True)
    partnerServiceId = _string("partnerServiceId", attribute="service_id")
    customerNo = _string("customerNo", attribute="customer_no")
    virtualAccountNo = _string("virtualAccountNo", attribute="va_no")
    virtualAccountName = fields.Function(_name, required=True, validate=length("virtualAccountName"))
    paymentRequestId = _string("paymentRequestId", attribute="pid")
    paidAmount = Money(attribute="amount", required=True)
    totalAmount = Money(attribute="total", required=True)
    trxDateTime = fields.String(attribute="trx_date_time", validate=length("trxDateTime"))
    referenceNo = fields.String(attribute="reference_no", validate=length("referenceNo"))
    billDetails = fields.Function(
        lambda d: bill_details(d["bills"], d["nob"]), required=True, validate=validate.Length(max=MAX_BILLS)
    )
    additionalInfo = fields.Function(lambda d: {"nob": d["nob"], "pat": d["pat"]}, required=True)

    @post_dump
    def _absent(self, data, **kwargs):
        return {key: value for key, value in data.items() if value is not None or key not in BANK_VALUES}


class StatusData(Schema):
    paymentFlagStatus = _string("paymentFlagStatus", attribute="flag")
    paymentFlagReason = fields.Function(_flag_reason, required=True)
    partnerServiceId = _string("partnerServiceId", attribute="service_id")
    customerNo = _string("customerNo", attribute="customer_no")
    virtualAccountNo = _string("virtualAccountNo", attribute="va_no")
    virtualAccountName = fields.Function(_name, required=True, validate=length("virtualAccountName"))
    # The inquiry's id is the payment's (a payment's paymentRequestId is its inquiryRequestId).
    inquiryRequestId = fields.Function(lambda d: d["pid"], required=True, validate=length("inquiryRequestId"))
    paymentRequestId = _string("paymentRequestId", attribute="pid")
    paidAmount = Money(attribute="amount", required=True)
    trxDateTime = fields.String(attribute="trx_date_time", validate=length("trxDateTime"))
    referenceNo = fields.String(attribute="reference_no", validate=length("referenceNo"))
    billDetails = fields.Function(
        lambda d: bill_details(d["bills"], d["nob"]), required=True, validate=validate.Length(max=MAX_BILLS)
    )
    additionalInfo = fields.Function(
        lambda d: {"nob": d["nob"], "status": d["status"], "rev": 1 if d["reversed_at"] else 0}, required=True
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
    expiresIn = _string("expiresIn")


BILL_DETAIL = BillDetail(exclude=("billerReferenceId",))
BILL_DETAIL_PAID = BillDetail()
BILL_DESCRIPTION = BillDescription()
