"""The SNAP part of ``/openapi.json``: the four ``/snap/v1.0/`` routes, their schemas,
the ``snap`` tag and the ``snapAccessToken`` security scheme.

Built with apispec from the marshmallow schemas the routes load and dump
(``pdam/snap/schemas.py``), like the PeTi part; ``add_to`` merges it into the
service's document (the composition root, ``pdam.create_app``, joins the two).
Components are named ``Snap...``. Every error response lists the exact
``responseCode`` values the route answers with that HTTP status.
"""

from __future__ import annotations

import copy
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from marshmallow import EXCLUDE, Schema, fields

from ..core import ids
from ..infra.settings import VERSION
from . import auth, codes, schemas, signatures

TAG = {
    "name": "snap",
    "description": "Banks' virtual accounts over SNAP (Bank Indonesia's national open API, ASPI "
    '"Standar Teknis dan Keamanan" v1.0.2): access token (service 73), VA inquiry (24), payment '
    '(25) and status (26). camelCase bodies, amounts as `{"value": "177600.00", "currency": '
    '"IDR"}`, and a `responseCode` in every body whose first three digits are the HTTP status.',
}
SECURITY_SCHEME = "snapAccessToken"
PREFIX = "Snap"
#: ``Text`` fields: no NUL (lone surrogates cannot be sent as UTF-8 JSON text anyway).
STORABLE_PATTERN = r"^[^\x00]*$"
TIMESTAMP_PATTERN = "^" + signatures.TIMESTAMP.pattern + "$"
AMOUNT_PATTERN = "^" + schemas.AMOUNT_VALUE.pattern + "$"


class Money(Schema):
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


class Error(Schema):
    """Every SNAP error (pdam/snap/views.py ``error_body``)."""

    responseCode = fields.String(
        required=True, metadata={"pattern": "^[0-9]{7}$", "description": "HTTP status + service + case"}
    )
    responseMessage = fields.String(required=True)
    virtualAccountData = fields.Dict(
        metadata={
            "description": "VA services, when the body could be read: `inquiryStatus`/`paymentFlagStatus` "
            '`"01"`, the reason in English and Indonesian, and the VA fields of the request as given'
        }
    )


REASON_REF = {"$ref": f"#/components/schemas/{PREFIX}Reason"}
BILL_DESCRIPTION_REF = {"$ref": f"#/components/schemas/{PREFIX}BillDescription"}
MONEY_REF = {"$ref": f"#/components/schemas/{PREFIX}Money"}
BILLS = {
    "type": "array",
    "items": {
        "allOf": [{"$ref": f"#/components/schemas/{PREFIX}BillDetail"}, {"required": ["billerReferenceId"]}],
        "description": "with `billerReferenceId`, the receipt number (nob)",
    },
}
UNPAID_BILLS = {
    "type": "array",
    "items": {
        "allOf": [{"$ref": f"#/components/schemas/{PREFIX}BillDetail"}],
        "description": "without `billerReferenceId` (not paid yet)",
    },
}
FLAG = {"type": "string", "enum": ["00", "01"]}
BANK_VALUE = {
    "type": "string",
    "description": "your `{}` of the payment request that recorded the payment, as sent (absent when you "
    "sent none)",
}

