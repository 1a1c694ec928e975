"""The OpenAPI 3 document of the partner API (served at ``/openapi.json``).

Built with apispec from the marshmallow schemas the routes load and dump
(``pdam/peti/schemas.py``): request bodies, query parameters and response bodies
are those schemas. What marshmallow cannot say by itself is added here, keyed
by schema and field name: the shape behind a ``fields.Function`` and the wire
type of the custom fields. Operations (paths, parameters, headers, status
codes) are listed in ``operations()``; tests/peti/test_openapi.py checks them
against ``app.url_map`` both ways, validates the document and looks for
fields left without a type, and tests/peti/test_fuzz.py checks real responses
against it.
"""

from __future__ import annotations

import copy
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from marshmallow import Schema, fields, validate

from ..core import ids, states
from ..infra.settings import VERSION
from ..web import request_log
from . import callbacks, schemas
from .states import WIRE

OPENAPI_VERSION = "3.0.3"
CID_PATTERN = ids.ecma(ids.CID)
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
#: A header value as it travels (Latin-1, no control characters: the service refuses those).
HEADER_TEXT = r"[\x20-\x7e\x80-\xff]"
#: schemas.Text: no NUL (lone surrogates cannot be sent as UTF-8 JSON text anyway).
STORABLE_PATTERN = r"^[^\x00]*$"

# -- schemas only the document needs -----------------------------------------------------


class ErrorBody(Schema):
    """Every error, in every route (pdam/web/errors.py ``error_body``)."""

    error = fields.Integer(required=True, metadata={"description": "the HTTP status code", "example": 404})
    message = fields.String(
        required=True,
        metadata={"description": "the status text or a specific message", "example": "Not Found"},
    )
    errors = fields.Dict(
        keys=fields.String(),
        metadata={"description": '400 only: the reasons per field (`{"field": ["reason", ...]}`)'},
    )


class Health(Schema):
    """``GET /health`` (pdam/web/health.py)."""

    status = fields.Constant("ok", required=True)
    database = fields.Constant("ok", required=True)
    version = fields.String(required=True)


class Liveness(Schema):
    status = fields.Constant("ok", required=True)


class CallbackEvent(Schema):
    """The body the job server POSTs to ``X-Async`` (pdam/peti/callbacks.py ``body_for``)."""

    status = fields.String(required=True, validate=validate.OneOf(states.EVENTS))
    code = fields.Integer(required=True, validate=validate.OneOf(sorted({w.code for w in WIRE.values()})))
    message = fields.String(
        required=True, validate=validate.OneOf(sorted({w.callback_message for w in WIRE.values()}))
    )
    data = fields.Nested(schemas.PaymentData(only=callbacks.DATA_FIELDS), required=True)
    meta = fields.Nested(schemas.Meta, required=True)


# -- what marshmallow cannot tell apispec --------------------------------------------------

NULLABLE_INTEGER = {"type": "integer", "nullable": True}
PERIOD_LIST = {"type": "array", "items": {"type": "integer", "example": 202005}}
NULLABLE_PERIOD_LIST = {**PERIOD_LIST, "nullable": True}

HEX32 = {"type": "string", "pattern": ids.ecma(ids.INQ)}

