"""``GET /status/<cid>``: a payment's state; the HTTP status mirrors it."""

from __future__ import annotations

from flask import Blueprint

from ..core import payments
from ..core.records import Payment
from ..infra import logs
from ..web import runtime
from ..web.apidoc import doc, ok
from . import apidoc, schemas
from .arguments import arguments, cid_path
from .auth import current_partner, partner_required
from .states import WIRE

bp = Blueprint("status", __name__)
PAYMENT_STATUS = schemas.PaymentStatus()


def status_body(payment: Payment) -> dict:
    wire = WIRE[payment.status]
    return PAYMENT_STATUS.dump(schemas.Seen(payment, code=wire.code, message=wire.message))


@bp.get("/status/<cid>")
@doc(
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
        400: apidoc.error(400, "No `nob` or `pid`, or an ill-formed parameter."),
        **apidoc.auth_errors(),
        404: apidoc.error(404, "No such payment of this partner."),
        503: apidoc.error(503),
    },
    tag="payments",
    links={code: {"reverse": apidoc.REVERSE} for code in (201, 202, 206, 409)},
)
@partner_required
@cid_path
@arguments(schemas.StatusQuery, location="query", name="query")
def get_status(cid, query):
    with runtime.transaction() as conn:
        payment = payments.find(
            conn,
            current_partner().code,
            cid,
            nob=query.get("nob"),
            reference=query.get("pid"),
            pat=query.get("pat"),
            inquiry_token=query.get("inq"),
            sandbox=current_partner().sandbox,
        )
    logs.bind(nob=payment.nob)
    body = status_body(payment)
    return body, body["code"]