#: Per (schema class, field name): what a ``fields.Function`` dumps, or what a plain field's
#: type does not say.
FIELD_DOCS: dict[tuple[str, str], Any] = {
    ("BillDetail", "billCode"): {"type": "string", "pattern": "^[0-9]{2}$", "description": '"01", "02"...'},
    ("BillDetail", "billNo"): {"type": "string", "description": "the bill id (absent when longer than 18)"},
    ("BillDetail", "billName"): {"type": "string"},
    ("BillDetail", "billShortName"): {"pattern": ids.ecma(ids.PERIOD), "description": "the period `YYYYMM`"},
    ("BillDetail", "billDescription"): BILL_DESCRIPTION_REF,
    ("BillDetail", "billerReferenceId"): {
        "pattern": ids.ecma(ids.NOB),
        "description": "the receipt number (nob)",
    },
    ("InquiryData", "billDetails"): {
        **UNPAID_BILLS,
        "maxItems": schemas.MAX_BILLS,
        "description": f"the oldest unpaid bills, at most {schemas.MAX_BILLS}: the inquiry (and so the "
        "payment) covers exactly these; the rest are offered by a later inquiry",
    },
    ("InquiryData", "virtualAccountName"): {"type": "string", "description": "the customer's name"},
    ("InquiryData", "inquiryReason"): REASON_REF,
    ("InquiryData", "additionalInfo"): {
        "type": "object",
        "required": ["customerAddress", "customerTariff"],
        "properties": {"customerAddress": {"type": "string"}, "customerTariff": {"type": "string"}},
    },
    ("PaymentData", "paymentFlagStatus"): {**FLAG, "enum": ["00"], "description": '"00": recorded'},
    ("PaymentData", "paymentFlagReason"): REASON_REF,
    ("PaymentData", "trxDateTime"): {
        **BANK_VALUE,
        "description": BANK_VALUE["description"].format("trxDateTime"),
    },
    ("PaymentData", "referenceNo"): {
        **BANK_VALUE,
        "description": BANK_VALUE["description"].format("referenceNo"),
    },
    ("PaymentData", "billDetails"): {**BILLS, "maxItems": schemas.MAX_BILLS},
    ("PaymentData", "virtualAccountName"): {"type": "string", "description": "the customer's name"},
    ("PaymentData", "additionalInfo"): {
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
    ("StatusData", "paymentFlagStatus"): {
        **FLAG,
        "description": '"00" recorded and standing; "01" rejected (paid before) or reversed',
    },
    ("StatusData", "paymentFlagReason"): REASON_REF,
    ("StatusData", "trxDateTime"): {
        **BANK_VALUE,
        "description": BANK_VALUE["description"].format("trxDateTime"),
    },
    ("StatusData", "referenceNo"): {
        **BANK_VALUE,
        "description": BANK_VALUE["description"].format("referenceNo"),
    },
    ("StatusData", "billDetails"): {**BILLS, "maxItems": schemas.MAX_BILLS},
    ("StatusData", "virtualAccountName"): {"type": "string", "description": "the customer's name"},
    ("StatusData", "inquiryRequestId"): {
        "type": "string",
        "description": "the inquiry the payment paid (its `paymentRequestId` is this id)",
    },
    ("StatusData", "additionalInfo"): {
        "type": "object",
        "required": ["nob", "status", "rev"],
        "properties": {
            "nob": {"type": "string", "pattern": ids.ecma(ids.NOB)},
            "status": {"type": "string", "enum": ["created", "accepted", "changed", "rejected"]},
            "rev": {"type": "integer", "enum": [0, 1]},
        },
    },
    ("_VirtualAccount", "customerNo"): {
        "pattern": ids.ecma(ids.CID),
        "description": "the customer number (cid)",
    },
    ("_VirtualAccount", "virtualAccountNo"): {
        "description": "`partnerServiceId` + `customerNo` (the company code left-padded with spaces to 8, "
        "or not padded; trailing spaces up to 28 characters are ignored); answers repeat it as sent"
    },
    ("InquiryRequest", "inquiryRequestId"): {
        "description": "your id of this inquiry; the payment sends it as `paymentRequestId`"
    },
    ("PaymentRequest", "paymentRequestId"): {
        "description": "the `inquiryRequestId` of the inquiry it pays; "
        "the same one again is answered with the first payment"
    },
    ("PaymentRequest", "billDetails"): {
        "type": "array",
        "items": {"type": "object"},
        "maxItems": schemas.MAX_BILLS,
        "description": "ignored: the payment pays every bill of the inquiry",
    },
    ("StatusRequest", "paymentRequestId"): {
        "description": "the payment's `paymentRequestId` (optional when `inquiryRequestId` is given)"
    },
    ("StatusRequest", "inquiryRequestId"): {
        "description": "the `inquiryRequestId` of the inquiry the payment paid; needed when "
        "`paymentRequestId` is not given (when both are, they must be the same)"
    },
    ("PaymentRequest", "trxDateTime"): {"description": "repeated in the answer as sent"},
    ("PaymentRequest", "referenceNo"): {
        "description": "your reference of the payment: repeated in the answer as sent"
    },
    ("TokenRequest", "grantType"): {"enum": ["client_credentials"]},
    ("TokenResponse", "expiresIn"): {"pattern": "^[0-9]+$", "description": "seconds, as a string"},
}

#: The wire form of the custom fields.
CUSTOM_FIELDS: dict[type, dict] = {
    schemas.ServiceId: {
        "type": "string",
        "minLength": 8,
        "maxLength": 8,
        "pattern": "^ {0,7}[0-9A-Za-z]{1,8}$",
        "description": "our company code at your bank, left-padded with spaces to 8 characters",
        "example": "   12345",
    },
    schemas.Timestamp: {
        "type": "string",
        "pattern": TIMESTAMP_PATTERN,
        "example": "2026-11-30T09:15:00+07:00",
    },
    schemas.ChannelCode: {
        "anyOf": [
            {"type": "integer", "minimum": 0, "maximum": 9999},
            {"type": "string", "pattern": "^[0-9]{1,4}$"},
        ],
        "description": "the channel's category code (e.g. 6011 ATM, 6014 internet banking, 6017 mobile "
        "banking); recorded as the payment's merchant",
        "example": 6017,
    },
}


def _field_doc(field) -> Any:
    for cls in type(field.parent).__mro__:
        if (cls.__name__, field.name) in FIELD_DOCS:
            return FIELD_DOCS[(cls.__name__, field.name)]
    return None


def _snap_field(self, field, ret=None, **kwargs) -> dict:
    """apispec attribute function: Money as a $ref, the custom fields, constants, FIELD_DOCS."""

    def ref(value: dict) -> dict:
        return {"allOf": [dict(value)]} if ret else dict(value)  # OpenAPI 3.0 ignores a $ref's siblings

    out: dict = {}
    if isinstance(field, schemas.Money):
        return ref(MONEY_REF)
    for cls, prop in CUSTOM_FIELDS.items():
        if isinstance(field, cls):
            return copy.deepcopy(prop)
    if isinstance(field, schemas.Text):
        out["pattern"] = (ret or {}).get("pattern") or STORABLE_PATTERN
        if field.required:
            out["minLength"] = max(1, (ret or {}).get("minLength", 1))
    if isinstance(field, fields.Constant):
        value = field.constant
        if isinstance(value, dict):
            return ref(REASON_REF)
        return {"type": "string", "enum": [value]}
    prop = _field_doc(field)
    if prop is not None:
        if "$ref" in prop:
            return ref(prop)
        out.update(copy.deepcopy(prop))
    return out


def _schema_name(schema) -> str | None:
    if isinstance(schema, Schema) and (schema.only or schema.exclude):
        return None
    name = resolve_schema_cls(schema).__name__.lstrip("_")
    return name if name.startswith(PREFIX) else PREFIX + name


# -- operations --------------------------------------------------------------------------------


def _header(name: str, description: str, schema: dict) -> dict:
    return {"name": name, "in": "header", "required": True, "description": description, "schema": schema}


X_TIMESTAMP = _header(
    "X-TIMESTAMP",
    "ISO-8601 with an offset (milliseconds allowed), within `SNAP_TIMESTAMP_SKEW_SECONDS` (300) of our clock",
    {"type": "string", "pattern": TIMESTAMP_PATTERN, "example": "2026-11-30T09:15:00+07:00"},
)
TOKEN_HEADERS = [
    X_TIMESTAMP,
    _header(
        "X-CLIENT-KEY",
        "your client id (from `flask --app wsgi snap register`)",
        {"type": "string", "pattern": r"^[\x21-\x7e]+$"},
    ),
    _header(
        "X-SIGNATURE",
        "SHA256withRSA (PKCS#1 v1.5) by your private key over `<X-CLIENT-KEY>|<X-TIMESTAMP>`, base64 "
        "(hex accepted)",
        {"type": "string", "pattern": r"^[A-Za-z0-9+/=]+$"},
    ),
]
VISIBLE = r"[\x21-\x7e]"
TRANSACTION_HEADERS = [
    X_TIMESTAMP,
    _header(
        "X-SIGNATURE",
        "HMAC-SHA512 with your client secret over `<METHOD>:<path>:<accessToken>:<lowercase hex "
        "SHA-256 of the minified body>:<X-TIMESTAMP>` (the minified body: the raw body without the "
        "whitespace outside JSON strings), base64 (hex accepted)",
        {"type": "string", "pattern": r"^[A-Za-z0-9+/=]+$"},
    ),
    _header(
        "X-PARTNER-ID", "your client id: the access token's", {"type": "string", "pattern": f"^{VISIBLE}+$"}
    ),
    _header(
        "X-EXTERNAL-ID",
        "your id of this request, unique per WIB day: the identical request again gets the first answer, "
        "byte for byte; another request with it 409",
        {"type": "string", "pattern": f"^{VISIBLE}{{1,{auth.EXTERNAL_ID_MAX}}}$"},
    ),
    _header(
        "CHANNEL-ID",
        "your channel id",
        {"type": "string", "pattern": f"^{VISIBLE}{{1,{auth.CHANNEL_ID_MAX}}}$"},
    ),
]

#: Per service: HTTP status -> (the responseCodes it carries, description).
ERRORS: dict[str, dict[int, tuple[list[str], str]]] = {}


def _codes(service: str, cases: list[str], http: int) -> list[str]:
    return [f"{http}{service}{case}" for case in cases]


def _errors(service: str) -> dict[int, tuple[list[str], str]]:
    s = service
    common = {
        400: (
            _codes(s, ["00", "01", "02"], 400),
            "`400xx00` Bad Request: the body is not a JSON object; `400xx01` Invalid Field Format "
            "[field or header]; `400xx02` Invalid Mandatory Field [field or header].",
        ),
        413: (
            _codes(s, ["00"], 413),
            "`413xx00` Request Entity Too Large: the body exceeds `MAX_CONTENT_LENGTH`.",
        ),
        429: (
            _codes(s, ["00"], 429),
            "`429xx00` Too Many Requests: over the partner's `PARTNER_RATE_LIMIT` (shared with its PeTi "
            "requests); retry after `Retry-After` seconds.",
        ),
        500: (
            _codes(s, ["00"], 500),
            "`500xx00` General Error: the database is unreachable (with `Retry-After`) or an unexpected "
            "error; never recorded for `X-EXTERNAL-ID`: retry.",
        ),
    }
    if s == codes.TOKEN:
        return {
            **common,
            401: (
                _codes(s, ["00"], 401),
                "`4017300` Unauthorized. [Unknown client] (also a deactivated partner), [X-TIMESTAMP] "
                "(outside the window) or [Signature].",
            ),
        }
    not_found = {
        codes.INQUIRY: (
            ["12", "13", "14", "18"],
            "`4042412` Invalid Bill/Virtual Account [Not Found]: unknown customer, or "
            "`partnerServiceId` not yours; `4042413` Invalid Amount: an `amount` with cents other "
            "than `.00`; `4042414` Paid Bill: no unpaid bill; `4042418` Inconsistent Request: "
            "`inquiryRequestId` already used for another VA.",
        ),
        codes.PAYMENT: (
            ["12", "13", "14", "18", "19"],
            "`4042512` Invalid Bill/Virtual Account [Not Found]: the VA does not exist (unknown "
            "customer), or `partnerServiceId` not yours; `4042513` Invalid Amount: `paidAmount` is "
            "not the inquiry's total, or has cents other than `.00`; `4042514` Paid Bill: a bill of "
            "the inquiry was paid meanwhile; `4042518` Inconsistent Request: `paymentRequestId` "
            "already used with another VA or amount; `4042519` Invalid Bill/Virtual Account "
            "[Expired]: a known VA with no live inquiry of yours under that id.",
        ),
        codes.STATUS: (
            ["01"],
            "`4042601` Transaction Not Found: no payment of yours for that VA under that "
            "`inquiryRequestId`/`paymentRequestId`.",
        ),
    }[s]
    return {
        **common,
        401: (
            _codes(s, ["00", "01"], 401),
            "`401xx00` Unauthorized. [X-PARTNER-ID] (not the token's client), [X-TIMESTAMP] (outside the "
            "window) or [Signature]; `401xx01` Invalid Token (B2B): missing, unknown or expired.",
        ),
        404: (_codes(s, not_found[0], 404), not_found[1]),
        409: (
            _codes(s, ["00"], 409),
            "`409xx00` Conflict: `X-EXTERNAL-ID` already used today for another request.",
        ),
    }


#: The headers of every SNAP answer; the token answer also X-CLIENT-KEY.
RESPONSE_HEADERS = {
    "X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"},
    "X-TIMESTAMP": {
        "required": True,
        "description": "when the answer was sent: ISO-8601 in WIB, with its offset",
        "schema": {"type": "string", "pattern": TIMESTAMP_PATTERN, "example": "2026-11-30T09:15:01+07:00"},
    },
}
X_CLIENT_KEY = {
    "required": True,
    "description": "your client id (the request's `X-CLIENT-KEY`)",
    "schema": {"type": "string", "pattern": r"^[\x21-\x7e]+$"},
}


