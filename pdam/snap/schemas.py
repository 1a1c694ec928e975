"""SNAP's wire format: marshmallow schemas of the request and response bodies.

camelCase on the wire, the domain's names inside. Amounts are ``{"value":
"177600.00", "currency": "IDR"}`` here and whole rupiah everywhere else: a value
with cents other than ``.00`` is refused. Unknown fields are ignored. A failed
load names one field: the first one missing (``4002402``), else the first one
ill-formed (``4002401``), in the schema's order.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from ..core import ids
from ..core.payments import WIB
from . import codes, signatures

#: The message of a mandatory field that is absent, null or empty.
MISSING = "missing"
#: Whole rupiah with two zero decimals, below 10^15 (PeTi's limit too).
AMOUNT_VALUE = re.compile(r"(0|[1-9][0-9]{0,14})\.00")
#: What PostgreSQL cannot store in text: NUL, and lone surrogates (a JSON "\ud800" escape).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
SERVICE_ID = re.compile(r" {0,7}[0-9A-Za-z]{1,8}")
SERVICE_ID_WIDTH = 8
CURRENCY = "IDR"


def _required(**kwargs) -> dict:
    return {"required": True, "error_messages": {"required": MISSING, "null": MISSING}, **kwargs}


class Text(fields.String):
    """A string PostgreSQL can store; a required one may not be empty."""

    default_error_messages = {"unstorable": "Must not contain NUL characters or lone surrogates."}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if text == "" and self.required:
            raise ValidationError(MISSING)
        if UNSTORABLE.search(text):
            raise self.make_error("unstorable")
        return text


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
        return int(amount[:-3])


class _Request(Schema):
    class Meta:
        unknown = EXCLUDE


class _VirtualAccount(_Request):
    """The VA fields every transactional request carries."""

    partnerServiceId = ServiceId(**_required(attribute="service_id"))
    customerNo = CustomerNo(**_required(attribute="customer_no"))
    virtualAccountNo = Text(**_required(attribute="va_no", validate=validate.Length(max=28)))

    @validates_schema
    def _va_no(self, data, **kwargs):
        if data["va_no"] != data["service_id"] + data["customer_no"]:
            raise ValidationError("Must be partnerServiceId + customerNo.", "virtualAccountNo")


REFERENCE = validate.Length(min=1, max=128)


class InquiryRequest(_VirtualAccount):
    inquiryRequestId = Text(**_required(attribute="reference", validate=REFERENCE))
    trxDateInit = Timestamp()
    channelCode = ChannelCode()
    language = Text(validate=validate.Length(max=2))
    amount = Money()
    additionalInfo = fields.Dict()


class PaymentRequest(_VirtualAccount):
    paymentRequestId = Text(**_required(attribute="reference", validate=REFERENCE))
    paidAmount = Money(**_required(attribute="amount"))
    virtualAccountName = Text(validate=validate.Length(max=255))
    totalAmount = Money()
    trxDateTime = Timestamp()
    referenceNo = Text(validate=validate.Length(max=64))
    flagAdvise = fields.String(validate=validate.OneOf(["Y", "N"]))
    channelCode = ChannelCode()
    billDetails = fields.List(fields.Dict(), validate=validate.Length(max=120))
    additionalInfo = fields.Dict()


class StatusRequest(_VirtualAccount):
    paymentRequestId = Text(**_required(attribute="reference", validate=REFERENCE))
    additionalInfo = fields.Dict()


class TokenRequest(_Request):
    grantType = fields.String(**_required(validate=validate.OneOf(["client_credentials"])))
    additionalInfo = fields.Dict()


def _first(messages: dict, schema: Schema, want_missing: bool) -> str | None:
    """The path of the first field (schema order) whose messages are (not) ``MISSING``."""
    order = [f.data_key or name for name, f in schema.fields.items()]
    for key in sorted(messages, key=lambda k: order.index(k) if k in order else len(order)):
        value = messages[key]
        if isinstance(value, dict):
            for sub, reasons in value.items():
                if isinstance(reasons, list) and (MISSING in reasons) == want_missing:
                    return f"{key}.{sub}" if not isinstance(sub, int) else f"{key}[{sub}]"
            continue
        if (MISSING in value) == want_missing:
            return str(key)
    return None


def load(schema: Schema, data: Any) -> dict:
    """Validate a body; a failure is the SNAP error naming one field."""
    if not isinstance(data, dict):
        raise codes.bad_request()
    try:
        return schema.load(data)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        field = _first(messages, schema, want_missing=True)
        if field is not None:
            raise codes.missing(field) from None
        raise codes.invalid_format(_first(messages, schema, want_missing=False) or "body") from None


# -- responses ---------------------------------------------------------------------------

MONTHS_EN = "January February March April May June July August September October November December".split()
MONTHS_ID = "Januari Februari Maret April Mei Juni Juli Agustus September Oktober November Desember".split()


def month(period: str, names: list[str]) -> str:
    return f"{names[int(period[4:]) - 1]} {period[:4]}"


def wib_iso(when: dt.datetime) -> str:
    """A time as SNAP writes it: ISO-8601 in WIB, seconds (``2026-11-30T09:15:00+07:00``)."""
    return when.astimezone(WIB).replace(microsecond=0).isoformat()


class Reason(Schema):
    english = fields.String(required=True)
    indonesia = fields.String(required=True)


class BillDetail(Schema):
    """One bill of the inquiry; ``billerReferenceId`` (the receipt number) once paid."""

    billCode = fields.Function(lambda b: f"{b['index']:02d}", required=True)
    billNo = fields.String(attribute="bill_no", required=True)
    billName = fields.Function(lambda b: f"Tagihan Air {b['period']}", required=True)
    billShortName = fields.String(attribute="period", required=True)
    billDescription = fields.Function(
        lambda b: {
            "english": f"Water bill {month(b['period'], MONTHS_EN)}",
            "indonesia": f"Tagihan air {month(b['period'], MONTHS_ID)}",
        },
        required=True,
    )
    billAmount = Money(attribute="total", required=True)
    billerReferenceId = fields.String(attribute="nob")


def bill_details(bills: list[dict], nob: str | None = None) -> list[dict]:
    schema = BILL_DETAIL if nob is None else BILL_DETAIL_PAID
    return [schema.dump({**bill, "index": i, "nob": nob}) for i, bill in enumerate(bills, 1)]


def _flag_reason(d: dict) -> dict:
    return d["flag_reason"]


class InquiryData(Schema):
    inquiryStatus = fields.Constant("00", required=True)
    inquiryReason = fields.Constant({"english": "Success", "indonesia": "Sukses"}, required=True)
    partnerServiceId = fields.String(attribute="service_id", required=True)
    customerNo = fields.String(attribute="customer_no", required=True)
    virtualAccountNo = fields.String(attribute="va_no", required=True)
    virtualAccountName = fields.String(attribute="name", required=True)
    inquiryRequestId = fields.String(attribute="reference", required=True)
    totalAmount = Money(attribute="total", required=True)
    billDetails = fields.Function(lambda d: bill_details(d["bills"]), required=True)
    virtualAccountTrxType = fields.Constant("C", required=True)
    feeAmount = Money(attribute="fee", required=True)
    additionalInfo = fields.Function(
        lambda d: {"customerAddress": d["address"], "customerTariff": d["tariff"]}, required=True
    )


class PaymentData(Schema):
    paymentFlagStatus = fields.String(attribute="flag", required=True)
    paymentFlagReason = fields.Function(_flag_reason, required=True)
    partnerServiceId = fields.String(attribute="service_id", required=True)
    customerNo = fields.String(attribute="customer_no", required=True)
    virtualAccountNo = fields.String(attribute="va_no", required=True)
    virtualAccountName = fields.String(attribute="name", required=True)
    paymentRequestId = fields.String(attribute="pid", required=True)
    paidAmount = Money(attribute="amount", required=True)
    totalAmount = Money(attribute="total", required=True)
    trxDateTime = fields.Function(lambda d: wib_iso(d["accepted_at"]), required=True)
    referenceNo = fields.String(attribute="nob", required=True)
    billDetails = fields.Function(lambda d: bill_details(d["bills"], d["nob"]), required=True)
    additionalInfo = fields.Function(lambda d: {"nob": d["nob"], "pat": d["pat"]}, required=True)


class StatusData(Schema):
    paymentFlagStatus = fields.String(attribute="flag", required=True)
    paymentFlagReason = fields.Function(_flag_reason, required=True)
    partnerServiceId = fields.String(attribute="service_id", required=True)
    customerNo = fields.String(attribute="customer_no", required=True)
    virtualAccountNo = fields.String(attribute="va_no", required=True)
    virtualAccountName = fields.String(attribute="name", required=True)
    paymentRequestId = fields.String(attribute="pid", required=True)
    paidAmount = Money(attribute="amount", required=True)
    trxDateTime = fields.Function(lambda d: wib_iso(d["accepted_at"]), required=True)
    referenceNo = fields.String(attribute="nob", required=True)
    billDetails = fields.Function(lambda d: bill_details(d["bills"], d["nob"]), required=True)
    additionalInfo = fields.Function(
        lambda d: {"nob": d["nob"], "status": d["status"], "rev": 1 if d["reversed_at"] else 0}, required=True
    )


class _Answer(Schema):
    responseCode = fields.String(required=True)
    responseMessage = fields.String(required=True)


class InquiryResponse(_Answer):
    virtualAccountData = fields.Nested(InquiryData, required=True)


class PaymentResponse(_Answer):
    virtualAccountData = fields.Nested(PaymentData, required=True)


class StatusResponse(_Answer):
    virtualAccountData = fields.Nested(StatusData, required=True)


class TokenResponse(_Answer):
    accessToken = fields.String(required=True)
    tokenType = fields.Constant("Bearer", required=True)
    expiresIn = fields.String(required=True)


BILL_DETAIL = BillDetail(exclude=("billerReferenceId",))
BILL_DETAIL_PAID = BillDetail()