#: Per (schema class, field name), looked up along the schema's classes: the value of each
#: ``fields.Function`` of a dumped schema (a schema, as a $ref, or a JSON schema), and what a
#: plain field's type does not say (patterns, enums).
FIELD_DOCS: dict[tuple[str, str], Any] = {
    ("Charges", "ppn"): schemas.Vat,
    ("Bill", "meter"): schemas.Meter,
    ("Bill", "biaya"): schemas.Charges,
    ("Bill", "periode"): {"pattern": PERIOD_PATTERN},
    ("PaymentAccepted", "data"): schemas.PaymentData,
    ("PaymentAccepted", "meta"): schemas.Meta,
    ("PaymentStatus", "data"): schemas.StatusData,
    ("PaymentStatus", "meta"): schemas.Meta,
    ("PaymentStatus", "status"): {"enum": list(states.EVENTS)},
    ("PaymentStatus", "code"): {
        "enum": sorted({w.code for w in WIRE.values()}),
        "description": "the HTTP status",
    },
    ("PaymentData", "pat"): {"pattern": "^[0-9A-F]{20}$", "description": "the payment's secret handle"},
    ("PaymentData", "pop"): {"pattern": ids.ecma(ids.PARTNER_CODE), "description": "the partner code"},
    ("PaymentData", "inq"): HEX32,
    ("PaymentData", "nob"): {
        "pattern": ids.ecma(ids.NOB),
        "description": "receipt number: partner code, WIB date YYMMDD, the partner's daily sequence",
    },
    ("PaymentData", "pts"): {"type": "integer", "description": "acceptance time, epoch milliseconds"},
    ("StatusData", "rev"): {"type": "integer", "enum": [0, 1], "description": "1 once reversed"},
    ("Meta", "jumlah_masalah"): {**NULLABLE_INTEGER, "description": "jumlah_bayar - jumlah_tagihan"},
    ("Meta", "lembar_tagihan"): NULLABLE_INTEGER,
    ("Meta", "lembar_bayar"): {"type": "integer"},
    ("Meta", "lembar_masalah"): NULLABLE_INTEGER,
    ("Meta", "periode_tagihan"): NULLABLE_PERIOD_LIST,
    ("Meta", "periode_bayar"): PERIOD_LIST,
    ("Meta", "periode_masalah"): NULLABLE_PERIOD_LIST,
}

#: The wire type of the custom input fields.
CUSTOM_FIELDS: dict[type, dict] = {
    schemas.Period: {
        "anyOf": [
            {"type": "integer", "minimum": 100001, "maximum": 999912},
            {"type": "string", "pattern": PERIOD_PATTERN},
        ],
        "description": "a billing month `YYYYMM` (month 01 to 12), as an integer or a digit string",
        "example": 202005,
    },
    schemas.Merchant: {
        "anyOf": [
            {"type": "string", "minLength": 1, "maxLength": 4, "pattern": STORABLE_PATTERN},
            {"type": "integer", "minimum": 0, "maximum": 9999},
        ],
        "description": "merchant name or ID, at most 4 characters (stored as a string)",
        "example": "1234",
    },
    schemas.WibDate: {
        "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "pattern": COMPACT_DATE_PATTERN}],
        "description": "a WIB calendar day, `YYYY-MM-DD` or `YYYYMMDD` (a real date); default yesterday",
        "example": "2020-08-27",
    },
}


def _field_doc(field) -> Any:
    for cls in type(field.parent).__mro__:
        if (cls.__name__, field.name) in FIELD_DOCS:
            return FIELD_DOCS[(cls.__name__, field.name)]
    return None


def _pdam_field(self, field, ret=None, **kwargs) -> dict:
    """apispec attribute function: what ``FIELD_DOCS``/``CUSTOM_FIELDS`` know, and constants."""
    for cls, prop in CUSTOM_FIELDS.items():
        if isinstance(field, cls):
            return copy.deepcopy(prop)
    if isinstance(field, schemas.Text) and "pattern" not in (ret or {}):
        return {"pattern": STORABLE_PATTERN}
    if isinstance(field, schemas.QueryInteger):  # at most 9 digits, unless a Range says less
        return {"maximum": min((ret or {}).get("maximum", 999_999_999), 999_999_999)}
    if isinstance(field, fields.Constant):
        value = field.constant
        return {"type": "integer" if isinstance(value, int) else "string", "enum": [value]}
    prop = _field_doc(field)
    if prop is None:
        return {}  # tests/peti/test_openapi.py fails on any property left without a type
    if isinstance(prop, type) and issubclass(prop, Schema):
        ref = self.resolve_nested_schema(prop)
        return {"allOf": [ref]} if ret else ref  # OpenAPI 3.0 ignores a $ref's siblings
    return copy.deepcopy(prop)