def _error_response(http: int, response_codes: list[str], description: str) -> dict:
    schema = {
        "allOf": [
            {"$ref": f"#/components/schemas/{PREFIX}Error"},
            {"type": "object", "properties": {"responseCode": {"type": "string", "enum": response_codes}}},
        ]
    }
    headers = dict(RESPONSE_HEADERS)
    if http == 429:
        headers["Retry-After"] = {
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
            "description": "whole seconds",
        }
    if http == 500:
        headers["Retry-After"] = {
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
            "description": "whole seconds: sent when the database is unreachable",
        }
    return {
        "description": description,
        "headers": headers,
        "content": {"application/json": {"schema": schema}},
    }


def _ok(description: str, schema: Any, token: bool = False) -> dict:
    return {
        "description": description,
        "headers": {**RESPONSE_HEADERS, **({"X-CLIENT-KEY": X_CLIENT_KEY} if token else {})},
        "content": {"application/json": {"schema": schema}},
    }


def _operation(
    service: str, summary: str, description: str, request: Any, ok: dict, token: bool = False
) -> dict:
    responses = {"200": ok}
    for http, (response_codes, text) in sorted(_errors(service).items()):
        responses[str(http)] = _error_response(http, response_codes, text)
    return {
        "summary": summary,
        "description": description,
        "tags": [TAG["name"]],
        "operationId": {
            codes.TOKEN: "snapAccessToken",
            codes.INQUIRY: "snapInquiry",
            codes.PAYMENT: "snapPayment",
            codes.STATUS: "snapStatus",
        }[service],
        "parameters": ["X-Request-Id", *(TOKEN_HEADERS if token else TRANSACTION_HEADERS)],
        "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
        "responses": responses,
        "security": [] if token else [{SECURITY_SCHEME: []}],
    }


