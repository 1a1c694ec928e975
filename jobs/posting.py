"""Posting: apply recorded payments to the billing ledger and record the final callback
(the core's ``posting.settle``), commit, log the outcome, decide retry or give up.

The task is async and exists once (``run``): an attempt runs on a connection of the
worker's own Procrastinate pool (no thread, no second pool, no SQLAlchemy), a separate
billing ledger on an async connection of its own; it owns the transactions, the retry
decision, the stuck flag and the log lines.
"""

from __future__ import annotations

import asyncio
import logging

import procrastinate
import psycopg

from pdam.core import errors, posting
from pdam.infra import deadline, logs, queue
from pdam.infra.runtime import Runtime

from . import Connect, RetryOnType, app, current, ledger_connection

log = logging.getLogger(__name__)


async def run(
    rt: Runtime, connect: Connect, payment_id: int, attempt: int, callback: bool | None = None
) -> str:
    """One posting attempt on a connection from ``connect`` (the worker's pool:
    ``app.connector.pool.connection``, which rolls the block's work back on error); return
    the payment's status. The posting and its final callback commit together; a payment
    without a callback is posted by one statement committed on its own (``posting.post``'s
    ``post_alone``). With a separate billing ledger the ledger has a connection of its own,
    committed first: a crash before ours is recognised on retry. ``callback``: whether the
    payment has a callback, when its job says so (``posting.post``).

    Bounded by ``REQUEST_DEADLINE_SECONDS``: past it the attempt is cancelled (psycopg sends
    the server a cancel when the task is cancelled) and ends as one that can pass; a commit
    that received a WARNING (a synchronous standby's wait cancelled: committed here, perhaps
    not replicated) is not confirmed either, and the attempt is made again (posting is
    idempotent: a payment posted already is left as it is).

    A failure raises ``Retry`` while it can pass and attempts remain, else ``GiveUp``;
    giving up flags the payment stuck for operators (it stays ``created`` and visible,
    ``payment requeue`` puts it back), except for a payment that does not exist.
    """
    notices = deadline.Notices()
    try:
        async with asyncio.timeout(rt.settings["REQUEST_DEADLINE_SECONDS"]):
            async with connect() as conn:
                conn.add_notice_handler(notices)
                try:
                    # a statement committed alone (``post_alone``) commits inside settle
                    with deadline.confirm_commit(notices):
                        result = await _settle(rt, conn, payment_id, attempt, callback)
                        await conn.commit()
                finally:
                    conn.remove_notice_handler(notices)
    except TimeoutError as exc:
        raise await _failed(deadline.DeadlineExceeded(), rt, connect, payment_id, attempt) from exc
    except Exception as exc:
        raise await _failed(exc, rt, connect, payment_id, attempt) from exc
    _log_posted(result, payment_id, attempt)
    return result.status


async def _settle(
    rt: Runtime, conn: psycopg.AsyncConnection, payment_id: int, attempt: int, callback: bool | None
) -> posting.Posted:
    """``posting.settle`` on ``conn``; a separate ledger's work on its own connection,
    committed (and confirmed) before ``conn``'s."""
    if not rt.database.separate_ledger:
        return await posting.settle.aio(conn, None, payment_id, rt.now(), attempt, callback)
    ledger_notices = deadline.Notices()
    async with await ledger_connection(rt) as ledger:
        ledger.add_notice_handler(ledger_notices)
        result = await posting.settle.aio(conn, ledger, payment_id, rt.now(), attempt)
        with deadline.confirm_commit(ledger_notices):
            await ledger.commit()
    return result


async def _failed(
    exc: Exception, rt: Runtime, connect: Connect, payment_id: int, attempt: int
) -> errors.Retry | errors.GiveUp:
    """The retry decision of a failed attempt, logged; giving up flags the payment stuck
    (except one that does not exist)."""
    decision = errors.retry_decision(exc, attempt, rt.settings["POSTING_MAX_ATTEMPTS"])
    log.warning(
        "posting of payment %s: %s",
        payment_id,
        decision.message,
        extra={"payment_id": payment_id, "outcome": type(decision).__name__.lower()},
    )
    if isinstance(decision, errors.GiveUp) and not isinstance(exc, posting.PaymentMissing):
        await _flag_stuck(rt, connect, payment_id, decision.message, attempt)
    return decision


def _log_posted(result: posting.Posted, payment_id: int, attempt: int) -> None:
    """The operators' line of a payment this run finished (none when it was final already)."""
    if result.payment is not None:
        with logs.bound(nob=result.payment.nob):
            log.info("posted", extra={"payment_id": payment_id, "outcome": result.status, "attempt": attempt})


async def _flag_stuck(rt: Runtime, connect: Connect, payment_id: int, reason: str, attempt: int) -> None:
    try:
        async with connect() as fresh:
            await posting.flag_stuck.aio(fresh, payment_id, reason, attempt, rt.now())
    except Exception:
        log.exception("could not flag payment %s as stuck", payment_id)


@app.task(
    name=queue.POST_PAYMENT,
    queue=queue.POSTING_QUEUE,
    pass_context=True,
    retry=RetryOnType("POSTING_RETRY_SECONDS"),
)
async def post_payment(
    context: procrastinate.JobContext, payment_id: int, callback: bool | None = None
) -> str:
    """``callback`` (whether the payment has one) is absent from jobs queued before it
    existed and from ``payment requeue``'s."""
    attempt = context.job.attempts + 1
    return await run(current(), app.connector.pool.connection, payment_id, attempt, callback)
