"""Posting: applying a recorded payment to the billing ledger, exactly once.

The payment row lock serialises every attempt on one payment; a payment that
is already final is left alone, so a job that runs twice changes nothing. The
ledger is changed only by a guarded update keyed by the payment's nob, so a
retry after a crash between the ledger's commit and ours (separate ledger
database) recognises "already paid by this payment".

With one database, posting is one statement (lock, pay, outcome, meta); with a
separate ledger the same SQL runs in three steps, the bills paid in the ledger
passed to the last one. Either way the outcome rules exist once, in ``FINISH``.
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

# What posting reads of a paid bill, with its SQL type.
BILL_COLUMNS = {
    "id": "bigint", "bill_no": "text", "period": "text", "water": "bigint", "admin_fee": "bigint",
    "admin_vat": "bigint", "late_fee": "bigint", "installment": "bigint", "total": "bigint",
}
LOCK_PAYMENT = (
    "select id, customer_id, amount, periods, nob, status, callback_url is not null as has_callback"
    " from payment where id = :id for update"
)
# The bills of payment ``p``'s periods that are unpaid or already paid by it (a retry
# after a crash between the ledger's commit and ours), paid by it; nothing once it is final.
PAY_BILLS = (
    "update bill set paid_by = p.nob, paid_at = case when bill.paid_by is null then :now else bill.paid_at end"
    " from p where p.status = 'created' and bill.customer_id = p.customer_id and bill.period = any(p.periods)"
    " and (bill.paid_by is null or bill.paid_by = p.nob)"
    " returning " + ", ".join(f"bill.{name}" for name in BILL_COLUMNS)
)
# From payment ``p`` and the bills ``paid`` for it: the outcome (the contract's rules),
# the payment's meta, the bills as paid and the problem periods. Guarded: nothing
# changes unless the payment was still ``created``.
FINISH = (
    " meta as (select p.id, p.status as was, p.has_callback, p.amount,"
    "  coalesce((select sum(total) from paid), 0) as paid_total,"
    "  array(select period from paid order by period) as paid_periods,"
    "  array(select x from unnest(p.periods) as x where x not in (select period from paid) order by x)"
    "   as problem_periods from p),"
    " outcome as (select meta.*, case when cardinality(paid_periods) = 0 then 'rejected'"
    "  when cardinality(problem_periods) > 0 or paid_total <> amount then 'changed'"
    "  else 'accepted' end as status from meta),"
    " finished as (update payment set status = outcome.status, posted_at = :now, paid_total = outcome.paid_total,"
    "  paid_periods = outcome.paid_periods, problem_periods = outcome.problem_periods,"
    "  stuck_at = null, stuck_reason = null"
    "  from outcome where payment.id = outcome.id and payment.status = 'created'"
    "  returning payment.id),"
    " set_paid as (update payment_period pp set bill_id = paid.id, bill_no = paid.bill_no, water = paid.water,"
    "  admin_fee = paid.admin_fee, admin_vat = paid.admin_vat, late_fee = paid.late_fee,"
    "  installment = paid.installment, paid = true"
    "  from finished, paid where pp.payment_id = finished.id and pp.period = paid.period),"
    " set_problems as (update payment_period pp set paid = false, live = false from finished, outcome"
    "  where pp.payment_id = finished.id and pp.period = any(outcome.problem_periods))"
    " select outcome.was, outcome.status, outcome.has_callback, finished.id is not null as finished"
    " from outcome left join finished on true"
)

# Same database: the whole posting in one statement (one round trip).
POST = sa.text(f"with p as ({LOCK_PAYMENT}), paid as ({PAY_BILLS}), {FINISH}")
# Separate ledger: lock the payment, pay its bills in the ledger, then finish with the
# bills the ledger returned (passed as arrays).
LOCK = sa.text(LOCK_PAYMENT)
PAY_SEPARATE_LEDGER = sa.text(
    "with p as (select cast(:nob as text) as nob, cast(:customer_id as text) as customer_id,"
    f" cast(:periods as text[]) as periods, 'created' as status) {PAY_BILLS}"
)
FINISH_SEPARATE_LEDGER = sa.text(
    f"with p as ({LOCK_PAYMENT}), paid as (select * from unnest("
    + ", ".join(f"cast(:paid_{name} as {kind}[])" for name, kind in BILL_COLUMNS.items())
    + f") as paid({', '.join(BILL_COLUMNS)})), {FINISH}"
)


class PaymentMissing(errors.PdamError):
    """The payment of this job does not exist"""


def post(conn: sa.Connection, ledger: sa.Connection, payment_id: int, now: dt.datetime) -> str:
    """Apply payment ``payment_id``; return its (final) status.

    With a separate ledger the caller commits ``ledger`` before ``conn``.
    """
    if ledger is conn:
        row = conn.execute(POST, {"id": payment_id, "now": now}).one_or_none()
    else:
        row = _post_to_separate_ledger(conn, ledger, payment_id, now)
    if row is None:
        raise PaymentMissing(f"payment {payment_id} does not exist")
    if row.was != "created":
        return row.was  # final already: a job that runs twice changes nothing
    if not row.finished:  # impossible under the row lock; never report a wrong outcome
        raise errors.PdamError(f"payment {payment_id} changed under its lock")
    if row.has_callback:
        webhooks.enqueue(conn, payment_id, row.status, now)  # the final callback, with the outcome
    return row.status


def _post_to_separate_ledger(conn: sa.Connection, ledger: sa.Connection, payment_id: int, now: dt.datetime):
    payment = conn.execute(LOCK, {"id": payment_id}).one_or_none()
    bills = []
    if payment is not None and payment.status == "created":
        bills = ledger.execute(
            PAY_SEPARATE_LEDGER,
            {"nob": payment.nob, "customer_id": payment.customer_id, "periods": payment.periods, "now": now},
        ).all()
    paid = {f"paid_{name}": [getattr(bill, name) for bill in bills] for name in BILL_COLUMNS}
    return conn.execute(FINISH_SEPARATE_LEDGER, {"id": payment_id, "now": now, **paid}).one_or_none()


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