def operations() -> dict[str, dict[str, dict]]:
    return {
        "/snap/v1.0/access-token/b2b": {
            "post": _operation(
                codes.TOKEN,
                "SNAP access token (B2B, service 73)",
                "An access token for the transactional SNAP routes, valid `SNAP_TOKEN_TTL_SECONDS` (900 s) "
                "for your client only, in every web process. Authenticated by your RSA signature.",
                schemas.TokenRequest,
                _ok("`2007300` Successful.", schemas.TokenResponse, token=True),
                token=True,
            )
        },
        "/snap/v1.0/transfer-va/inquiry": {
            "post": _operation(
                codes.INQUIRY,
                "VA inquiry (service 24)",
                f"The customer's unpaid bills, oldest first (at most {schemas.MAX_BILLS}: the oldest), as an inquiry (stored for `INQUIRY_TTL_SECONDS`, "
                "900 s) bound to your `inquiryRequestId`: the same id for the same VA while it lives gets "
                "the same bills again. `virtualAccountTrxType` `C`: the total is the amount to pay.",
                schemas.InquiryRequest,
                _ok("`2002400` Successful.", schemas.InquiryResponse),
            )
        },
        "/snap/v1.0/transfer-va/payment": {
            "post": _operation(
                codes.PAYMENT,
                "VA payment (service 25)",
                "Pays every bill of the live inquiry whose `inquiryRequestId` is this `paymentRequestId`: "
                "recorded with its posting job in one transaction, then posted to the billing ledger by "
                "the job server (see the status route). The same `paymentRequestId` again with the same VA "
                "and amount (a retry, `flagAdvise` `Y` or not) gets the same answer and receipt number, "
                "never a second payment.",
                schemas.PaymentRequest,
                _ok("`2002500` Successful: recorded (or the same payment again).", schemas.PaymentResponse),
            )
        },
        "/snap/v1.0/transfer-va/status": {
            "post": _operation(
                codes.STATUS,
                "VA payment status (service 26)",
                "Your payment of that VA made under `inquiryRequestId` (its `paymentRequestId` is the same "
                "id; either finds it): `paymentFlagStatus` `00` while it stands "
                "(in progress or posted), `01` once rejected at posting (paid before) or reversed; "
                "`additionalInfo.status` is its state.",
                schemas.StatusRequest,
                _ok("`2002600` Successful.", schemas.StatusResponse),
            )
        },
    }


