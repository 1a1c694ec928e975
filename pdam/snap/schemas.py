"""SNAP's wire format: marshmallow schemas of the request and response bodies.

camelCase on the wire, the domain's names inside. Amounts are ``{"value":
"177600.00", "currency": "IDR"}`` here and whole rupiah everywhere else: a well-formed
value with cents other than ``.00`` cannot match a bill (``404xx13`` Invalid Amount).
Unknown fields are ignored, and an optional field sent as JSON ``null`` is absent. A
failed load names one field: the first one missing (``4002402``), else the first one
ill-formed (``4002401``), in the schema's order.

Every string field's length limit is ASPI's (the VA service tables, the token's), written
once in ``MAX_LENGTH`` (pdam/snap/fields.py, with the custom fields): the schemas' ``validate.Length`` read it, so the OpenAPI
document shows it as ``maxLength``.
"""

from __future__ import annotations

from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    validate,
    validates_schema,
)

from ..core import ids
from . import codes
from .answers import (  # noqa: F401 (the answers' schemas are the schemas')
    BANK_VALUES,
    BILL_DESCRIPTION,
    BILL_DETAIL,
    BILL_DETAIL_PAID,
    BILLS,
    FLAG,
    MONTHS_EN,
    MONTHS_ID,
    NAME,
    UNPAID_BILLS,
    BillDescription,
    BillDetail,
    InquiryData,
    InquiryResponse,
    PaymentData,
    PaymentResponse,
    Reason,
    StatusData,
    StatusResponse,
    TokenResponse,
    bank_value,
    bill_details,
    month,
    wib_iso,
)
from .fields import (  # noqa: F401 (the fields and limits are the schemas')
    AMOUNT_VALUE,
    CENTS,
    CURRENCY,
    MAX_BILLS,
    MAX_LENGTH,
    MISSING,
    ChannelCode,
    CustomerNo,
    Money,
    ServiceId,
    Text,
    Timestamp,
    _required,
    length,
)


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
    customerNo = CustomerNo(
        **_required(attribute="customer_no"),
        metadata={"pattern": ids.ecma(ids.CID), "description": "the customer number (cid)"},
    )
    virtualAccountNo = Text(
        **_required(attribute="va_no", validate=length("virtualAccountNo")),
        metadata={
            "description": "`partnerServiceId` + `customerNo` (the company code left-padded with spaces to 8, or not padded; trailing spaces up to 28 characters are ignored); answers repeat it as sent"
        },
    )

    @validates_schema
    def _va_no(self, data, **kwargs):
        if not va_number(data["service_id"], data["customer_no"], data["va_no"]):
            raise ValidationError("Must be partnerServiceId + customerNo.", "virtualAccountNo")


class InquiryRequest(_VirtualAccount):
    inquiryRequestId = Text(
        **_required(attribute="reference", validate=length("inquiryRequestId", 1)),
        metadata={"description": "your id of this inquiry; the payment sends it as `paymentRequestId`"},
    )
    trxDateInit = Timestamp()  # not repeated in the answer: its length is not held against a bank
    channelCode = ChannelCode()
    language = Text(validate=length("language"))
    amount = Money()
    additionalInfo = fields.Dict()


class PaymentRequest(_VirtualAccount):
    paymentRequestId = Text(
        **_required(attribute="reference", validate=length("paymentRequestId", 1)),
        metadata={
            "description": "the `inquiryRequestId` of the inquiry it pays; the same one again is answered with the first payment"
        },
    )
    paidAmount = Money(**_required(attribute="amount"))
    virtualAccountName = Text(validate=length("virtualAccountName"))
    totalAmount = Money()
    trxDateTime = Timestamp(
        attribute="trx_date_time",
        validate=length("trxDateTime"),
        metadata={"description": "repeated in the answer as sent"},
    )
    referenceNo = Text(
        attribute="reference_no",
        validate=length("referenceNo", 1),
        metadata={"description": "your reference of the payment: repeated in the answer as sent"},
    )
    flagAdvise = fields.String(validate=validate.OneOf(["Y", "N"]))
    channelCode = ChannelCode()
    billDetails = fields.List(
        fields.Dict(),
        validate=validate.Length(max=MAX_BILLS),
        metadata={
            "type": "array",
            "items": {"type": "object"},
            "maxItems": MAX_BILLS,
            "description": "ignored: the payment pays every bill of the inquiry",
        },
    )
    additionalInfo = fields.Dict()


class StatusRequest(_VirtualAccount):
    """``inquiryRequestId`` and/or ``paymentRequestId``: either finds the payment made
    under that inquiry (its ``paymentRequestId`` is the ``inquiryRequestId``)."""

    inquiryRequestId = Text(
        attribute="inquiry_reference",
        validate=length("inquiryRequestId", 1),
        metadata={
            "description": "the `inquiryRequestId` of the inquiry the payment paid; needed when `paymentRequestId` is not given (when both are, they must be the same)"
        },
    )
    paymentRequestId = Text(
        attribute="reference",
        validate=length("paymentRequestId", 1),
        metadata={
            "description": "the payment's `paymentRequestId` (optional when `inquiryRequestId` is given)"
        },
    )
    additionalInfo = fields.Dict()

    @validates_schema
    def _one_reference(self, data, **kwargs):
        if "inquiry_reference" not in data and "reference" not in data:
            raise ValidationError(MISSING, "inquiryRequestId")


class TokenRequest(_Request):
    grantType = fields.String(
        **_required(validate=validate.OneOf(["client_credentials"])),
        metadata={"enum": ["client_credentials"]},
    )
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
