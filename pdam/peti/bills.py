"""``/tagihan/<cid>``: inquiry (GET), payment (POST) and reversal (DELETE)."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from ..core import inquiry, payments, reversal, states, webhooks
from ..core.payments import PaymentRequest
from ..infra import logs
from ..web import runtime
from ..web.apidoc import doc, ok
from . import apidoc, callbacks, schemas
from .arguments import arguments, cid_path
from .auth import current_partner, partner_required
from .states import WIRE

bp = Blueprint("tagihan", __name__)
# Schemas are built once: building one costs more than using it.
INQUIRY_RESPONSE = schemas.InquiryResponse()
PAYMENT_ACCEPTED = schemas.PaymentAccepted()
PAYMENT_STATUS = schemas.PaymentStatus()


@bp.get("/tagihan/<cid>")
@doc(
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
                    "schema": apidoc.HEX32,
                },
                "X-Message": {
                    "description": "the utility's message to print on the receipt (may be empty)",
                    "required": True,
                    "schema": {"type": "string"},
                },
            },
        ),
        400: apidoc.error(400, "`cid` is not digits only."),
        **apidoc.auth_errors(),
        404: apidoc.error(404, "Customer not found, or no unpaid bill."),
        503: apidoc.error(503),
    },
    tag="payments",
    links={200: {"pay": apidoc.PAY}},
)
@partner_required
@cid_path
def get_bills(cid):
    cfg = current_app.config
    result = inquiry.inquire(  # statements that are each atomic: no transaction to hold open
        runtime.connection(),
        runtime.ledger_connection(),
        current_partner().code,
        cid,
        runtime.now(),
        cfg["INQUIRY_TTL_SECONDS"],
        sandbox=current_partner().sandbox,
    )
    headers = {"X-Cross-Site": result.token, "X-Message": cfg["INQUIRY_MESSAGE"]}
    return INQUIRY_RESPONSE.dump(result), 200, headers


def _accept(conn, partner_code: str, req: PaymentRequest, now, sandbox: bool = False):
    """Record the payment and, with ``X-Async``, its ``created`` callback: one transaction."""
    result = payments.accept(conn, partner_code, req, now, runtime.sealer(), sandbox=sandbox)
    if not result.replayed:
        webhooks.record(conn, result.payment, states.CREATED, now)
    return result


@bp.post("/tagihan/<cid>")
@doc(
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
        400: apidoc.error(
            400,
            "Body or fields ill-formed, or `X-Async` refused: not an absolute http(s) URL, credentials "
            "in it, an address the service does not call (link-local always), or `http://` to a "
            "public host without `X-Async-Token`.",
        ),
        **apidoc.auth_errors(),
        404: apidoc.error(404, "The inquiry token is unknown, expired or another partner's."),
        409: apidoc.error(
            409,
            "`pid` already used for another payment, the inquiry already has a "
            "payment, or a period is already paid or being paid.",
        ),
        410: apidoc.error(
            410,
            "The inquiry was made for another customer, or `per`/`amo` do not match its bills.",
        ),
        413: apidoc.error(413),
        503: apidoc.error(
            503,
            apidoc.ERROR_TEXT[503] + " Also when the partner's receipt numbers of the day are used up.",
        ),
    },
    tag="payments",
    parameters=[
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
                        "pattern": f"^[Hh][Tt][Tt][Pp][Ss]?://{apidoc.HEADER_TEXT}+$",
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
            "schema": {"type": "string", "pattern": f"^[\\t ]*{apidoc.HEADER_TEXT}*[\\t ]*$"},
        },
    ],
    callbacks={"paymentEvents": {"{$request.header.X-Async}": {"post": callbacks.callback_operation()}}},
    links={202: {"status": apidoc.STATUS, "reverse": apidoc.REVERSE, "callbacks": apidoc.CALLBACKS}},
)
@partner_required
@cid_path
@arguments(schemas.PaymentRequest, location="json", name="body")
def pay(cid, body):
    req = PaymentRequest(
        customer_id=cid,
        inquiry_token=body["inq"],
        amount=body["amo"],
        periods=tuple(body["per"]),
        merchant=body["mer"],
        reference=body["pid"],
        callback=callbacks.callback_from(
            request.headers, allow_private=current_app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"]
        ),
    )
    partner = current_partner()
    result = runtime.run(_accept, partner.code, req, runtime.now(), partner.sandbox)
    logs.bind(nob=result.payment.nob)
    answer = PAYMENT_ACCEPTED.dump(
        schemas.Seen(result.payment, message=current_app.config["PAYMENT_MESSAGE"])
    )
    headers = {"X-Advice-Url": f"/status/{cid}?nob={result.payment.nob}"}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return answer, 202, headers


def _reverse(partner_code: str, cid: str, reference: str, pat: str, now, sandbox: bool = False):
    """The reversal and its ``reversed`` callback; the ledger commits first, then ours."""
    with runtime.transaction() as conn, runtime.ledger_transaction() as ledger:
        result = reversal.reverse(conn, ledger, partner_code, cid, reference, pat, now, sandbox)
        if not result.replayed:
            webhooks.record(conn, result.payment, states.REVERSED, now)
        return result.payment


@bp.delete("/tagihan/<cid>")
@doc(
    "Reversal",
    "Undoes an `accepted` or `changed` payment of the calling partner: its bills become "
    "unpaid again and `rev` becomes 1. Allowed until 12:00 WIB of the day after the payment "
    "day. Reversing a reversed payment answers the same again.",
    {
        200: ok(
            "Reversed: the status body with `status: reversed` and `rev: 1`.",
            schemas.PaymentStatus,
        ),
        400: apidoc.error(400, "`cid`, `pid` or `pat` missing or ill-formed."),
        401: apidoc.error(401),
        403: apidoc.error(403, "The partner is deactivated, or the reversal window has closed."),
        404: apidoc.error(404, "No such payment of this partner."),
        409: apidoc.error(409, "The payment is still in progress, or was rejected."),
        429: apidoc.error(429),
        503: apidoc.error(503),
    },
    tag="payments",
)
@partner_required
@cid_path
@arguments(schemas.ReversalQuery, location="query", name="query")
def reverse(cid, query):
    partner = current_partner()
    payment = _reverse(partner.code, cid, query["pid"], query["pat"], runtime.now(), partner.sandbox)
    logs.bind(nob=payment.nob)
    wire = WIRE[states.REVERSED]
    return PAYMENT_STATUS.dump(
        schemas.Seen(payment, status=states.REVERSED, code=wire.code, message=wire.message)
    ), wire.code
