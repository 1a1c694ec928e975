"""Posting: applying a recorded payment to the billing ledger, exactly once.

The payment row lock serialises every attempt on one payment; a payment that
is already final is left alone, so a job that runs twice changes nothing. The
ledger is changed only by a guarded update keyed by the payment's nob, so a
retry after a crash between the ledger's commit and ours (separate ledger
database) recognises "already paid by this payment".

With one database, posting is one statement (``post_payment_v1``); with a
separate ledger the same functions run in three steps, the bills paid in the
ledger passed to the last one. Either way the outcome rules exist once, in
``finish_posting_v1`` (sql/005_functions.sql). Each function here is written once, as a
plan (``infra/port.py``): the job server runs ``post`` on its own async connection, a
separate ledger's run and the CLI on SQLAlchemy connections.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..infra import port, queue
from ..infra.port import Plan
from ..infra.sql import queries
from . import errors, states, webhooks
from .records import Payment

Q = queries("posting")
BILL_COLUMNS = (
    "id",
    "bill_no",
    "period",
    "water",
    "admin_fee",
    "admin_vat",
    "late_fee",
    "installment",
    "total",
)


class PaymentMissing(errors.GiveUp):
    """The payment of this job does not exist"""


@dataclass(frozen=True)
class Posted:
    """``was`` is the payment's status before this run; ``payment`` is the payment when this
    run finished it (None when it was final already: nothing changed)."""

    was: str
    payment: Payment | None

    @property
    def status(self) -> str:
        return self.payment.status if self.payment else self.was


@port.plan
def post(
    db: port.Db, ledger, payment_id: int, now: dt.datetime, attempt: int = 1, callback: bool | None = None
) -> Plan[Posted]:
    """Apply payment ``payment_id``; ``ledger``: the billing ledger's connection (None, or
    the same connection: the ledger is in this database). With a separate ledger the
    caller commits ``ledger`` before ``db``.

    With the ledger in this database, a payment without a callback has nothing to record
    with its outcome: it is posted by one statement that commits by itself (``post_alone``,
    one round trip instead of three, when no transaction is open yet). Any other payment is
    posted in the caller's transaction, which the caller commits with the callback it
    records (``finish``). ``callback``: whether the payment has one, when known (its posting
    job says so): True skips the statement alone, which would find nothing to post.

    A sandbox payment is posted against the sandbox's test customers, never the ledger
    (``post_payment_v2``); ``attempt`` (the job's, from 1) is what its "ledger unreachable"
    customer counts."""
    params = {"id": payment_id, "now": now, "attempt": attempt}
    if db.same(ledger):
        row = None if callback else (yield port.one(Q["post_alone"], params, alone=True))
        if row is None:
            row = yield port.one(Q["post"], params)
    else:
        row = yield from _post_to_separate_ledger(ledger, payment_id, now, attempt)
    if row is not None:
        return Posted(states.CREATED, Payment.from_row(row))
    return _unchanged(payment_id, (yield port.scalar(Q["status"], {"id": payment_id})))


@port.plan
def settle(
    db: port.Db, ledger, payment_id: int, now: dt.datetime, attempt: int = 1, callback: bool | None = None
) -> Plan[Posted]:
    """``post``, and the final callback of a payment this run finished, recorded in the
    posting's transaction (the job server's attempt; the caller commits, a separate
    ``ledger`` first)."""
    result = yield from post.plan(db, ledger, payment_id, now, attempt, callback)
    if result.payment is not None:
        yield from webhooks.record.plan(db, result.payment, result.status, now)
    return result


def _unchanged(payment_id: int, was: str | None) -> Posted:
    """The outcome of a run that finished nothing: the payment's status ``was`` (read after
    the posting statement, under its row lock)."""
    if was is None:
        raise PaymentMissing(f"payment {payment_id} does not exist")
    if was == states.CREATED:  # impossible under the row lock; never report a wrong outcome
        raise errors.PdamError(f"payment {payment_id} changed under its lock")
    return Posted(was, None)  # final already: a job that runs twice changes nothing


def _post_to_separate_ledger(ledger, payment_id: int, now: dt.datetime, attempt: int) -> Plan:
    payment = yield port.one(Q["lock"], {"id": payment_id})
    if payment is None or payment.status != states.CREATED:
        return None
    params = {"nob": payment.nob, "customer_id": payment.customer_id, "periods": payment.periods, "now": now}
    if payment.sandbox:  # the test customers, on ours: never the ledger
        bills = yield port.fetch(Q["sandbox_pay_bills"], params | {"attempt": attempt})
    else:
        bills = yield port.fetch(Q["pay_bills"], params, on=ledger)
    paid = {name: [getattr(bill, name) for bill in bills] for name in BILL_COLUMNS}
    return (yield port.one(Q["finish"], {"id": payment_id, "now": now, "bill_id": paid.pop("id"), **paid}))


@port.plan
def flag_stuck(db: port.Db, payment_id: int, reason: str, attempts: int, now: dt.datetime) -> Plan[bool]:
    """Mark a payment that could not be posted for operators; it stays ``created``."""
    params = {"id": payment_id, "reason": reason, "attempts": attempts, "now": now}
    return bool((yield port.count(Q["flag_stuck"], params)))


@port.plan
def requeue(db: port.Db, nob: str) -> Plan[int]:
    """Put a payment stuck in posting back in the queue; return the new job id."""
    row = yield port.one(Q["lock_by_nob"], {"nob": nob})
    if row is None:
        raise errors.NotFound(f"no payment with nob {nob}")
    if row.status != states.CREATED:
        raise errors.Conflict(f"payment {nob} is already final ({row.status}); nothing to post")
    yield port.count(Q["unflag"], {"id": row.id})
    return (yield port.defer(queue.POST_PAYMENT, queue=queue.POSTING_QUEUE, payment_id=row.id))