def build() -> dict:
    """The SNAP part as a document of its own (its references to ``X-Request-Id`` resolve
    in the service's document)."""
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(title="SNAP", version=VERSION, openapi_version="3.0.3", plugins=[plugin])
    plugin.converter.add_attribute_function(_snap_field)
    spec.components.security_scheme(
        SECURITY_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "description": "a SNAP access token from `POST /snap/v1.0/access-token/b2b`; the transactional "
            "routes also need the `X-SIGNATURE` described on each",
        },
    )
    # Resolves the operations' "X-Request-Id" to its $ref; the service's document has the
    # parameter itself (not merged from here).
    spec.components.parameter("X-Request-Id", "header", {"schema": {"type": "string"}})
    spec.components.schema(f"{PREFIX}Money", schema=Money)
    spec.components.schema(f"{PREFIX}Error", schema=Error)
    spec.components.schema(f"{PREFIX}Reason", schema=schemas.Reason)
    spec.components.schema(f"{PREFIX}BillDescription", schema=schemas.BillDescription)
    spec.components.schema(f"{PREFIX}BillDetail", schema=schemas.BillDetail)
    for path, ops in operations().items():
        spec.path(path=path, operations=ops)
    doc = spec.to_dict()
    _require_dumped_fields(doc)
    _optional_may_be_null(doc)
    status = doc["components"]["schemas"][f"{PREFIX}StatusRequest"]
    status["anyOf"] = [
        {"required": [name], "properties": {name: {"type": "string"}}}
        for name in ("inquiryRequestId", "paymentRequestId")
    ]
    return doc


