"""Inquiry: a customer's unpaid bills and the snapshot a payment is checked against."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from ..infra import db
from ..infra.sql import queries
from . import errors

Q = queries("inquiry")


@dataclass(frozen=True)
class Inquiry:
    """What a partner is shown: the token, the customer (``id name address tariff``) and
    the unpaid bills, oldest first (dicts of ``bill_no period meter_start meter_end usage
    water admin_fee admin_vat late_fee installment total``: ``customer_bills_v1``'s)."""

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
    max_bills: int | None = None,
) -> Inquiry:
    """The customer and unpaid bills, saved under a new token for ``ttl`` seconds: one
    statement with the ledger in this database, else a read of the ledger and one statement
    of ours; each is atomic on its own (no transaction needed; they run in the caller's
    when it has one open). What the ledger gives is ``customer_bills_v1``'s; periods a
    payment not posted yet holds are not shown (``shown_bills_v1``).

    With ``reference`` (the partner's own id of the inquiry) the inquiry is bound to it:
    the same reference for the same customer while it lives answers that inquiry again
    (same token, same bills); used for another customer it is ReferenceReused. An
    expired one no payment used is renewed with the current bills.

    ``max_bills`` (with a reference only) caps what is shown and saved to the oldest
    ``max_bills`` unpaid bills: the inquiry, and so its payment, covers exactly those; the
    rest are shown by a later inquiry. Without it every unpaid bill is shown.
    """
    if max_bills is not None and reference is None:
        raise ValueError("max_bills needs a reference")
    if reference is not None:
        known = by_reference(conn, partner_code, reference)
        if known is not None:
            if known.customer_id != cid:
                raise _reused(reference)
            if known.expires_at > now:
                return _from_row(known)
    token = secrets.token_hex(16)
    expires = now + dt.timedelta(seconds=ttl)
    params = {"token": token, "partner": partner_code, "cid": cid, "now": now, "expires": expires}
    if reference is None and ledger is conn:  # one statement: read, filter, save
        found = db.rows_alone(conn, Q["inquire"], params)
    else:
        found = _save_from_ledger(conn, ledger, params, reference, max_bills)
    if not found:
        raise errors.UnknownCustomer("customer not found")
    saved = found[0]
    if not saved.bills:
        raise errors.NothingToPay("no unpaid bills")
    if saved.token is not None:
        return Inquiry(saved.token, saved.customer, saved.bills, expires)
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


def _save_from_ledger(
    conn: sa.Connection, ledger: sa.Connection, params: dict, reference: str | None, max_bills: int | None
) -> list:
    """``inquire``'s statement in two: the ledger's read (its own database, or a bound
    inquiry's), then ours, with or without the reference; the same rows."""
    found = db.rows_alone(ledger, Q["bills"], {"cid": params["cid"]})
    if not found:
        return []
    params = params | {"customer": json.dumps(found[0].customer), "bills": json.dumps(found[0].bills)}
    if reference is None:
        return db.rows_alone(conn, Q["save"], params)
    return db.rows_alone(
        conn, Q["save_with_reference"], params | {"reference": reference, "max_bills": max_bills}
    )


def customer_exists(ledger: sa.Connection, cid: str) -> bool:
    """Whether the ledger knows customer ``cid`` (a read of ``customer_bills_v1``)."""
    return bool(db.rows_alone(ledger, Q["bills"], {"cid": cid}))


def _reused(reference: str) -> errors.ReferenceReused:
    return errors.ReferenceReused(f"reference {reference} was already used for another customer")


def by_reference(conn: sa.Connection, partner_code: str, reference: str) -> sa.Row | None:
    """The partner's inquiry bound to ``reference`` (live or expired), if it still exists."""
    return conn.execute(Q["by_reference"], {"partner": partner_code, "reference": reference}).one_or_none()


def _from_row(row: sa.Row) -> Inquiry:
    return Inquiry(row.token, row.snapshot["customer"], row.snapshot["bills"], row.expires_at)


def purge_expired(conn: sa.Connection, now: dt.datetime) -> int:
    return conn.execute(Q["purge_expired"], {"now": now}).rowcount
