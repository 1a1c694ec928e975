"""Inquiry: a customer's unpaid bills and the snapshot a payment is checked against."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass

from ..infra import port
from ..infra.port import Plan
from ..infra.sql import queries
from . import errors
from .records import Bill, Customer, Shown

Q = queries("inquiry")


@dataclass(frozen=True)
class Inquiry:
    """What a partner is shown: the token, the customer and the unpaid bills, oldest first
    (records of what ``customer_bills_v1`` gives), until ``expires_at``."""

    token: str
    customer: Customer
    bills: tuple[Bill, ...]
    expires_at: dt.datetime


@dataclass(frozen=True)
class Bound:
    """An inquiry bound to a partner's reference, as saved: its ``snapshot`` is what it
    showed (``{"customer", "bills"}``)."""

    token: str
    customer_id: str
    snapshot: dict
    expires_at: dt.datetime


@port.plan
def inquire(
    db: port.Db,
    ledger,
    partner_code: str,
    cid: str,
    now: dt.datetime,
    ttl: int,
    reference: str | None = None,
    max_bills: int | None = None,
    sandbox: bool = False,
) -> Plan[Inquiry]:
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

    ``sandbox``: the sandbox's fixed test customers (sql/015_sandbox.sql), never the ledger,
    and the partner's sandbox inquiries only.
    """
    if max_bills is not None and reference is None:
        raise ValueError("max_bills needs a reference")
    if reference is not None:
        known = yield from by_reference.plan(db, partner_code, reference, sandbox)
        if known is not None:
            if known.customer_id != cid:
                raise _reused(reference)
            if known.expires_at > now:
                return _from_row(known)
    token = secrets.token_hex(16)
    expires = now + dt.timedelta(seconds=ttl)
    params = {"token": token, "partner": partner_code, "cid": cid, "now": now, "expires": expires}
    params |= {"sandbox": sandbox, "scope": partner_code if sandbox else ""}
    if reference is None and (sandbox or db.same(ledger)):  # one statement: read, filter, save
        saved = yield port.one(Q["sandbox_inquire" if sandbox else "inquire"], params, alone=True)
    else:
        saved = yield from _save_from_ledger(ledger, params, reference, max_bills)
    if saved is None:
        raise errors.UnknownCustomer("customer not found")
    if not saved.bills:
        raise errors.NothingToPay("no unpaid bills")
    if saved.token is not None:
        shown = Shown.from_json(saved.customer, saved.bills)
        return Inquiry(saved.token, shown.customer, shown.bills, expires)
    # The reference is held by a row the statement could not take: a concurrent inquiry
    # with the same reference (committed meanwhile: answer it), another customer's, or a
    # paid one.
    known = yield from by_reference.plan(db, partner_code, reference, sandbox)
    if known is None:
        raise errors.Conflict("a concurrent request changed the same data")
    if known.customer_id != cid:
        raise _reused(reference)
    if known.expires_at > now:
        return _from_row(known)
    raise errors.AlreadyPaid(f"the inquiry with reference {reference} was already paid")


def _save_from_ledger(ledger, params: dict, reference: str | None, max_bills: int | None) -> Plan:
    """``inquire``'s statement in two: the ledger's read (its own database, or a bound
    inquiry's), then ours, with or without the reference; the same row."""
    if params["sandbox"]:  # the test customers live with us
        found = yield port.one(Q["sandbox_bills"], {"cid": params["cid"]}, alone=True)
    else:
        found = yield port.one(Q["bills"], {"cid": params["cid"]}, alone=True, on=ledger)
    if found is None:
        return None
    params = params | {"customer": json.dumps(found.customer), "bills": json.dumps(found.bills)}
    if reference is None:
        return (yield port.one(Q["save"], params, alone=True))
    return (
        yield port.one(
            Q["save_with_reference"], params | {"reference": reference, "max_bills": max_bills}, alone=True
        )
    )


@port.plan
def customer_exists(ledger: port.Db, cid: str) -> Plan[bool]:
    """Whether the ledger knows customer ``cid`` (a read of ``customer_bills_v1``)."""
    return (yield from knows_customer(None, cid))


def knows_customer(ledger, cid: str, sandbox: bool = False) -> Plan[bool]:
    """``customer_exists`` in another plan: on ``ledger`` (None: the plan's own connection);
    ``sandbox``: one of the sandbox's test customers."""
    if sandbox:
        return (yield port.one(Q["sandbox_bills"], {"cid": cid}, alone=True)) is not None
    return (yield port.one(Q["bills"], {"cid": cid}, alone=True, on=ledger)) is not None


def _reused(reference: str) -> errors.ReferenceReused:
    return errors.ReferenceReused(f"reference {reference} was already used for another customer")


@port.plan
def by_reference(db: port.Db, partner_code: str, reference: str, sandbox: bool = False) -> Plan[Bound | None]:
    """The partner's inquiry bound to ``reference`` (live or expired), if it still exists."""
    params = {"partner": partner_code, "sandbox": sandbox, "reference": reference}
    row = yield port.one(Q["by_reference"], params)
    return None if row is None else Bound(row.token, row.customer_id, row.snapshot, row.expires_at)


def _from_row(row: Bound) -> Inquiry:
    shown = Shown.from_snapshot(row.snapshot)
    return Inquiry(row.token, shown.customer, shown.bills, row.expires_at)


@port.plan
def purge_expired(db: port.Db, now: dt.datetime) -> Plan[int]:
    return (yield port.count(Q["purge_expired"], {"now": now}))
