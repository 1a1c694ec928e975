"""SNAP's fields: the custom ones (service id, timestamp, customer number, channel code,
money), each with its wire form in the OpenAPI document, and ASPI's length limits."""

from __future__ import annotations

import re

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from ..core import ids
from ..web import fields as web_fields
from . import signatures

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
TIMESTAMP_PATTERN = "^" + signatures.TIMESTAMP.pattern + "$"
AMOUNT_PATTERN = "^" + AMOUNT_VALUE.pattern + "$"

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
    # ASPI's tables say 25 (seconds and an offset); banks' libraries send fractional seconds
    # too (contract 14.4: ``2026-12-07T08:26:48.282+07:00``, 29), echoed as sent: the longest
    # timestamp the pattern takes (microseconds) is the limit.
    "trxDateTime": 32,
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


class Text(web_fields.Text):
    """A string PostgreSQL can store; a required one may not be empty (``MISSING``)."""

    empty_when_required = MISSING


class ServiceId(Text):
    """``partnerServiceId``: 8 characters, the company code left-padded with spaces."""

    OPENAPI = {
        "type": "string",
        "minLength": 8,
        "maxLength": 8,
        "pattern": "^ {0,7}[0-9A-Za-z]{1,8}$",
        "description": "our company code at your bank, left-padded with spaces to 8 characters",
        "example": "   12345",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) != SERVICE_ID_WIDTH or not SERVICE_ID.fullmatch(text):
            raise ValidationError("8 characters: the company code left-padded with spaces.")
        return text


class Timestamp(Text):
    """An ISO-8601 date and time with an offset (``2026-11-30T09:15:00+07:00``)."""

    OPENAPI = {"type": "string", "pattern": TIMESTAMP_PATTERN, "example": "2026-11-30T09:15:00+07:00"}

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

    OPENAPI = {
        "anyOf": [
            {"type": "integer", "minimum": 0, "maximum": 9999},
            {"type": "string", "pattern": "^[0-9]{1,4}$"},
        ],
        "description": "the channel's category code (e.g. 6011 ATM, 6014 internet banking, 6017 mobile "
        "banking); recorded as the payment's merchant",
        "example": 6017,
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValidationError("A number of at most 4 digits.")
        text = str(value)
        if not re.fullmatch(r"[0-9]{1,4}", text):
            raise ValidationError("A number of at most 4 digits.")
        return text


class MoneyBody(Schema):
    """An amount: whole rupiah with two decimals, in IDR (other keys are ignored)."""

    class Meta:
        unknown = EXCLUDE

    value = fields.String(
        required=True,
        metadata={
            "pattern": AMOUNT_PATTERN,
            "example": "177600.00",
            "description": "whole rupiah, two decimals (cents other than `.00` cannot match a bill: "
            "`404xx13` Invalid Amount)",
        },
    )
    currency = fields.String(required=True, metadata={"enum": ["IDR"]})


class Money(fields.Field):
    """``{"value": "177600.00", "currency": "IDR"}`` <-> whole rupiah (an int)."""

    OPENAPI_SCHEMA = MoneyBody

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
