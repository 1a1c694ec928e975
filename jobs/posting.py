"""Posting: apply recorded payments to the billing ledger (the core's ``posting.post``),
commit, report the outcome (callback, log line), decide retry or give up."""

from __future__ import annotations

import contextlib
import logging

import procrastinate

from pdam.core import errors, posting
from pdam.infra import logs, queue
from pdam.infra.db import rollback_quietly
from pdam.infra.runtime import Runtime
from pdam.peti import callbacks

from . import RetryOnType, app, cfg, runtime

log = logging.getLogger(__name__)


def run(rt: Runtime, payment_id: int, attempt: int) -> str:
    """One posting attempt in its own transaction(s); return the payment's status.

    A failure raises ``Retry`` while it can pass and attempts remain, else ``GiveUp``;
    giving up flags the payment stuck for operators (it stays ``created`` and visible,
    ``payment requeue`` puts it back), except for a payment that does not exist.
    """
    db = rt.database
    with contextlib.ExitStack() as stack:
        conn = ledger = None
        try:
            # Inside the try: a database that cannot be reached is a failure that can pass.
            conn = stack.enter_context(db.engine.connect())
            ledger = stack.enter_context(db.ledger_engine.connect()) if db.separate_ledger else conn
            now = rt.now()
            result = posting.post(conn, ledger, payment_id, now)
            if result.payment is not None:
                callbacks.enqueue(conn, result.payment, result.status, now)  # the final callback
            if ledger is not conn:
                ledger.commit()  # first the ledger: a crash before ours is recognised on retry
            conn.commit()
        except Exception as exc:
            if conn is not None:
                rollback_quietly(conn)
            if ledger is not None and ledger is not conn:
                rollback_quietly(ledger)
            decision = errors.retry_decision(exc, attempt, rt.settings["POSTING_MAX_ATTEMPTS"])
            if isinstance(decision, errors.GiveUp) and not isinstance(exc, posting.PaymentMissing):
                _flag_stuck(rt, payment_id, decision.message, attempt)
            log.warning("posting of payment %s: %s", payment_id, decision.message,
                        extra={"payment_id": payment_id, "outcome": type(decision).__name__.lower()})
            raise decision from exc
    if result.payment is not None:
        with logs.bound(nob=result.payment["nob"]):
            log.info("posted", extra={"payment_id": payment_id, "outcome": result.status, "attempt": attempt})
    return result.status


def _flag_stuck(rt: Runtime, payment_id: int, reason: str, attempt: int) -> None:
    try:
        with rt.database.engine.begin() as fresh:
            posting.flag_stuck(fresh, payment_id, reason, attempt, rt.now())
    except Exception:
        log.exception("could not flag payment %s as stuck", payment_id)


@app.task(
    name=queue.POST_PAYMENT, queue=queue.POSTING_QUEUE, pass_context=True,
    retry=RetryOnType(cfg["POSTING_RETRY_SECONDS"]),
)
def post_payment(context: procrastinate.JobContext, payment_id: int) -> str:
    return run(runtime, payment_id, attempt=context.job.attempts + 1)