def _schema_name(schema) -> str | None:
    """Components are named after their class; a schema narrowed with ``only`` is inlined."""
    if isinstance(schema, Schema) and (schema.only or schema.exclude):
        return None
    return resolve_schema_cls(schema).__name__


# -- building blocks of operations ------------------------------------------------------

ERROR_TEXT = {
    400: "Missing or ill-formed parameters or body; `errors` names the fields.",
    401: "Missing, malformed, badly signed, expired, not-yet-valid, wrong-issuer or revoked token.",
    403: "The partner is deactivated.",
    404: "Not found.",
    409: "Conflict.",
    410: "Gone.",
    413: "The body is larger than `MAX_CONTENT_LENGTH`.",
    429: "The partner is over `PARTNER_RATE_LIMIT` requests a second: retry after `Retry-After` seconds.",
    503: "The database, the billing ledger or the queue is unreachable: retry (see `Retry-After`).",
}

REQUEST_ID_HEADER = {
    "description": "The request's id: the caller's sane `X-Request-Id` or a new one; "
    "it is in the request's log line.",
    "required": True,
    "schema": {"type": "string", "pattern": ids.ecma(request_log.SANE_ID)},
}

CID = {
    "name": "cid",
    "in": "path",
    "required": True,
    "description": "customer number (nomor sambungan), digits only",
    "schema": {"type": "string", "pattern": CID_PATTERN},
    "example": "010101010101",
}


def _headers(extra: dict | None = None) -> dict:
    return {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}, **(extra or {})}


def error(code: int, description: str | None = None) -> dict:
    headers = {"Retry-After": {"schema": {"type": "string"}}} if code in (429, 503) else None
    return {
        "description": description or ERROR_TEXT[code],
        "headers": _headers(headers),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }


def ok(description: str, schema: Any, headers: dict | None = None, media: str = "application/json") -> dict:
    return {"description": description, "headers": _headers(headers), "content": {media: {"schema": schema}}}


def operation(
    summary: str,
    description: str,
    responses: dict,
    *,
    tag: str,
    public: bool = False,
    parameters: list | None = None,
    **extra,
) -> dict:
    op = {
        "summary": summary,
        "description": description,
        "tags": [tag],
        "parameters": ["X-Request-Id", *(parameters or [])],
        "responses": {str(code): response for code, response in responses.items()},
        **extra,
    }
    if public:
        op["security"] = []
    return op


def auth_errors() -> dict:
    return {401: error(401), 403: error(403), 429: error(429)}


