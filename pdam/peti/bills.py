"""``/tagihan/<cid>``: inquiry (GET), payment (POST) and reversal (DELETE)."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from ..core import inquiry, payments, reversal, states, webhooks
from ..core.payments import PaymentRequest
from ..infra import logs
from ..web import runtime
from . import callbacks, schemas
from .auth import current_partner, partner_required
from .states import WIRE

bp = Blueprint("tagihan", __name__)
# Schemas are built once: building one costs more than using it.
INQUIRY_RESPONSE = schemas.InquiryResponse()
PAYMENT_REQUEST = schemas.PaymentRequest()
PAYMENT_ACCEPTED = schemas.PaymentAccepted()
PAYMENT_STATUS = schemas.PaymentStatus()
REVERSAL_QUERY = schemas.ReversalQuery()


@bp.get("/tagihan/<cid>")
@partner_required
def get_bills(cid):
    cfg = current_app.config
    result = inquiry.inquire(  # statements that are each atomic: no transaction to hold open
        runtime.connection(),
        runtime.ledger_connection(),
        current_partner().code,
        schemas.check_cid(cid),
        runtime.now(),
        cfg["INQUIRY_TTL_SECONDS"],
    )
    headers = {"X-Cross-Site": result.token, "X-Message": cfg["INQUIRY_MESSAGE"]}
    return INQUIRY_RESPONSE.dump(result), 200, headers


def _accept(conn, partner_code: str, req: PaymentRequest, now):
    """Record the payment and, with ``X-Async``, its ``created`` callback: one transaction."""
    result = payments.accept(conn, partner_code, req, now, runtime.sealer())
    if not result.replayed:
        webhooks.record(conn, result.payment, states.CREATED, now)
    return result


@bp.post("/tagihan/<cid>")
@partner_required
def pay(cid):
    cid = schemas.check_cid(cid)
    body = schemas.load(PAYMENT_REQUEST, schemas.json_body(request))
    req = PaymentRequest(
        customer_id=cid,
        inquiry_token=body["inq"],
        amount=body["amo"],
        periods=tuple(body["per"]),
        merchant=body["mer"],
        reference=body["pid"],
        callback=callbacks.callback_from(request.headers),
    )
    result = runtime.run(_accept, current_partner().code, req, runtime.now())
    logs.bind(nob=result.payment.nob)
    answer = PAYMENT_ACCEPTED.dump(
        schemas.Seen(result.payment, message=current_app.config["PAYMENT_MESSAGE"])
    )
    headers = {"X-Advice-Url": f"/status/{cid}?nob={result.payment.nob}"}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return answer, 202, headers


def _reverse(partner_code: str, cid: str, reference: str, pat: str, now):
    """The reversal and its ``reversed`` callback; the ledger commits first, then ours."""
    with runtime.transaction() as conn, runtime.ledger_transaction() as ledger:
        result = reversal.reverse(conn, ledger, partner_code, cid, reference, pat, now)
        if not result.replayed:
            webhooks.record(conn, result.payment, states.REVERSED, now)
        return result.payment


@bp.delete("/tagihan/<cid>")
@partner_required
def reverse(cid):
    cid = schemas.check_cid(cid)
    query = schemas.load(REVERSAL_QUERY, request.args.to_dict())
    payment = _reverse(current_partner().code, cid, query["pid"], query["pat"], runtime.now())
    logs.bind(nob=payment.nob)
    wire = WIRE[states.REVERSED]
    return PAYMENT_STATUS.dump(
        schemas.Seen(payment, status=states.REVERSED, code=wire.code, message=wire.message)
    ), wire.code
