"""Inquiry: a customer's unpaid bills and the snapshot a payment is checked against."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from ..infra.sql import queries
from . import errors

Q = queries("inquiry")
BILL_FIELDS = (
    "bill_no period meter_start meter_end usage water admin_fee admin_vat late_fee installment total"
).split()


@dataclass(frozen=True)
class Inquiry:
    """What a partner is shown: the token, the customer and the unpaid bills (dicts of
    ``BILL_FIELDS``, oldest first)."""

    token: str
    customer: dict
    bills: list[dict]
    expires_at: dt.datetime


def inquire(
    conn: sa.Connection, ledger: sa.Connection, partner_code: str, cid: str, now: dt.datetime, ttl: int
) -> Inquiry:
    """The customer and unpaid bills, saved under a new token for ``ttl`` seconds."""
    rows = ledger.execute(Q["bills"], {"cid": cid}).all()
    if not rows:
        raise errors.NotFound("customer not found")
    in_progress = {r.period for r in conn.execute(Q["in_progress"], {"cid": cid})} if rows[0].bill_no else set()
    bills = [
        {f: getattr(r, f) for f in BILL_FIELDS}
        for r in rows
        if r.bill_no is not None and r.period not in in_progress
    ]
    if not bills:
        raise errors.NotFound("no unpaid bills")
    first = rows[0]
    customer = {"id": first.cid, "name": first.name, "address": first.address, "tariff": first.tariff}
    token = secrets.token_hex(16)
    expires = now + dt.timedelta(seconds=ttl)
    snapshot = json.dumps({"customer": customer, "bills": bills}, separators=(",", ":"))
    conn.execute(
        Q["save"],
        {"token": token, "partner": partner_code, "cid": cid, "snapshot": snapshot, "now": now, "expires": expires},
    )
    return Inquiry(token, customer, bills, expires)


def purge_expired(conn: sa.Connection, now: dt.datetime) -> int:
    return conn.execute(Q["purge_expired"], {"now": now}).rowcount
