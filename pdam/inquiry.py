"""Inquiry: a customer's unpaid bills and the snapshot a payment is checked against."""

from __future__ import annotations

import datetime as dt
import secrets

import sqlalchemy as sa

from . import errors

BILLS = sa.text(
    "select c.id as cid, c.name, c.address, c.tariff, b.bill_no, b.period, b.meter_start,"
    " b.meter_end, b.usage, b.water, b.admin_fee, b.admin_vat, b.late_fee, b.installment, b.total"
    " from customer c left join bill b on b.customer_id = c.id and b.paid_by is null"
    " where c.id = :cid order by b.period"
)
IN_PROGRESS = sa.text(
    "select period from payment_period pp join payment p on p.id = pp.payment_id"
    " where pp.customer_id = :cid and pp.live and p.status = 'created'"
)
SAVE = sa.text(
    "insert into inquiry (token, partner_code, customer_id, snapshot, created_at, expires_at)"
    " values (:token, :partner, :cid, :snapshot, :now, :expires)"
).bindparams(sa.bindparam("snapshot", type_=sa.JSON))
BILL_FIELDS = (
    "bill_no period meter_start meter_end usage water admin_fee admin_vat late_fee installment total"
).split()


def inquire(
    conn: sa.Connection, ledger: sa.Connection, partner_code: str, cid: str, now: dt.datetime, ttl: int
) -> dict:
    """The customer and unpaid bills (oldest first), saved under a new token for ``ttl`` s."""
    rows = ledger.execute(BILLS, {"cid": cid}).all()
    if not rows:
        raise errors.NotFound("customer not found")
    in_progress = {r.period for r in conn.execute(IN_PROGRESS, {"cid": cid})} if rows[0].bill_no else set()
    bills = [
        {f: getattr(r, f) for f in BILL_FIELDS}
        for r in rows
        if r.bill_no is not None and r.period not in in_progress
    ]
    if not bills:
        raise errors.NotFound("no unpaid bills")
    first = rows[0]
    snapshot = {
        "customer": {"id": first.cid, "name": first.name, "address": first.address, "tariff": first.tariff},
        "bills": bills,
    }
    token = secrets.token_hex(16)
    conn.execute(
        SAVE,
        {
            "token": token,
            "partner": partner_code,
            "cid": cid,
            "snapshot": snapshot,
            "now": now,
            "expires": now + dt.timedelta(seconds=ttl),
        },
    )
    return {"token": token, **snapshot}


def purge_expired(conn: sa.Connection, now: dt.datetime | None = None) -> int:
    return conn.execute(
        sa.text("delete from inquiry where expires_at <= coalesce(:now, now())"), {"now": now}
    ).rowcount
