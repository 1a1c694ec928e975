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
    conn: sa.Connection,
    ledger: sa.Connection,
    partner_code: str,
    cid: str,
    now: dt.datetime,
    ttl: int,
    reference: str | None = None,
) -> Inquiry:
    """The customer and unpaid bills, saved under a new token for ``ttl`` seconds.

    With ``reference`` (the partner's own id of the inquiry) the inquiry is bound to it:
    the same reference for the same customer while it lives answers that inquiry again
    (same token, same bills); used for another customer it is ReferenceReused. An
    expired one no payment used is renewed with the current bills.
    """
    if reference is not None:
        known = by_reference(conn, partner_code, reference)
        if known is not None:
            if known.customer_id != cid:
                raise _reused(reference)
            if known.expires_at > now:
                return _from_row(known)
    rows = ledger.execute(Q["bills"], {"cid": cid}).all()
    if not rows:
        raise errors.UnknownCustomer("customer not found")
    in_progress = {r.period for r in conn.execute(Q["in_progress"], {"cid": cid})} if rows[0].bill_no else set()
    bills = [
        {f: getattr(r, f) for f in BILL_FIELDS}
        for r in rows
        if r.bill_no is not None and r.period not in in_progress
    ]
    if not bills:
        raise errors.NothingToPay("no unpaid bills")
    first = rows[0]
    customer = {"id": first.cid, "name": first.name, "address": first.address, "tariff": first.tariff}
    token = secrets.token_hex(16)
    expires = now + dt.timedelta(seconds=ttl)
    snapshot = json.dumps({"customer": customer, "bills": bills}, separators=(",", ":"))
    params = {"token": token, "partner": partner_code, "cid": cid, "snapshot": snapshot, "now": now,
              "expires": expires}
    if reference is None:
        conn.execute(Q["save"], params)
        return Inquiry(token, customer, bills, expires)
    saved = conn.execute(Q["save_with_reference"], {**params, "reference": reference}).one_or_none()
    if saved is not None:
        return Inquiry(saved.token, customer, bills, expires)
    # The reference is held by a row the statement could not take: a concurrent inquiry
    # with the same reference (committed meanwhile: answer it), another customer's, or a
    # paid one.
    known = by_reference(conn, partner_code, reference)
    if known is None:
        raise errors.Conflict("a concurrent request changed the same data")
    if known.customer_id != cid:
        raise _reused(reference)
    if known.expires_at > now:
        return _from_row(known)
    raise errors.AlreadyPaid(f"the inquiry with reference {reference} was already paid")


def _reused(reference: str) -> errors.ReferenceReused:
    return errors.ReferenceReused(f"reference {reference} was already used for another customer")


def by_reference(conn: sa.Connection, partner_code: str, reference: str) -> sa.Row | None:
    """The partner's inquiry bound to ``reference`` (live or expired), if it still exists."""
    return conn.execute(Q["by_reference"], {"partner": partner_code, "reference": reference}).one_or_none()


def _from_row(row: sa.Row) -> Inquiry:
    return Inquiry(row.token, row.snapshot["customer"], row.snapshot["bills"], row.expires_at)


def purge_expired(conn: sa.Connection, now: dt.datetime) -> int:
    return conn.execute(Q["purge_expired"], {"now": now}).rowcount
