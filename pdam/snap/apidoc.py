"""What the SNAP views' ``@doc`` say: the headers of each kind of request, the exact
``responseCode`` values of each error status, per service, and the answers' headers."""

from __future__ import annotations

from typing import Any

from . import auth, codes
from .fields import TIMESTAMP_PATTERN

TAG = "snap"
SECURITY_SCHEME = "snapAccessToken"
PREFIX = "Snap"


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


def ok(description: str, schema: Any, token: bool = False) -> dict:
    return {
        "description": description,
        "headers": {**RESPONSE_HEADERS, **({"X-CLIENT-KEY": X_CLIENT_KEY} if token else {})},
        "content": {"application/json": {"schema": schema}},
    }


def operation(
    service: str, summary: str, description: str, request: Any, ok: dict, token: bool = False
) -> dict:
    """The operation of a SNAP route (for ``web.apidoc.doc``): ``X-Request-Id`` and the
    service's request headers, its body, ``ok`` and every error it answers."""
    responses = {"200": ok}
    for http, (response_codes, text) in sorted(_errors(service).items()):
        responses[str(http)] = _error_response(http, response_codes, text)
    return {
        "summary": summary,
        "description": description,
        "tags": [TAG],
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
