"""Marshmallow schemas: request and response shapes at the edge.

Field names on the wire are PeTi's (Indonesian, three-letter payment fields);
the domain speaks English. Unknown input fields are ignored and can never set
a server-side value.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates, validates_schema

from ..core import errors, ids, states
from ..web import bodies
from ..web.fields import UNSTORABLE, Text
from .states import WIRE

PERIOD_PATTERN = ids.ecma(ids.PERIOD)
#: ``YYYYMMDD`` that is a real calendar day (years 0001-9999, Gregorian leap years), as a
#: regular expression so that generators draw only real days.
_MMDD = (
    "(?:(?:0[13578]|1[02])(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)(?:0[1-9]|[12][0-9]|30)"
    "|02(?:0[1-9]|1[0-9]|2[0-8]))"
)
_LEAP_YEAR = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
COMPACT_DATE_PATTERN = f"^(?:(?:(?!0000)[0-9]{{4}}){_MMDD}|{_LEAP_YEAR}0229)$"


class Pattern(validate.Regexp):
    """One of ``core.ids``' patterns, matched whole (``fullmatch``: a trailing newline is
    refused); the document shows it anchored."""

    def __init__(self, pattern: re.Pattern, **kwargs):
        super().__init__(ids.ecma(pattern), **kwargs)
        self.whole = pattern

    def __call__(self, value):
        if not ids.matches(self.whole, value):
            raise ValidationError(self._format_error(value))
        return value


class StrictInteger(fields.Integer):
    """An integer that is really an integer on the wire: no bool, float or string."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _validated(self, value):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class Pat(fields.String):
    """A payment's ``pat``: 20 hex characters in either case, loaded in the uppercase it was
    issued in (hex is case-insensitive, so a lowercased copy finds the same payment)."""

    def __init__(self, **kwargs):
        super().__init__(validate=Pattern(ids.PAT), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).upper()


