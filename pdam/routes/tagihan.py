"""``/tagihan/<cid>``: inquiry (GET), payment (POST) and reversal (DELETE)."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from .. import clock, db, inquiry, payment, reversal, schemas, webhook_url
from ..auth import current_partner, partner_required

bp = Blueprint("tagihan", __name__)
# Schemas are built once: building one costs more than using it.
INQUIRY_RESPONSE = schemas.InquiryResponse()
PAYMENT_REQUEST = schemas.PaymentRequest()
PAYMENT_ACCEPTED = schemas.PaymentAccepted()


@bp.get("/tagihan/<cid>")
@partner_required
def get_bills(cid):
    cfg = current_app.config
    with db.transaction() as conn:
        result = inquiry.inquire(
            conn, db.ledger_connection(), current_partner().code, schemas.check_cid(cid),
            clock.now(), cfg["INQUIRY_TTL_SECONDS"],
        )
    headers = {"X-Cross-Site": result["token"], "X-Message": cfg["INQUIRY_MESSAGE"]}
    return INQUIRY_RESPONSE.dump(result), 200, headers


@bp.post("/tagihan/<cid>")
@partner_required
def pay(cid):
    cid = schemas.check_cid(cid)
    req = schemas.load(PAYMENT_REQUEST, schemas.json_body(request))
    callback = webhook_url.callback_from(request.headers)
    result = db.run(payment.accept, current_partner().code, cid, req, callback, clock.now())
    body = PAYMENT_ACCEPTED.dump(
        {**result.payment, "message": current_app.config["PAYMENT_MESSAGE"]}
    )
    headers = {"X-Advice-Url": f"/status/{cid}?nob={body['data']['nob']}"}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return body, 202, headers


@bp.delete("/tagihan/<cid>")
@partner_required
def reverse(cid):
    cid = schemas.check_cid(cid)
    query = schemas.load(schemas.ReversalQuery(), request.args.to_dict())
    row = reversal.reverse_and_commit(current_partner().code, cid, query["pid"], query["pat"], clock.now())
    body = schemas.PaymentStatus().dump(
        {**row, "status": reversal.STATUS, "code": reversal.CODE, "message": reversal.MESSAGE}
    )
    return body, reversal.CODE
