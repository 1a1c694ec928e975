"""``GET /status/<cid>``: a payment's state; the HTTP status mirrors it."""

from __future__ import annotations

from flask import Blueprint, request

from .. import db, payment, posting, schemas
from ..auth import current_partner, partner_required

bp = Blueprint("status", __name__)


def status_body(row: dict) -> dict:
    state = row["status"]
    return schemas.PaymentStatus().dump(
        {**row, "code": posting.STATUS_CODES[state], "message": posting.STATUS_MESSAGES[state]}
    )


@bp.get("/status/<cid>")
@partner_required
def get_status(cid):
    cid = schemas.check_cid(cid)
    query = schemas.load(schemas.StatusQuery(), request.args.to_dict())
    with db.transaction() as conn:
        row = payment.find(conn, current_partner().code, cid, **query)
    body = status_body(row)
    return body, body["code"]