def operations() -> dict[str, dict[str, dict]]:
    """Every route: ``{openapi path: {method: operation}}``."""
    return {
        "/health": {
            "get": operation(
                "Service and database health",
                "Answers 200 when the service and its database answer; no token needed.",
                {200: ok("Healthy.", Health), 503: error(503, "The database does not answer.")},
                tag="health",
                public=True,
            ),
        },
        "/health/live": {
            "get": operation(
                "Liveness",
                "The process answers; no dependency is checked (load balancers).",
                {200: ok("Alive.", Liveness)},
                tag="health",
                public=True,
            ),
        },
        "/tagihan/{cid}": {
            "get": operation(
                "Inquiry: the customer's unpaid bills",
                "The customer and the customer's **unpaid** bills, oldest period first. The answer is "
                "stored for `INQUIRY_TTL_SECONDS` (15 minutes) under the inquiry token sent in "
                "`X-Cross-Site`; the payment is checked against that snapshot. The token is bound to "
                "the partner that made the inquiry.",
                {
                    200: ok(
                        "The customer and unpaid bills.",
                        schemas.InquiryResponse,
                        {
                            "X-Cross-Site": {
                                "description": "the inquiry token (`inq` of the payment)",
                                "required": True,
                                "schema": HEX32,
                            },
                            "X-Message": {
                                "description": "the utility's message to print on the receipt (may be empty)",
                                "required": True,
                                "schema": {"type": "string"},
                            },
                        },
                    ),
                    400: error(400, "`cid` is not digits only."),
                    **auth_errors(),
                    404: error(404, "Customer not found, or no unpaid bill."),
                    503: error(503),
                },
                tag="payments",
                parameters=[CID],
            ),
            "post": operation(
                "Payment",
                "Records the payment against the inquiry and queues it for posting to the billing ledger, "
                "in one transaction; the outcome comes later (webhook, `GET /status`). Checks in order: "
                "body (400; unknown fields are ignored and never set `nob`, `status`, `pop`...), `pid` "
                "already used (idempotent replay with `Idempotent-Replayed: true`, or 409), `inq` known, "
                "alive and this partner's (404), `inq` made for this `cid` with `per` among its periods "
                "and `amo` their sum (410), other duplicates (409). `per` must not repeat a period.",
                {
                    202: ok(
                        "Accepted: recorded and queued (or the replay of the original answer).",
                        schemas.PaymentAccepted,
                        {
                            "X-Advice-Url": {
                                "description": "where to read the outcome: `/status/<cid>?nob=<nob>`",
                                "required": True,
                                "schema": {"type": "string"},
                            },
                            "Idempotent-Replayed": {
                                "description": "`true` when this is the original answer to the same "
                                "request (same partner, `pid` and fields) sent again",
                                "schema": {"type": "string", "enum": ["true"]},
                            },
                        },
                    ),
                    400: error(400, "Body or fields ill-formed, or `X-Async` not an absolute http(s) URL."),
                    **auth_errors(),
                    404: error(404, "The inquiry token is unknown, expired or another partner's."),
                    409: error(
                        409,
                        "`pid` already used for another payment, the inquiry already has a "
                        "payment, or a period is already paid or being paid.",
                    ),
                    410: error(
                        410,
                        "The inquiry was made for another customer, or `per`/`amo` do not match its bills.",
                    ),
                    413: error(413),
                    503: error(
                        503,
                        ERROR_TEXT[503] + " Also when the partner's receipt numbers of the day are used up.",
                    ),
                },
                tag="payments",
                parameters=[
                    CID,
                    {
                        "name": "X-Async",
                        "in": "header",
                        "required": False,
                        "description": "absolute http(s) URL for the payment's webhook callbacks "
                        "(see `callbacks`); empty: no callbacks, as without the header",
                        "schema": {
                            "anyOf": [
                                {"type": "string", "enum": [""]},
                                {
                                    "type": "string",
                                    "format": "uri",
                                    "maxLength": 2048,
                                    "pattern": f"^[Hh][Tt][Tt][Pp][Ss]?://{HEADER_TEXT}+$",
                                },
                            ]
                        },
                    },
                    {
                        "name": "X-Async-Token",
                        "in": "header",
                        "required": False,
                        "description": "sent as the callbacks' `Authorization` header (default: this "
                        "request's own `Authorization`)",
                        # spaces and tabs around the value are not part of it (RFC 9110 5.5)
                        "schema": {"type": "string", "pattern": f"^[\\t ]*{HEADER_TEXT}*[\\t ]*$"},
                    },
                ],
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": schemas.PaymentRequest}},
                },
                callbacks={"paymentEvents": {"{$request.header.X-Async}": {"post": callback_operation()}}},
            ),
            "delete": operation(
                "Reversal",
                "Undoes an `accepted` or `changed` payment of the calling partner: its bills become "
                "unpaid again and `rev` becomes 1. Allowed until 12:00 WIB of the day after the payment "
                "day. Reversing a reversed payment answers the same again.",
                {
                    200: ok(
                        "Reversed: the status body with `status: reversed` and `rev: 1`.",
                        schemas.PaymentStatus,
                    ),
                    400: error(400, "`cid`, `pid` or `pat` missing or ill-formed."),
                    401: error(401),
                    403: error(403, "The partner is deactivated, or the reversal window has closed."),
                    404: error(404, "No such payment of this partner."),
                    409: error(409, "The payment is still in progress, or was rejected."),
                    429: error(429),
                    503: error(503),
                },
                tag="payments",
                parameters=[CID, {"in": "query", "schema": schemas.ReversalQuery}],
            ),
        },
        "/status/{cid}": {
            "get": operation(
                "Payment status",
                "One payment of the calling partner, found by `nob`, or `pid`, or `pid`+`pat`, or "
                "`pid`+`inq` (none of them, or `pat`/`inq` without `pid`: 400). The HTTP status "
                "mirrors the payment's state and equals `code`.",
                {
                    201: ok("`created`: in progress.", schemas.PaymentStatus),
                    202: ok("`accepted`: every bill paid.", schemas.PaymentStatus),
                    206: ok(
                        "`changed`: suspect data (amounts changed, or some periods paid before).",
                        schemas.PaymentStatus,
                    ),
                    409: ok("`rejected`: paid before.", schemas.PaymentStatus),
                    400: error(400, "No `nob` or `pid`, or an ill-formed parameter."),
                    **auth_errors(),
                    404: error(404, "No such payment of this partner."),
                    503: error(503),
                },
                tag="payments",
                parameters=[CID, {"in": "query", "schema": schemas.StatusQuery}],
            ),
        },
        "/audit": {
            "get": operation(
                "Reconciliation report",
                "One row per bill the calling partner's payments paid on a WIB day, paginated. JSON, or "
                "CSV with `format=csv` or `Accept: text/csv` (the same columns; `page`/`limit` apply).",
                {
                    200: {
                        "description": "The day's rows.",
                        "headers": _headers(
                            {
                                "X-Total-Count": {
                                    "description": "CSV only: rows of the day",
                                    "schema": {"type": "string"},
                                },
                                "Content-Disposition": {
                                    "description": "CSV only: the file name",
                                    "schema": {"type": "string"},
                                },
                            }
                        ),
                        "content": {
                            "application/json": {"schema": schemas.AuditResponse},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    400: error(400, "A bad `tgl`, `page`, `limit` or `format`."),
                    **auth_errors(),
                    503: error(503),
                },
                tag="reconciliation",
                parameters=[{"in": "query", "schema": schemas.AuditQuery}],
            ),
        },
        "/openapi.json": {
            "get": operation(
                "This document",
                "The OpenAPI document of this API.",
                {200: ok("The document.", {"type": "object"})},
                tag="docs",
                public=True,
            ),
        },
        "/metrics": {
            "get": operation(
                "Prometheus metrics",
                "The service's series in Prometheus text format (README: Monitoring). Needs "
                "`Authorization: Bearer <METRICS_TOKEN>`; without `METRICS_TOKEN` configured the route "
                "does not exist (404).",
                {
                    200: ok("The series.", {"type": "string"}, media="text/plain"),
                    401: error(401, "Missing or wrong metrics token."),
                    404: error(404, "`METRICS_TOKEN` is not configured."),
                },
                tag="health",
                security=[{"metricsToken": []}],
            ),
        },
        "/docs": {
            "get": operation(
                "Interactive API documentation",
                "Swagger UI, served from this service (no CDN).",
                {200: ok("The page.", {"type": "string"}, media="text/html")},
                tag="docs",
                public=True,
            ),
        },
        "/docs/{filename}": {
            "get": operation(
                "Assets of the documentation page",
                "Swagger UI's scripts and styles.",
                {
                    200: ok("The file.", {"type": "string", "format": "binary"}, media="*/*"),
                    404: error(404, "No such file."),
                },
                tag="docs",
                public=True,
                parameters=[
                    {
                        "name": "filename",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "example": "swagger-ui.css",
                    }
                ],
            ),
        },
    }


def callback_operation() -> dict:
    return {
        "summary": "Payment event callback",
        "description": (
            "Sent by the job server to the payment's `X-Async` URL: `created` (201) when the payment is "
            "recorded, then its final state `accepted` (202), `changed` (206) or `rejected` (409), and "
            "`reversed` (200) after a reversal, in that order per payment. Headers: `Content-Type: "
            f"{callbacks.CONTENT_TYPE}`, `User-Agent: {callbacks.USER_AGENT}`, `Authorization`: the "
            "`X-Async-Token` value if the payment gave one, else the payment request's own "
            "`Authorization`. A 2xx answer means delivered; 3xx/4xx refused (not retried); 5xx, a "
            "timeout or a connection error is retried every `WEBHOOK_RETRY_SECONDS` (10 s) up to a cap."
        ),
        "parameters": [
            {
                "name": "X-Signature",
                "in": "header",
                "required": True,
                "description": '`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` with the '
                "partner's webhook secret (`flask --app wsgi partner secret <code>`)",
                "schema": {"type": "string", "pattern": "^t=[0-9]+,v1=[0-9a-f]{64}$"},
            },
            {
                "name": "X-Event-Id",
                "in": "header",
                "required": True,
                "description": "the event's id: the same on every attempt and resend (drop duplicates)",
                "schema": {"type": "string"},
            },
        ],
        "requestBody": {"required": True, "content": {"application/json": {"schema": CallbackEvent}}},
        "responses": {
            "2XX": {"description": "Delivered."},
            "4XX": {"description": "Refused: not retried."},
            "5XX": {"description": "Failed: retried."},
        },
    }


def build() -> dict:
    """The document as a dict (JSON-ready)."""
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(
        title="PDAM bill-payment API (PeTi partner interface)",
        version=VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={
            "description": (
                "Inquiry, payment, status, reversal and reconciliation of water bills for partner "
                "channels. Every route except `/health*` and the documentation needs "
                "`Authorization: Bearer <JWT>` (ES256 by default, issued by the operator's CLI). Every "
                'error is JSON `{"error": <status>, "message": <text>}` (400s may add `errors`), and '
                "every response carries `X-Request-Id`."
            ),
        },
        security=[{"bearerAuth": []}],
        tags=[
            {"name": "payments", "description": "inquiry, payment, status, reversal"},
            {"name": "reconciliation", "description": "the daily report"},
            {"name": "health", "description": "for load balancers and operators"},
            {"name": "docs", "description": "this documentation"},
        ],
    )
    plugin.converter.add_attribute_function(_pdam_field)
    spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "a partner token from `flask --app wsgi token issue <code>`",
        },
    )
    spec.components.security_scheme(
        "metricsToken",
        {"type": "http", "scheme": "bearer", "description": "the `METRICS_TOKEN` setting (for Prometheus)"},
    )
    spec.components.header("X-Request-Id", REQUEST_ID_HEADER)
    spec.components.parameter(
        "X-Request-Id",
        "header",
        {
            "required": False,
            "description": "your id for this request (1-128 of `A-Za-z0-9._:-`); "
            "anything else is replaced by a new one",
            "schema": {"type": "string"},
        },
    )
    spec.components.schema("ErrorBody", schema=ErrorBody)
    for path, ops in operations().items():
        spec.path(path=path, operations=ops)
    doc = spec.to_dict()
    _require_dumped_fields(doc)
    _periods_of_one_type(doc["components"]["schemas"]["PaymentRequest"]["properties"]["per"])
    _status_query_object(doc["paths"]["/status/{cid}"]["get"])
    _links(doc["paths"])
    return doc


