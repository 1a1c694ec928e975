"""The SNAP routes: ``/snap/v1.0/access-token/b2b`` and the VA inquiry, payment and status.

A transactional request is: authenticate (``auth``), claim its X-EXTERNAL-ID, then
parse -> one core call -> dump, in one transaction with the claim and the answer
it records. The core call runs in a savepoint: a refusal (a 4xx answer) rolls back
whatever the call did and is recorded as the answer like a success, so the same
request again gets the same bytes; an outage or an unexpected error rolls back the
claim too (5xx answers are never recorded: a retry is a new attempt).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from ..core import errors, inquiry, payments, states
from ..core.payments import wib_day
from ..core.records import Payment, Shown
from ..infra import logs
from ..web import bodies, runtime
from ..web import errors as web_errors
from ..web.apidoc import doc
from ..web.errors import TooManyRequests
from . import apidoc as snap_doc
from . import auth, codes, schemas, store
from .signatures import minify

log = logging.getLogger(__name__)
bp = Blueprint("snap", __name__, url_prefix="/snap/v1.0")

INQUIRY_REQUEST = schemas.InquiryRequest()
PAYMENT_REQUEST = schemas.PaymentRequest()
STATUS_REQUEST = schemas.StatusRequest()
TOKEN_REQUEST = schemas.TokenRequest()
INQUIRY_RESPONSE = schemas.InquiryResponse()
PAYMENT_RESPONSE = schemas.PaymentResponse()
STATUS_RESPONSE = schemas.StatusResponse()
TOKEN_RESPONSE = schemas.TokenResponse()
SUCCESS = {"english": "Success", "indonesia": "Sukses"}
#: paymentFlagReason of a payment that is not standing: rejected at posting, or reversed.
NOT_STANDING = {
    states.REJECTED: {"english": "Bill was paid before", "indonesia": "Tagihan sudah dibayar sebelumnya"},
    states.REVERSED: {"english": "Payment reversed", "indonesia": "Pembayaran dibatalkan"},
}
#: ``merchant`` of a payment whose request names no channelCode.
DEFAULT_MERCHANT = "VA"


# -- the body ------------------------------------------------------------------------------


def raw_body() -> bytes:
    """The body as received (the signature covers these bytes); over MAX_CONTENT_LENGTH,
    streamed or not, 413 (``web.bodies``)."""
    data = bodies.raw(request)
    g.snap_raw = data
    return data


def _reject_constant(name: str):
    raise ValueError(name)


def parse_json(raw: bytes) -> Any:
    """The body as JSON, or None when it is not JSON (UTF-8 text, no NaN/Infinity, not
    nested beyond the parser's limit)."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def dumps(body: dict) -> bytes:
    """Compact JSON, keys in the schemas' order (as the service's other answers)."""
    return current_app.json.dumps(body, separators=(",", ":")).encode()


def answer(status: int, data: bytes, headers: dict | None = None) -> Response:
    """A SNAP answer: every one carries ``X-TIMESTAMP``, the time it is sent (WIB, with
    offset; mandatory in the standard's response headers), also a replayed one."""
    headers = {**(headers or {}), "X-TIMESTAMP": schemas.wib_iso(runtime.now())}
    return Response(data, status=status, headers=headers, mimetype="application/json")


# -- errors -----------------------------------------------------------------------------------


def _echo(data: Any, service: str) -> dict | None:
    """What an error body repeats of a readable request: its VA fields as given."""
    if not isinstance(data, dict) or service not in (codes.INQUIRY, codes.PAYMENT, codes.STATUS):
        return None
    names = ["partnerServiceId", "customerNo", "virtualAccountNo"]
    names += {
        codes.INQUIRY: ["inquiryRequestId"],
        codes.PAYMENT: ["paymentRequestId"],
        codes.STATUS: ["inquiryRequestId", "paymentRequestId"],
    }[service]
    limit = schemas.MAX_LENGTH
    return {
        name: data[name]
        for name in names
        if isinstance(data.get(name), str) and len(data[name]) <= limit[name]
    }


def error_body(err: codes.SnapError, service: str, data: Any = None) -> dict:
    body: dict[str, Any] = {"responseCode": err.code(service), "responseMessage": err.message}
    echo = _echo(data, service)
    if echo is not None:
        flag = "inquiry" if service == codes.INQUIRY else "paymentFlag"
        status_key = "inquiryStatus" if service == codes.INQUIRY else "paymentFlagStatus"
        body["virtualAccountData"] = {status_key: "01", f"{flag}Reason": err.reason(), **echo}
    return body


def to_snap(exc: BaseException, service: str) -> codes.SnapError:
    """Any exception as a SNAP answer."""
    if isinstance(exc, codes.SnapError):
        return exc
    if isinstance(exc, TooManyRequests):
        return codes.too_many(exc.retry_after)
    if isinstance(exc, errors.PdamError):
        err = codes.from_core(exc, service)
        if err.http >= 500:
            log.warning("SNAP request not completed: %s: %s", type(exc).__name__, exc.message)
        return err
    if isinstance(exc, HTTPException):
        return codes.SnapError(exc.code or 500, "00", exc.name, web_errors.http_headers(exc))
    return codes.general(retry=web_errors.unexpected(exc) == 503)


def handle(exc: BaseException) -> Response:
    """The error handler of every ``/snap/`` URL: SNAP's body, never PeTi's."""
    service = codes.service_of(request.path)
    err = to_snap(exc, service)
    raw = g.get("snap_raw")
    data = parse_json(raw) if raw is not None else None
    return answer(err.http, dumps(error_body(err, service, data)), err.headers)


bp.register_error_handler(Exception, handle)


# -- the token route -------------------------------------------------------------------------


@bp.post("/access-token/b2b")
@doc(
    snap_doc.operation(
        codes.TOKEN,
        "SNAP access token (B2B, service 73)",
        "An access token for the transactional SNAP routes, valid `SNAP_TOKEN_TTL_SECONDS` (900 s) "
        "for your client only, in every web process. Authenticated by your RSA signature.",
        schemas.TokenRequest,
        snap_doc.ok("`2007300` Successful.", schemas.TokenResponse, token=True),
        token=True,
    )
)
def access_token():
    raw = raw_body()
    now = runtime.now()
    client_id = auth.token_request(now)
    schemas.load(TOKEN_REQUEST, _json_or_400(raw))
    ttl = current_app.config["SNAP_TOKEN_TTL_SECONDS"]
    with runtime.transaction() as conn:
        token = store.issue_token(conn, client_id, now, wib_day(now), ttl)
    body = TOKEN_RESPONSE.dump(
        {
            "responseCode": f"200{codes.TOKEN}00",
            "responseMessage": "Successful",
            "accessToken": token,
            "expiresIn": str(ttl),
        }
    )
    return answer(200, dumps(body), {"X-CLIENT-KEY": client_id})


def _json_or_400(raw: bytes) -> Any:
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise codes.bad_request()
    return data


# -- transactional requests ------------------------------------------------------------------


def fingerprint(raw: bytes) -> str:
    """The identity of a request for X-EXTERNAL-ID: method, path and minified body."""
    digest = hashlib.sha256()
    for part in (request.method.encode(), auth.signed_path().encode(), minify(raw)):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


Handler = Callable[[sa.Connection, auth.Caller, dict, dt.datetime], dict]


def transactional(service: str, handler: Handler) -> Response:
    raw = raw_body()
    now = runtime.now()
    caller = auth.transactional_request(raw, now)
    day = wib_day(now)
    with runtime.transaction() as conn:
        claim = store.claim(conn, caller.client_id, day, caller.external_id, fingerprint(raw), now)
        if claim.conflict:
            raise codes.conflict()
        if not claim.new:
            return answer(claim.status, claim.body)
        data = parse_json(raw)
        try:
            if not isinstance(data, dict):
                raise codes.bad_request()
            status, body = 200, handler(conn, caller, data, now)
        except Exception as exc:
            err = to_snap(exc, service) if isinstance(exc, (codes.SnapError, errors.PdamError)) else None
            if err is None or err.http >= 500:
                raise
            status, body = err.http, error_body(err, service, data)
        out = dumps(body)
        store.answer(conn, caller.client_id, day, caller.external_id, status, out)
    return answer(status, out)


def in_savepoint(conn: sa.Connection, fn: Callable[[], Any]) -> Any:
    """Run the core call in a savepoint: a refusal rolls back what it did, and a lost race
    runs it once more (``runtime.once_more_after_a_race``)."""
    return runtime.once_more_after_a_race(conn.begin_nested, lambda _: fn())


def _check_service(caller: auth.Caller, body: dict) -> str:
    """The VA must be of this client's company code; the customer number is the cid."""
    if body["service_id"].lstrip(" ") != caller.service_id:
        raise codes.bill_not_found()
    return body["customer_no"]


def _va(caller: auth.Caller, body: dict) -> dict:
    return {"service_id": body["service_id"], "customer_no": body["customer_no"], "va_no": body["va_no"]}


def _inquire(conn: sa.Connection, caller: auth.Caller, data: dict, now: dt.datetime) -> dict:
    body = schemas.load(INQUIRY_REQUEST, data)
    cid = _check_service(caller, body)
    cfg = current_app.config
    result = in_savepoint(
        conn,
        lambda: inquiry.inquire(
            conn,
            runtime.ledger_connection(),
            caller.partner_code,
            cid,
            now,
            cfg["INQUIRY_TTL_SECONDS"],
            reference=body["reference"],
            max_bills=schemas.MAX_BILLS,
            sandbox=caller.sandbox,
        ),
    )
    customer = result.customer
    return INQUIRY_RESPONSE.dump(
        {
            "responseCode": f"200{codes.INQUIRY}00",
            "responseMessage": "Successful",
            "virtualAccountData": {
                **_va(caller, body),
                "name": customer.name,
                "address": customer.address,
                "tariff": customer.tariff,
                "reference": body["reference"],
                "bills": result.bills,
                "total": sum(bill.total for bill in result.bills),
                "fee": 0,
            },
        }
    )


def _payment_data(
    caller: auth.Caller,
    body: dict,
    payment: Payment,
    shown: Shown | None,
    refs: tuple[str | None, str | None],
    now_state: bool,
) -> dict:
    """The payment's ``virtualAccountData``: as recorded (the payment route, also for a
    retry), or with its state now (``now_state``: the status route). ``refs``: the bank's
    ``referenceNo`` and ``trxDateTime`` of the request that recorded it."""
    reversed_ = payment.reversed_at is not None
    standing = not now_state or (payment.status != states.REJECTED and not reversed_)
    return {
        **_va(caller, body),
        "pid": payment.pid,
        "amount": payment.amount,
        "nob": payment.nob,
        "pat": payment.pat,
        "status": payment.status,
        "reversed_at": payment.reversed_at,
        "flag": "00" if standing else "01",
        "flag_reason": SUCCESS
        if standing
        else NOT_STANDING[states.REVERSED if reversed_ else payment.status],
        # No snapshot: the inquiry's is gone (a payment made before snapshots were kept).
        "name": shown.customer.name if shown else "",
        "bills": shown.bills if shown else (),
        "total": payment.amount,
        "reference_no": refs[0],
        "trx_date_time": refs[1],
    }


def _pay(conn: sa.Connection, caller: auth.Caller, data: dict, now: dt.datetime) -> dict:
    body = schemas.load(PAYMENT_REQUEST, data)
    cid = _check_service(caller, body)
    merchant = body.get("channelCode") or DEFAULT_MERCHANT
    result = in_savepoint(
        conn,
        lambda: payments.accept_inquiry(
            conn,
            caller.partner_code,
            cid,
            body["reference"],
            body["amount"],
            merchant,
            now,
            runtime.ledger_connection,  # asked only when there is no inquiry to pay
            sandbox=caller.sandbox,
        ),
    )
    payment = result.payment
    logs.bind(nob=payment.nob)
    if result.replayed:  # the first request's values: the same answer again
        refs = store.payment_refs(conn, payment.id)
    else:
        refs = (body.get("reference_no"), body.get("trx_date_time"))
        store.save_payment_refs(conn, payment.id, *refs)
    return PAYMENT_RESPONSE.dump(
        {
            "responseCode": f"200{codes.PAYMENT}00",
            "responseMessage": "Successful",
            "virtualAccountData": _payment_data(caller, body, payment, result.shown, refs, now_state=False),
        }
    )


def _status(conn: sa.Connection, caller: auth.Caller, data: dict, now: dt.datetime) -> dict:
    body = schemas.load(STATUS_REQUEST, data)
    if body["service_id"].lstrip(" ") != caller.service_id:
        raise codes.transaction_not_found()
    # A payment's paymentRequestId is the inquiryRequestId of the inquiry it paid: either
    # names it; two different ones name none.
    references = {body[key] for key in ("reference", "inquiry_reference") if key in body}
    if len(references) != 1:
        raise codes.transaction_not_found()
    (reference,) = references
    payment, shown = payments.find_shown(
        conn, caller.partner_code, body["customer_no"], reference, caller.sandbox
    )
    logs.bind(nob=payment.nob)
    refs = store.payment_refs(conn, payment.id)
    return STATUS_RESPONSE.dump(
        {
            "responseCode": f"200{codes.STATUS}00",
            "responseMessage": "Successful",
            "virtualAccountData": _payment_data(caller, body, payment, shown, refs, now_state=True),
        }
    )


@bp.post("/transfer-va/inquiry")
@doc(
    snap_doc.operation(
        codes.INQUIRY,
        "VA inquiry (service 24)",
        f"The customer's unpaid bills, oldest first (at most {schemas.MAX_BILLS}: the oldest), as an inquiry (stored for `INQUIRY_TTL_SECONDS`, "
        "900 s) bound to your `inquiryRequestId`: the same id for the same VA while it lives gets "
        "the same bills again. `virtualAccountTrxType` `C`: the total is the amount to pay.",
        schemas.InquiryRequest,
        snap_doc.ok("`2002400` Successful.", schemas.InquiryResponse),
    )
)
def va_inquiry():
    return transactional(codes.INQUIRY, _inquire)


@bp.post("/transfer-va/payment")
@doc(
    snap_doc.operation(
        codes.PAYMENT,
        "VA payment (service 25)",
        "Pays every bill of the live inquiry whose `inquiryRequestId` is this `paymentRequestId`: "
        "recorded with its posting job in one transaction, then posted to the billing ledger by "
        "the job server (see the status route). The same `paymentRequestId` again with the same VA "
        "and amount (a retry, `flagAdvise` `Y` or not) gets the same answer and receipt number, "
        "never a second payment.",
        schemas.PaymentRequest,
        snap_doc.ok("`2002500` Successful: recorded (or the same payment again).", schemas.PaymentResponse),
    )
)
def va_payment():
    return transactional(codes.PAYMENT, _pay)


@bp.post("/transfer-va/status")
@doc(
    snap_doc.operation(
        codes.STATUS,
        "VA payment status (service 26)",
        "Your payment of that VA made under `inquiryRequestId` (its `paymentRequestId` is the same "
        "id; either finds it): `paymentFlagStatus` `00` while it stands "
        "(in progress or posted), `01` once rejected at posting (paid before) or reversed; "
        "`additionalInfo.status` is its state.",
        schemas.StatusRequest,
        snap_doc.ok("`2002600` Successful.", schemas.StatusResponse),
    )
)
def va_status():
    return transactional(codes.STATUS, _status)
