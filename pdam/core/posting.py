"""Posting: applying a recorded payment to the billing ledger, exactly once.

The payment row lock serialises every attempt on one payment; a payment that
is already final is left alone, so a job that runs twice changes nothing. The
ledger is changed only by a guarded update keyed by the payment's nob, so a
retry after a crash between the ledger's commit and ours (separate ledger
database) recognises "already paid by this payment".

With one database, posting is one statement (``post_payment_v1``); with a
separate ledger the same functions run in three steps, the bills paid in the
ledger passed to the last one. Either way the outcome rules exist once, in
``finish_posting_v1`` (sql/005_functions.sql). The job server runs the one-database
case on its own async connection (``post_async``: the same function).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg
import sqlalchemy as sa

from ..infra import adb, queue
from ..infra.sql import queries
from . import errors, states

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
    """``was`` is the payment's status before this run; ``payment`` is its row when this
    run finished it (None when it was final already: nothing changed)."""

    was: str
    payment: dict | None

    @property
    def status(self) -> str:
        return self.payment["status"] if self.payment else self.was


def post(conn: sa.Connection, ledger: sa.Connection, payment_id: int, now: dt.datetime) -> Posted:
    """Apply payment ``payment_id``. With a separate ledger the caller commits ``ledger``
    before ``conn``."""
    if ledger is conn:
        row = conn.execute(Q["post"], {"id": payment_id, "now": now}).one_or_none()
    else:
        row = _post_to_separate_ledger(conn, ledger, payment_id, now)
    if row is not None:
        return Posted(states.CREATED, row._asdict())
    return _unchanged(payment_id, conn.execute(Q["status"], {"id": payment_id}).scalar())


async def post_async(conn: psycopg.AsyncConnection, payment_id: int, now: dt.datetime) -> Posted:
    """``post`` with the ledger in this database, on an async psycopg connection (the job
    server's own, no transaction open): the same function, rows as dicts.

    A payment without a callback has nothing to record with its outcome: it is posted by
    one statement that commits by itself (``post_alone``, one round trip instead of
    three). Any other payment is posted in the caller's transaction, which the caller
    commits with the callback it records."""
    params = {"id": payment_id, "now": now}
    found = await adb.rows_alone(conn, Q["post_alone"], params)
    if not found:
        found = await adb.rows(conn, Q["post"], params)
    if found:
        return Posted(states.CREATED, found[0])
    status = await adb.rows(conn, Q["status"], {"id": payment_id})
    return _unchanged(payment_id, status[0]["status"] if status else None)


def _unchanged(payment_id: int, was: str | None) -> Posted:
    """The outcome of a run that finished nothing: the payment's status ``was`` (read after
    the posting statement, under its row lock)."""
    if was is None:
        raise PaymentMissing(f"payment {payment_id} does not exist")
    if was == states.CREATED:  # impossible under the row lock; never report a wrong outcome
        raise errors.PdamError(f"payment {payment_id} changed under its lock")
    return Posted(was, None)  # final already: a job that runs twice changes nothing


def _post_to_separate_ledger(conn: sa.Connection, ledger: sa.Connection, payment_id: int, now: dt.datetime):
    payment = conn.execute(Q["lock"], {"id": payment_id}).one_or_none()
    if payment is None or payment.status != states.CREATED:
        return None
    bills = ledger.execute(
        Q["pay_bills"],
        {"nob": payment.nob, "customer_id": payment.customer_id, "periods": payment.periods, "now": now},
    ).all()
    paid = {name: [getattr(bill, name) for bill in bills] for name in BILL_COLUMNS}
    return conn.execute(
        Q["finish"], {"id": payment_id, "now": now, "bill_id": paid.pop("id"), **paid}
    ).one_or_none()


def flag_stuck(conn: sa.Connection, payment_id: int, reason: str, attempts: int, now: dt.datetime) -> bool:
    """Mark a payment that could not be posted for operators; it stays ``created``."""
    params = {"id": payment_id, "reason": reason, "attempts": attempts, "now": now}
    return bool(conn.execute(Q["flag_stuck"], params).rowcount)


def requeue(conn: sa.Connection, nob: str) -> int:
    """Put a payment stuck in posting back in the queue; return the new job id."""
    row = conn.execute(Q["lock_by_nob"], {"nob": nob}).one_or_none()
    if row is None:
        raise errors.NotFound(f"no payment with nob {nob}")
    if row.status != states.CREATED:
        raise errors.Conflict(f"payment {nob} is already final ({row.status}); nothing to post")
    conn.execute(Q["unflag"], {"id": row.id})
    return queue.defer(conn, queue.POST_PAYMENT, queue=queue.POSTING_QUEUE, payment_id=row.id)
