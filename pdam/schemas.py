"""Marshmallow schemas: request and response shapes at the edge.

Field names on the wire are PeTi's (Indonesian, three-letter payment fields);
the domain speaks English. Unknown input fields are ignored and can never set
a server-side value.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates, validates_schema

from . import errors

PERIOD_RE = re.compile(r"^[0-9]{4}(0[1-9]|1[0-2])$")
CID_RE = re.compile(r"^[0-9]{1,20}$")


class StrictInteger(fields.Integer):
    """An integer that is really an integer on the wire: no bool, float or string."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _validated(self, value):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class Period(fields.Field):
    """``YYYYMM`` as an integer or a digit string; loaded as the string."""

    default_error_messages = {"invalid": "Not a valid period (YYYYMM)."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.make_error("invalid")
        text = str(value)
        if not PERIOD_RE.match(text):
            raise self.make_error("invalid")
        return text


class Merchant(fields.Field):
    """Merchant name or ID: a string or a non-negative integer, at most 4 characters."""

    default_error_messages = {"invalid": "Must be a string or a number of 1 to 4 characters."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.make_error("invalid")
        if isinstance(value, int) and value < 0:
            raise self.make_error("invalid")
        text = str(value)
        if not 1 <= len(text) <= 4:
            raise self.make_error("invalid")
        return text


class PaymentRequest(Schema):
    class Meta:
        unknown = EXCLUDE

    inq = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{32}$"))
    amo = StrictInteger(required=True, validate=validate.Range(min=0, max=10**15))
    per = fields.List(Period(), required=True, validate=validate.Length(min=1, max=120))
    mer = Merchant(required=True)
    pid = fields.String(required=True, validate=validate.Length(min=1, max=50))

    @validates("per")
    def _unique(self, value, **kwargs):
        if len(set(value)) != len(value):
            raise ValidationError("Periods must not repeat.")


def load(schema: Schema, data: Any) -> dict:
    """Validate ``data``; a ValidationError becomes the contract's 400 with ``errors``."""
    if not isinstance(data, dict):
        raise errors.BadRequest("the body must be a JSON object")
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise errors.BadRequest("invalid request", errors=exc.messages) from None


def check_cid(cid: str) -> str:
    if not CID_RE.match(cid):
        raise errors.BadRequest("cid must be digits only", errors={"cid": ["Digits only, 1 to 20."]})
    return cid


class StatusQuery(Schema):
    """``nob``, or ``pid``, or ``pid`` + ``pat``, or ``pid`` + ``inq``."""

    class Meta:
        unknown = EXCLUDE

    nob = fields.String(validate=validate.Regexp(r"^[0-9]{12}$"))
    pid = fields.String(validate=validate.Length(min=1, max=50))
    pat = fields.String(validate=validate.Regexp(r"^[0-9A-Fa-f]{20}$"))
    inq = fields.String(validate=validate.Regexp(r"^[0-9a-f]{32}$"))

    @validates_schema
    def _one_key(self, data, **kwargs):
        if not data.get("nob") and not data.get("pid"):
            raise ValidationError("Give nob, or pid (optionally with pat or inq).", "nob")
        if (data.get("pat") or data.get("inq")) and not data.get("pid"):
            raise ValidationError("pat and inq go with pid.", "pid")


# -- responses ------------------------------------------------------------------


class Customer(Schema):
    id = fields.String()
    nama = fields.String(attribute="name")
    alamat = fields.String(attribute="address")
    golongan = fields.String(attribute="tariff")


class Meter(Schema):
    awal = fields.Integer(attribute="meter_start")
    akhir = fields.Integer(attribute="meter_end")
    pakai = fields.Integer(attribute="usage")


class Vat(Schema):
    administrasi = fields.Integer(attribute="admin_vat")


class Charges(Schema):
    air = fields.Integer(attribute="water")
    administrasi = fields.Integer(attribute="admin_fee")
    ppn = fields.Function(lambda bill: Vat().dump(bill))
    denda = fields.Integer(attribute="late_fee")
    angsuran = fields.Integer(attribute="installment")
    jumlah = fields.Integer(attribute="total")


class Bill(Schema):
    id = fields.String(attribute="bill_no")
    periode = fields.String(attribute="period")
    meter = fields.Function(lambda bill: Meter().dump(bill))
    biaya = fields.Function(lambda bill: Charges().dump(bill))


class InquiryResponse(Schema):
    pelanggan = fields.Nested(Customer, attribute="customer")
    tagihan = fields.List(fields.Nested(Bill), attribute="bills")


def _periods(values):
    return None if values is None else [int(p) for p in values]


class PaymentData(Schema):
    cid = fields.String(attribute="customer_id")
    pid = fields.String()
    pat = fields.String()
    pop = fields.String(attribute="partner_code")
    mer = fields.String(attribute="merchant")
    inq = fields.String(attribute="inquiry_token")
    pts = fields.Integer()
    nob = fields.String()


class StatusData(PaymentData):
    rev = fields.Function(lambda p: 1 if p["reversed_at"] else 0)

    class Meta:
        ordered = True
        fields = ("cid", "pid", "pat", "pop", "mer", "inq", "pts", "rev", "nob")


class Meta(Schema):
    jumlah_tagihan = fields.Integer(attribute="paid_total", allow_none=True)
    jumlah_bayar = fields.Integer(attribute="amount")
    jumlah_masalah = fields.Function(
        lambda p: None if p["paid_total"] is None else p["amount"] - p["paid_total"]
    )
    lembar_tagihan = fields.Function(lambda p: None if p["paid_periods"] is None else len(p["paid_periods"]))
    lembar_bayar = fields.Function(lambda p: len(p["periods"]))
    lembar_masalah = fields.Function(
        lambda p: None if p["paid_periods"] is None else len(p["problem_periods"] or [])
    )
    periode_tagihan = fields.Function(lambda p: _periods(p["paid_periods"]))
    periode_bayar = fields.Function(lambda p: _periods(p["periods"]))
    periode_masalah = fields.Function(lambda p: _periods(p["problem_periods"] or None))


class PaymentAccepted(Schema):
    """The 202 answer to POST /tagihan (also replayed to an idempotent retry)."""

    status = fields.Constant("accepted")
    message = fields.String()
    data = fields.Function(lambda p: PaymentData().dump(p))
    meta = fields.Function(lambda p: Meta().dump({**p, "paid_total": None, "paid_periods": None, "problem_periods": None}))


class PaymentStatus(Schema):
    """GET /status (and webhook bodies): the payment's state with the full meta."""

    status = fields.String()
    code = fields.Integer()
    message = fields.String()
    data = fields.Function(lambda p: StatusData().dump(p))
    meta = fields.Function(lambda p: Meta().dump(p))