def _periods_of_one_type(per: dict) -> None:
    """``per``: all integers or all digit strings, no period twice (``uniqueItems`` is exact
    then: 202001 and "202001" cannot meet in one list). That an integer's last two digits are
    01-12 is prose (schemathesis_hooks.py keeps the CLI's generated integers to real months)."""
    item = per.pop("items")
    per.pop("type")
    bounds = {k: per.pop(k) for k in ("minItems", "maxItems")}
    per["anyOf"] = [
        {
            "type": "array",
            "items": {**alt, "example": 202005 if alt["type"] == "integer" else "202005"},
            **bounds,
            "uniqueItems": True,
        }
        for alt in item["anyOf"]
    ]
    per["description"] = (
        "the periods paid: billing months `YYYYMM` (month 01 to 12), all integers or all digit "
        "strings, none twice"
    )
    per["example"] = [202005]


def _status_query_object(op: dict) -> None:
    """``GET /status``: ``nob``, or ``pid``, or ``pid`` + ``pat``, or ``pid`` + ``inq`` (extra
    keys narrow the match; ``pat``/``inq`` without ``pid``: 400). OpenAPI 3.0 cannot tie
    separate parameters together, so they are one exploded form object (the same query
    string) whose schema says it."""
    keys = [p for p in op["parameters"] if isinstance(p, dict) and p.get("in") == "query"]
    others = [p for p in op["parameters"] if not (isinstance(p, dict) and p.get("in") == "query")]
    op["parameters"] = [
        *others,
        {
            "name": "query",
            "in": "query",
            "required": True,
            "style": "form",
            "explode": True,
            "description": "`nob`, or `pid`, or `pid` + `pat`, or `pid` + `inq` (as separate query "
            "parameters: `?nob=...`, `?pid=...&pat=...`)",
            "schema": {
                "type": "object",
                "properties": {p["name"]: p["schema"] for p in keys},
                "anyOf": [
                    {"required": ["pid"]},
                    {"required": ["nob"], "not": {"anyOf": [{"required": ["pat"]}, {"required": ["inq"]}]}},
                ],
            },
            "example": {"nob": "000200827001"},
        },
    ]