#: Components that are request bodies.
REQUESTS = {
    f"{PREFIX}{name}" for name in ("InquiryRequest", "PaymentRequest", "StatusRequest", "TokenRequest")
}


def _optional_may_be_null(doc: dict) -> None:
    """An optional request field sent as JSON ``null`` is absent: say so (``nullable``)."""
    for name in REQUESTS:
        schema = doc["components"]["schemas"][name]
        for key, prop in schema["properties"].items():
            if key in schema.get("required", []):
                continue
            if "$ref" in prop:  # OpenAPI 3.0 ignores a $ref's siblings
                schema["properties"][key] = prop = {"allOf": [prop]}
            prop["nullable"] = True


#: Components that are loaded (input) or have optional fields.
NOT_ALL_REQUIRED = {
    f"{PREFIX}{name}"
    for name in ("InquiryRequest", "PaymentRequest", "StatusRequest", "TokenRequest", "Error", "BillDetail")
}


def _require_dumped_fields(doc: dict) -> None:
    """A dumped schema always writes every field: say so, so responses are checked fully."""
    for name, schema in doc["components"]["schemas"].items():
        if name not in NOT_ALL_REQUIRED and schema.get("properties"):
            schema["required"] = [key for key in schema["properties"] if key not in schemas.BANK_VALUES]


def add_to(doc: dict) -> dict:
    """Merge the SNAP part into the service's document ``doc`` (changed in place, returned)."""
    part = build()
    for section in ("schemas", "securitySchemes"):
        target = doc.setdefault("components", {}).setdefault(section, {})
        for name, value in part["components"].get(section, {}).items():
            if name in target and target[name] != value:
                raise ValueError(f"component {section}/{name} is defined by both edges")
            target[name] = value
    for ref in ("headers", "parameters"):
        if "X-Request-Id" not in doc["components"].get(ref, {}):
            raise ValueError(f"the document has no components/{ref}/X-Request-Id the SNAP routes refer to")
    for path, ops in part["paths"].items():
        if path in doc["paths"]:
            raise ValueError(f"path {path} is documented twice")
        doc["paths"][path] = ops
    doc.setdefault("tags", []).append(TAG)
    doc["info"]["description"] += (
        " Banks' virtual accounts are served over SNAP under `/snap/v1.0/` (tag `snap`, security "
        f'`{SECURITY_SCHEME}`, SNAP\'s own error body `{{"responseCode", "responseMessage"}}`).'
    )
    return doc