class Period(fields.Field):
    """``YYYYMM`` as an integer or a digit string; loaded as the string."""

    default_error_messages = {"invalid": "Not a valid period (YYYYMM)."}
    OPENAPI = {
        "anyOf": [
            {"type": "integer", "minimum": 100001, "maximum": 999912},
            {"type": "string", "pattern": PERIOD_PATTERN},
        ],
        "description": "a billing month `YYYYMM` (month 01 to 12), as an integer or a digit string",
        "example": 202005,
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.make_error("invalid")
        text = str(value)
        if not ids.matches(ids.PERIOD, text):
            raise self.make_error("invalid")
        return text


class Merchant(fields.Field):
    """Merchant name or ID: a string or a non-negative integer, at most 4 characters."""

    default_error_messages = {"invalid": "Must be a string or a number of 1 to 4 characters."}
    OPENAPI = {
        "anyOf": [
            {"type": "string", "minLength": 1, "maxLength": 4, "pattern": Text.OPENAPI_PATTERN},
            {"type": "integer", "minimum": 0, "maximum": 9999},
        ],
        "description": "merchant name or ID, at most 4 characters (stored as a string)",
        "example": "1234",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.make_error("invalid")
        if isinstance(value, int) and value < 0:
            raise self.make_error("invalid")
        text = str(value)
        if not 1 <= len(text) <= 4 or UNSTORABLE.search(text):
            raise self.make_error("invalid")
        return text


class PaymentRequest(Schema):
    class Meta:
        unknown = EXCLUDE

    inq = fields.String(required=True, validate=Pattern(ids.INQ))
    amo = StrictInteger(required=True, validate=validate.Range(min=0, max=10**15))
    per = fields.List(Period(), required=True, validate=validate.Length(min=1, max=120))
    mer = Merchant(required=True)
    pid = Text(required=True, validate=validate.Length(min=1, max=50))

    @validates("per")
    def _unique(self, value, **kwargs):
        if len(set(value)) != len(value):
            raise ValidationError("Periods must not repeat.")

    @validates_schema(pass_original=True)
    def _one_type(self, data, original, **kwargs):
        """All numbers or all digit strings: so "no period twice" is JSON Schema's uniqueItems
        (202001 and "202001" in one list would be two items to it, one period to us)."""
        per = original.get("per") if isinstance(original, dict) else None
        if isinstance(per, list) and len({type(p) for p in per}) > 1:
            raise ValidationError("Periods must be all numbers or all digit strings.", "per")


def json_body(request) -> Any:
    """The request's JSON body; None (answered 400 by ``load``) when it is not JSON
    (``web.bodies.json``: over MAX_CONTENT_LENGTH, streamed or not, 413)."""
    return bodies.json(request)


def load(schema: Schema, data: Any) -> dict:
    """Validate ``data``; a ValidationError becomes the contract's 400 with ``errors``."""
    if not isinstance(data, dict):
        raise errors.Invalid("the body must be a JSON object")
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise errors.Invalid("invalid request", errors=exc.messages) from None


def check_cid(cid: str) -> str:
    if not ids.matches(ids.CID, cid):
        raise errors.Invalid("cid must be digits only", errors={"cid": ["Digits only, 1 to 20."]})
    return cid


class StatusQuery(Schema):
    """``nob``, or ``pid``, or ``pid`` + ``pat``, or ``pid`` + ``inq``."""

    class Meta:
        unknown = EXCLUDE

    nob = fields.String(validate=Pattern(ids.NOB))
    pid = Text(validate=validate.Length(min=1, max=50))
    pat = Pat()
    inq = fields.String(validate=Pattern(ids.INQ))

    @validates_schema
    def _one_key(self, data, **kwargs):
        if not data.get("nob") and not data.get("pid"):
            raise ValidationError("Give nob, or pid (optionally with pat or inq).", "nob")
        if (data.get("pat") or data.get("inq")) and not data.get("pid"):
            raise ValidationError("pat and inq go with pid.", "pid")


# -- responses ------------------------------------------------------------------

_INSTANCES: dict[type, Schema] = {}


def _dump(schema_class: type[Schema], obj) -> dict:
    """Dump with one shared instance per schema class: building a schema costs more than
    dumping with it, and a nested part is dumped for every bill and every answer."""
    schema = _INSTANCES.get(schema_class)
    if schema is None:
        schema = _INSTANCES[schema_class] = schema_class()
    return schema.dump(obj)


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
    ppn = fields.Function(lambda bill: _dump(Vat, bill), metadata={"schema": Vat})
    denda = fields.Integer(attribute="late_fee")
    angsuran = fields.Integer(attribute="installment")
    jumlah = fields.Integer(attribute="total")


class Bill(Schema):
    id = fields.String(attribute="bill_no")
    periode = fields.String(attribute="period", metadata={"pattern": PERIOD_PATTERN})
    meter = fields.Function(lambda bill: _dump(Meter, bill), metadata={"schema": Meter})
    biaya = fields.Function(lambda bill: _dump(Charges, bill), metadata={"schema": Charges})


class InquiryResponse(Schema):
    pelanggan = fields.Nested(Customer, attribute="customer")
    tagihan = fields.List(fields.Nested(Bill), attribute="bills")


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def epoch_ms(when: dt.datetime) -> int:
    """``pts``: milliseconds since the epoch, rounded down (exact, no float)."""
    return (when - EPOCH) // dt.timedelta(milliseconds=1)


def _periods(values):
    return None if values is None else [int(p) for p in values]


class PaymentData(Schema):
    cid = fields.String(attribute="customer_id")
    pid = fields.String()
    pat = fields.String(metadata={"pattern": "^[0-9A-F]{20}$", "description": "the payment's secret handle"})
    pop = fields.String(
        attribute="partner_code",
        metadata={"pattern": ids.ecma(ids.PARTNER_CODE), "description": "the partner code"},
    )
    mer = fields.String(attribute="merchant")
    inq = fields.String(attribute="inquiry_token", metadata={"type": "string", "pattern": ids.ecma(ids.INQ)})
    pts = fields.Function(
        lambda p: epoch_ms(p.accepted_at),
        metadata={"type": "integer", "description": "acceptance time, epoch milliseconds"},
    )
    nob = fields.String(
        metadata={
            "pattern": ids.ecma(ids.NOB),
            "description": "receipt number: partner code, WIB date YYMMDD, the partner's daily sequence",
        }
    )


class StatusData(PaymentData):
    rev = fields.Function(
        lambda p: 1 if p.reversed_at else 0,
        metadata={"type": "integer", "enum": [0, 1], "description": "1 once reversed"},
    )

    class Meta:
        ordered = True
        fields = ("cid", "pid", "pat", "pop", "mer", "inq", "pts", "rev", "nob")


NULLABLE_INTEGER = {"type": "integer", "nullable": True}
PERIODS = {"type": "array", "items": {"type": "integer", "example": 202005}}
NULLABLE_PERIODS = {**PERIODS, "nullable": True}


class Meta(Schema):
    jumlah_tagihan = fields.Integer(attribute="paid_total", allow_none=True)
    jumlah_bayar = fields.Integer(attribute="amount")
    jumlah_masalah = fields.Function(
        lambda p: None if p.paid_total is None else p.amount - p.paid_total,
        metadata={**NULLABLE_INTEGER, "description": "jumlah_bayar - jumlah_tagihan"},
    )
    lembar_tagihan = fields.Function(
        lambda p: None if p.paid_periods is None else len(p.paid_periods), metadata=NULLABLE_INTEGER
    )
    lembar_bayar = fields.Function(lambda p: len(p.periods), metadata={"type": "integer"})
    lembar_masalah = fields.Function(
        lambda p: None if p.paid_periods is None else len(p.problem_periods or []),
        metadata=NULLABLE_INTEGER,
    )
    periode_tagihan = fields.Function(lambda p: _periods(p.paid_periods), metadata=NULLABLE_PERIODS)
    periode_bayar = fields.Function(lambda p: _periods(p.periods), metadata=PERIODS)
    periode_masalah = fields.Function(
        lambda p: _periods(p.problem_periods or None), metadata=NULLABLE_PERIODS
    )


class Seen:
    """A record seen with some attributes added or replaced (the answer's ``status``,
    ``code``, ``message``; the accepted answer's meta before posting)."""

    def __init__(self, record, **attributes):
        self._record = record
        self.__dict__.update(attributes)

    def __getattr__(self, name):
        return getattr(self._record, name)


class PaymentAccepted(Schema):
    """The 202 answer to POST /tagihan (also replayed to an idempotent retry)."""

    status = fields.Constant("accepted")
    message = fields.String()
    data = fields.Function(lambda p: _dump(PaymentData, p), metadata={"schema": PaymentData})
    meta = fields.Function(
        lambda p: _dump(Meta, Seen(p, paid_total=None, paid_periods=None, problem_periods=None)),
        metadata={"schema": Meta},
    )


class PaymentStatus(Schema):
    """GET /status (and webhook bodies): the payment's state with the full meta."""

    status = fields.String(metadata={"enum": list(states.EVENTS)})
    code = fields.Integer(
        metadata={"enum": sorted({w.code for w in WIRE.values()}), "description": "the HTTP status"}
    )
    message = fields.String()
    data = fields.Function(lambda p: _dump(StatusData, p), metadata={"schema": StatusData})
    meta = fields.Function(lambda p: _dump(Meta, p), metadata={"schema": Meta})


# -- reversal and reconciliation ---------------------------------------------------


class ReversalQuery(Schema):
    """``DELETE /tagihan/<cid>?pid=&pat=``: both required."""

    class Meta:
        unknown = EXCLUDE

    pid = Text(required=True, validate=validate.Length(min=1, max=50))
    pat = Pat(required=True)


class WibDate(fields.Field):
    """A WIB calendar day as ``YYYY-MM-DD`` or ``YYYYMMDD``; loaded as a ``date``."""

    default_error_messages = {"invalid": "Not a valid date (YYYY-MM-DD or YYYYMMDD)."}
    OPENAPI = {
        "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "pattern": COMPACT_DATE_PATTERN}],
        "description": "a WIB calendar day, `YYYY-MM-DD` or `YYYYMMDD` (a real date); default yesterday",
        "example": "2020-08-27",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{8}", value):
            raise self.make_error("invalid")
        digits = value.replace("-", "")
        try:
            return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        except ValueError:
            raise self.make_error("invalid") from None


class QueryInteger(fields.Integer):
    """A query-string integer: ASCII digits only (no sign, no spaces, no decimals): at most
    9 digits, so the document's ``maximum`` is 999999999 unless a ``Range`` says less."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        ranges = [v.max for v in self.validators if isinstance(v, validate.Range) and v.max is not None]
        self.metadata.setdefault("maximum", min([999_999_999, *ranges]))

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,9}", value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


AUDIT_MAX_LIMIT = 1000


class AuditQuery(Schema):
    """``GET /audit``: ``tgl`` (default yesterday WIB), ``page`` >= 1, ``limit`` 0 (all)..1000."""

    class Meta:
        unknown = EXCLUDE

    tgl = WibDate(load_default=None)
    page = QueryInteger(load_default=1, validate=validate.Range(min=1))
    limit = QueryInteger(load_default=10, validate=validate.Range(min=0, max=AUDIT_MAX_LIMIT))
    format = fields.String(load_default=None, validate=validate.OneOf(["json", "csv"]))


class AuditRow(Schema):
    """One reconciliation row: a bill paid on that day (the ``reconciliation`` view's columns,
    from the core's ``ReconciliationLine``)."""

    class Meta:
        ordered = True

    no = fields.Integer(attribute="line_no")
    id = fields.String(attribute="bill_no")
    nob = fields.String()
    nopel = fields.String(attribute="customer_id")
    periode = fields.String(attribute="period")
    rid = fields.Integer(attribute="bill_id")
    pid = fields.String()
    mer = fields.String(attribute="merchant")
    rev = fields.Integer(attribute="reversed")
    air = fields.Integer(attribute="water")
    administrasi = fields.Integer(attribute="admin_fee")
    administrasi_angsuran = fields.Integer(attribute="admin_installment")
    ppn_administrasi = fields.Integer(attribute="admin_vat")
    denda = fields.Integer(attribute="late_fee")
    angsuran = fields.Integer(attribute="installment")
    materai = fields.Integer(attribute="stamp_duty")
    registrasi = fields.Integer(attribute="registration")
    biaya_pemasangan = fields.Integer(attribute="installation_fee")
    ppn_pemasangan = fields.Integer(attribute="installation_vat")
    biaya_jarak = fields.Integer(attribute="distance_fee")


class AuditMeta(Schema):
    class Meta:
        ordered = True

    page = fields.Integer()
    limit = fields.Integer()
    total = fields.Integer()
    tanggal = fields.Date()


class AuditResponse(Schema):
    class Meta:
        ordered = True

    status = fields.Constant("success")
    meta = fields.Nested(AuditMeta)
    data = fields.List(fields.Nested(AuditRow))