def _links(paths: dict) -> None:
    """OpenAPI links: inquiry -> payment -> status -> reversal (Schemathesis' stateful phase
    walks them; Swagger UI shows them)."""
    tagihan, status = paths["/tagihan/{cid}"], paths["/status/{cid}"]["get"]
    tagihan["get"]["responses"]["200"]["links"] = {
        "pay": {
            "operationRef": "#/paths/~1tagihan~1{cid}/post",
            "description": "Pay the oldest bill of this inquiry.",
            "parameters": {"path.cid": "$request.path.cid"},
            "requestBody": {
                "inq": "$response.header.X-Cross-Site",
                "per": ["$response.body#/tagihan/0/periode"],
                "amo": "$response.body#/tagihan/0/biaya/jumlah",
            },
        }
    }
    tagihan["post"]["responses"]["202"]["links"] = {
        "status": {
            "operationRef": "#/paths/~1status~1{cid}/get",
            "description": "The payment's status, by `nob`.",
            "parameters": {"path.cid": "$response.body#/data/cid", "query.nob": "$response.body#/data/nob"},
        },
        "reverse": {
            "operationRef": "#/paths/~1tagihan~1{cid}/delete",
            "description": "Reverse the payment (409 while it is still `created`).",
            "parameters": {
                "path.cid": "$response.body#/data/cid",
                "query.pid": "$response.body#/data/pid",
                "query.pat": "$response.body#/data/pat",
            },
        },
    }
    reverse = tagihan["post"]["responses"]["202"]["links"]["reverse"]
    for code in ("201", "202", "206", "409"):
        status["responses"][code]["links"] = {"reverse": reverse}


#: Component schemas that are loaded (input) or have optional fields; every other one is a
#: dumped response shape whose fields are always present.
NOT_ALL_REQUIRED = {"PaymentRequest", "ErrorBody"}


def _require_dumped_fields(doc: dict) -> None:
    """A dumped schema always writes every field: say so, so responses are checked fully."""
    for name, schema in doc["components"]["schemas"].items():
        if name not in NOT_ALL_REQUIRED and schema.get("properties"):
            schema["required"] = list(schema["properties"])
