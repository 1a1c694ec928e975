"""PeTi's callbacks (``X-Async``): the target a payment gives, and the wire format.

A payment names its callback with ``X-Async`` (and ``X-Async-Token``); at each
of its events the body below is recorded with the state change
(``core.webhooks.record``) from the payment the caller already holds, and
the job server sends it with these headers, signed with the partner's secret.
Importing this module registers that format as the protocol ``peti`` of the core's
``events``: the web app imports it with its routes, the job server at start
(``pdam.EDGES``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from urllib.parse import urlsplit

from marshmallow import Schema, fields, validate

from ..core import errors, events, states
from ..core.payments import Callback
from ..core.records import Payment
from ..infra import http
from ..infra.settings import VERSION
from . import schemas
from .states import WIRE

MAX_URL_LENGTH = 2048
#: Never stored nor sent on: PostgreSQL refuses NUL, HTTP clients refuse the rest.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
#: The name of PeTi's callbacks in the core's ``events`` (stored with each payment's callback).
PROTOCOL = "peti"
USER_AGENT = f"pdam-peti/{VERSION} (webhook)"
CONTENT_TYPE = "application/json;charset=utf-8"
DATA_FIELDS = ("cid", "pid", "pat", "mer", "inq", "pts", "nob")
META_FIELDS = (
    "jumlah_tagihan", "jumlah_bayar", "jumlah_masalah",
    "lembar_tagihan", "lembar_bayar", "lembar_masalah",
    "periode_tagihan", "periode_bayar", "periode_masalah",
)  # fmt: skip
BODY_FIELDS = ("status", "code", "message", "data", "meta")
DATA = schemas.PaymentData(only=DATA_FIELDS)
META = schemas.Meta()


# -- the target: X-Async ----------------------------------------------------------------


def check_url(url: str) -> str:
    """An absolute http(s) URL of at most 2048 characters with a host, else Invalid."""
    if len(url) > MAX_URL_LENGTH:
        raise errors.Invalid(f"X-Async must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise errors.Invalid("X-Async must be an absolute http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.Invalid("X-Async must be an absolute http(s) URL")
    return url


def refusal(url: str, token: str | None, *, allow_private: bool) -> str | None:
    """Why a callback to ``url`` would leak, or reach where the service does not call
    (contract 15.1 and 6): the delivery's own rule (``http.url_refusal``: credentials in
    the URL, an address refused, link-local always), and a plain ``http://`` URL to a
    public host without ``X-Async-Token``: the callback would then carry the payment's own
    ``Authorization`` (the partner's token) in clear. A host name counts as public."""
    reason = http.url_refusal(url, allow_private=allow_private)
    if reason is not None:
        return reason
    parts = urlsplit(url)
    if parts.scheme == "http" and not token:
        ip = http.literal_address(parts.hostname or "")
        if ip is None or http.refusal(ip) is None:
            return (
                "an http:// URL to a public host needs X-Async-Token (without it the callback "
                "carries this request's Authorization, your token, in clear); use https:// or "
                "give X-Async-Token"
            )
    return None


def shown(url: str) -> str:
    """``url`` without credentials, to quote in an answer or a log."""
    scheme, rest = url.split("://", 1) if "://" in url else ("", url)
    authority, sep, path = rest.partition("/")
    authority = authority.rpartition("@")[2]
    return f"{scheme}://{authority}{sep}{path}" if scheme else f"{authority}{sep}{path}"


def _header(headers, name: str) -> str | None:
    """The header's value without the spaces and tabs around it (not part of a field value,
    RFC 9110 5.5: HTTP servers drop them already); no control character inside."""
    value = headers.get(name)
    if value:
        value = value.strip(" \t")
    if value and CONTROL_RE.search(value):
        raise errors.Invalid(f"{name} must not contain control characters")
    return value


def callback_from(headers, *, allow_private: bool = False) -> Callback:
    """The payment's callback from its headers; Invalid (400) for a URL that is ill-formed
    or would leak (``refusal``), saying why. ``allow_private``: WEBHOOK_ALLOW_PRIVATE_NETWORKS."""
    url = _header(headers, "X-Async")
    if url is None or url == "":
        return Callback()
    token = _header(headers, "X-Async-Token") or None
    reason = refusal(check_url(url), token, allow_private=allow_private)
    if reason is not None:
        raise errors.Invalid(f"X-Async: {shown(url)} is not called: {reason}")
    return Callback(
        url=url,
        token=token,
        authorization=headers.get("Authorization"),
        protocol=PROTOCOL,
    )


# -- the body ----------------------------------------------------------------------------


def body_for(payment: Payment, event: str) -> dict:
    """The callback body of ``event`` for a payment."""
    wire = WIRE[event]
    return {
        "status": event,
        "code": wire.code,
        "message": wire.callback_message,
        "data": DATA.dump(payment),
        "meta": META.dump(payment),
    }


def _ordered(values: dict, order: tuple[str, ...]) -> dict:
    known = {key: values[key] for key in order if key in values}
    return known | {key: values[key] for key in sorted(values) if key not in known}


def render(body: dict) -> bytes:
    """The exact bytes sent (and signed): the contract's field order, compact UTF-8 JSON.
    Deterministic, so every attempt of one delivery sends the same body."""
    out = _ordered(body, BODY_FIELDS)
    if isinstance(out.get("data"), dict):
        out["data"] = _ordered(out["data"], DATA_FIELDS)
    if isinstance(out.get("meta"), dict):
        out["meta"] = _ordered(out["meta"], META_FIELDS)
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signature(secret: str, timestamp: int, raw_body: bytes) -> str:
    """``X-Signature``: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + raw_body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def headers_for(delivery, raw_body: bytes, now: dt.datetime) -> dict[str, str]:
    """The headers of one attempt of ``delivery`` (``core.webhooks.load``'s row)."""
    headers = {
        "Content-Type": CONTENT_TYPE,
        "User-Agent": USER_AGENT,
        "X-Event-Id": str(delivery.event_id),
        "X-Signature": signature(delivery.webhook_secret, int(now.timestamp()), raw_body),
    }
    authorization = delivery.callback_token or delivery.request_authorization
    if authorization:
        headers["Authorization"] = authorization
    return headers


class PetiCallbacks:
    """PeTi's callbacks as the core's ``events.Protocol``."""

    def body(self, payment: Payment, event: str) -> dict:
        return body_for(payment, event)

    def render(self, body: dict) -> bytes:
        return render(body)

    def headers(self, delivery, raw_body: bytes, now: dt.datetime) -> dict[str, str]:
        return headers_for(delivery, raw_body, now)


events.register(PROTOCOL, PetiCallbacks())


# -- the callback in the OpenAPI document (the payment route's ``callbacks``) ----------------


class CallbackEvent(Schema):
    """The body the job server POSTs to ``X-Async`` (pdam/peti/callbacks.py ``body_for``)."""

    status = fields.String(required=True, validate=validate.OneOf(states.EVENTS))
    code = fields.Integer(required=True, validate=validate.OneOf(sorted({w.code for w in WIRE.values()})))
    message = fields.String(
        required=True, validate=validate.OneOf(sorted({w.callback_message for w in WIRE.values()}))
    )
    data = fields.Nested(schemas.PaymentData(only=DATA_FIELDS), required=True)
    meta = fields.Nested(schemas.Meta, required=True)


def callback_operation() -> dict:
    return {
        "summary": "Payment event callback",
        "description": (
            "Sent by the job server to the payment's `X-Async` URL: `created` (201) when the payment is "
            "recorded, then its final state `accepted` (202), `changed` (206) or `rejected` (409), and "
            "`reversed` (200) after a reversal, in that order per payment. Headers: `Content-Type: "
            f"{CONTENT_TYPE}`, `User-Agent: {USER_AGENT}`, `Authorization`: the "
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
