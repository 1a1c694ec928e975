"""``GET /status/<cid>``: a payment's state; the HTTP status mirrors it."""

from __future__ import annotations

from flask import Blueprint, request

from ..core import payments
from ..core.records import Payment
from ..infra import logs
from ..web import runtime
from . import schemas
from .auth import current_partner, partner_required
from .states import WIRE

bp = Blueprint("status", __name__)
STATUS_QUERY = schemas.StatusQuery()
PAYMENT_STATUS = schemas.PaymentStatus()


def status_body(payment: Payment) -> dict:
    wire = WIRE[payment.status]
    return PAYMENT_STATUS.dump(schemas.Seen(payment, code=wire.code, message=wire.message))


@bp.get("/status/<cid>")
@partner_required
def get_status(cid):
    cid = schemas.check_cid(cid)
    query = schemas.load(STATUS_QUERY, request.args.to_dict())
    with runtime.transaction() as conn:
        payment = payments.find(
            conn,
            current_partner().code,
            cid,
            nob=query.get("nob"),
            reference=query.get("pid"),
            pat=query.get("pat"),
            inquiry_token=query.get("inq"),
        )
    logs.bind(nob=payment.nob)
    body = status_body(payment)
    return body, body["code"]
