"""Posting: applying a recorded payment to the billing ledger, exactly once.

The payment row lock serialises every attempt on one payment; a payment that
is already final is left alone, so a job that runs twice changes nothing. The
ledger is changed only by a guarded update keyed by the payment's nob, so a
retry after a crash between the ledger's commit and ours (separate ledger
database) recognises "already paid by this payment".
"""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa
from flask import current_app

from . import clock, db, errors, webhooks

log = logging.getLogger(__name__)

STATUS_CODES = {"created": 201, "accepted": 202, "changed": 206, "rejected": 409}
STATUS_MESSAGES = {
    "created": "payment in progress",
    "accepted": "payment done",
    "changed": "suspect data",
    "rejected": "paid before",
}

LOCK_PAYMENT = sa.text(
    "select id, customer_id, amount, periods, nob, status, callback_url is not null as has_callback"
    " from payment where id = :id for update"
)
PAY_BILLS = sa.text(
    "update bill set paid_by = :nob, paid_at = case when paid_by is null then :now else paid_at end"
    " where customer_id = :cid and period = any(:periods) and (paid_by is null or paid_by = :nob)"
    " returning id, bill_no, period, water, admin_fee, admin_vat, late_fee, installment, total"
)
# The outcome, the bills as paid and the problem periods, in one statement (guarded:
# nothing changes unless the payment was still ``created``; returns its id if it was).
FINISH = sa.text(
    "with finished as ("
    "  update payment set status = :status, posted_at = :now, paid_total = :paid_total,"
    "  paid_periods = :paid_periods, problem_periods = :problem_periods,"
    "  stuck_at = null, stuck_reason = null"
    "  where id = :id and status = 'created' returning id),"
    " paid as ("
    "  update payment_period pp set bill_id = b.bill_id, bill_no = b.bill_no, water = b.water,"
    "  admin_fee = b.admin_fee, admin_vat = b.admin_vat, late_fee = b.late_fee,"
    "  installment = b.installment, paid = true"
    "  from finished, unnest(cast(:paid_periods as text[]), cast(:bill_ids as bigint[]),"
    "    cast(:bill_nos as text[]), cast(:water as bigint[]), cast(:admin_fee as bigint[]),"
    "    cast(:admin_vat as bigint[]), cast(:late_fee as bigint[]), cast(:installment as bigint[]))"
    "    as b(period, bill_id, bill_no, water, admin_fee, admin_vat, late_fee, installment)"
    "  where pp.payment_id = finished.id and pp.period = b.period),"
    " problems as ("
    "  update payment_period pp set paid = false, live = false from finished"
    "  where pp.payment_id = finished.id and pp.period = any(:problem_periods))"
    " select id from finished"
)
BILL_AMOUNTS = ("water", "admin_fee", "admin_vat", "late_fee", "installment")


class PaymentMissing(errors.PdamError):
    """The payment of this job does not exist"""


def outcome(amount: int, paid_total: int, paid: list[str], problems: list[str]) -> str:
    if not paid:
        return "rejected"
    if problems or paid_total != amount:
        return "changed"
    return "accepted"


def post(conn: sa.Connection, ledger: sa.Connection, payment_id: int, now: dt.datetime) -> str:
    """Apply payment ``payment_id``; return its (final) status.

    With a separate ledger the caller commits ``ledger`` before ``conn``.
    """
    payment = conn.execute(LOCK_PAYMENT, {"id": payment_id}).one_or_none()
    if payment is None:
        raise PaymentMissing(f"payment {payment_id} does not exist")
    if payment.status != "created":
        return payment.status
    bills = ledger.execute(
        PAY_BILLS, {"nob": payment.nob, "now": now, "cid": payment.customer_id, "periods": payment.periods}
    ).all()
    bills = sorted(bills, key=lambda b: b.period)
    paid = [b.period for b in bills]
    problems = sorted(set(payment.periods) - set(paid))
    paid_total = sum(b.total for b in bills)
    status = outcome(payment.amount, paid_total, paid, problems)
    finished = conn.execute(
        FINISH,
        {
            "id": payment_id,
            "status": status,
            "now": now,
            "paid_total": paid_total,
            "paid_periods": paid,
            "problem_periods": problems,
            "bill_ids": [b.id for b in bills],
            "bill_nos": [b.bill_no for b in bills],
            **{name: [getattr(b, name) for b in bills] for name in BILL_AMOUNTS},
        },
    ).scalar()
    if finished is None:  # impossible under the row lock; never report a wrong outcome
        raise errors.PdamError(f"payment {payment_id} changed under its lock")
    if payment.has_callback:
        webhooks.enqueue(conn, payment_id, status, now)  # the final callback, with the outcome
    return status


def flag_stuck(conn: sa.Connection, payment_id: int, reason: str, attempts: int, now: dt.datetime) -> bool:
    """Mark a payment that could not be posted for operators; it stays ``created``."""
    return bool(
        conn.execute(
            sa.text(
                "update payment set stuck_at = :now, stuck_reason = left(:reason, 500),"
                " posting_attempts = :attempts where id = :id and status = 'created'"
            ),
            {"id": payment_id, "reason": reason, "attempts": attempts, "now": now},
        ).rowcount
    )


def requeue(conn: sa.Connection, nob: str) -> int:
    """Put a payment stuck in posting back in the queue; return the new job id."""
    from . import payment as payment_module
    from . import queue

    row = conn.execute(
        sa.text("select id, status from payment where nob = :nob for update"), {"nob": nob}
    ).one_or_none()
    if row is None:
        raise errors.NotFound(f"no payment with nob {nob}")
    if row.status != "created":
        raise errors.Conflict(f"payment {nob} is already final ({row.status}); nothing to post")
    conn.execute(
        sa.text("update payment set stuck_at = null, stuck_reason = null where id = :id"), {"id": row.id}
    )
    return queue.defer(conn, payment_module.POST_TASK, queue=queue.POSTING_QUEUE, payment_id=row.id)


def _rollback(conn: sa.Connection) -> None:
    try:
        conn.rollback()
    except Exception:  # the connection may be gone; the pool discards it
        log.debug("rollback failed", exc_info=True)


def run_job(payment_id: int, attempt: int) -> str:
    """One posting attempt as the job server runs it: its own transaction(s).

    A failure that can pass is re-raised for the queue's retry; at the last
    attempt, or for a failure that cannot pass, the payment is flagged stuck
    for operators (it stays ``created`` and visible, ``payment requeue`` puts
    it back) and the error is re-raised so the job is recorded as failed.
    """
    conn, ledger = db.connection(), db.ledger_connection()
    try:
        status = post(conn, ledger, payment_id, clock.now())
        if ledger is not conn:
            ledger.commit()  # first the ledger: a crash before ours is recognised on retry
        conn.commit()
        return status
    except Exception as exc:
        _rollback(conn)
        if ledger is not conn:
            _rollback(ledger)
        final = not errors.is_transient(exc) or attempt >= current_app.config["POSTING_MAX_ATTEMPTS"]
        if final and not isinstance(exc, PaymentMissing):
            reason = f"attempt {attempt}: {type(exc).__name__}: {exc}"
            try:
                with db.get_db().engine.begin() as fresh:
                    flag_stuck(fresh, payment_id, reason, attempt, clock.now())
            except Exception:
                log.exception("could not flag payment %s as stuck", payment_id)
        raise
