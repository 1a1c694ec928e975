"""What the PeTi views' ``@doc`` share: the error texts, ``cid``, the inquiry token."""

from __future__ import annotations

from ..core import ids
from ..web import apidoc

#: The default description of each error status of a PeTi route.
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
#: A header value as it travels (Latin-1, no control characters: the service refuses those).
HEADER_TEXT = r"[\x20-\x7e\x80-\xff]"
HEX32 = {"type": "string", "pattern": ids.ecma(ids.INQ)}
CID = {
    "name": "cid",
    "in": "path",
    "required": True,
    "description": "customer number (nomor sambungan), digits only",
    "schema": {"type": "string", "pattern": ids.ecma(ids.CID)},
    "example": "010101010101",
}


def error(code: int, description: str | None = None) -> dict:
    return apidoc.error(code, description or ERROR_TEXT[code])


def web_headers() -> dict:
    """The headers every answer has (``X-Request-Id``)."""
    return apidoc.headers()


def auth_errors() -> dict:
    return {401: error(401), 403: error(403), 429: error(429)}


# -- OpenAPI links: inquiry -> payment -> status -> reversal (Schemathesis' stateful phase
# walks them; Swagger UI shows them) ------------------------------------------------------

PAY = {
    "operationRef": "#/paths/~1tagihan~1{cid}/post",
    "description": "Pay the oldest bill of this inquiry.",
    "parameters": {"path.cid": "$request.path.cid"},
    "requestBody": {
        "inq": "$response.header.X-Cross-Site",
        "per": ["$response.body#/tagihan/0/periode"],
        "amo": "$response.body#/tagihan/0/biaya/jumlah",
    },
}
STATUS = {
    "operationRef": "#/paths/~1status~1{cid}/get",
    "description": "The payment's status, by `nob`.",
    "parameters": {"path.cid": "$response.body#/data/cid", "query.nob": "$response.body#/data/nob"},
}
CALLBACKS = {
    "operationRef": "#/paths/~1callbacks/get",
    "description": "The payment's callbacks: what was sent, and how each delivery ended.",
    "parameters": {"query.nob": "$response.body#/data/nob"},
}
RESEND = {
    "operationRef": "#/paths/~1callbacks~1{event_id}~1resend/post",
    "description": "Send the newest callback of this page again.",
    "parameters": {"path.event_id": "$response.body#/callbacks/0/event_id"},
}
REVERSE = {
    "operationRef": "#/paths/~1tagihan~1{cid}/delete",
    "description": "Reverse the payment (409 while it is still `created`).",
    "parameters": {
        "path.cid": "$response.body#/data/cid",
        "query.pid": "$response.body#/data/pid",
        "query.pat": "$response.body#/data/pat",
    },
}
