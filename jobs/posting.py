"""Posting: apply recorded payments to the billing ledger and record the final callback
(the core's ``posting.settle``), commit, log the outcome, decide retry or give up.

The task is async: with the ledger in this database (the default) an attempt runs on a
connection of the worker's own Procrastinate pool (``run_async``: no thread, no second
pool, no SQLAlchemy on the hot path); with a separate ledger it runs the sync ``run`` in a
thread. Both are thin drivers of the same core function (written once, on the port);
they own the transactions and share the retry decision, the stuck flag and the log lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import procrastinate
import psycopg

from pdam.core import errors, posting
from pdam.infra import logs, queue
from pdam.infra.db import rollback_quietly
from pdam.infra.runtime import Runtime

from . import RetryOnType, app, current

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
            result = posting.settle(conn, ledger, payment_id, now)
            if ledger is not conn:
                ledger.commit()  # first the ledger: a crash before ours is recognised on retry
            conn.commit()
        except Exception as exc:
            if conn is not None:
                rollback_quietly(conn)
            if ledger is not None and ledger is not conn:
                rollback_quietly(ledger)
            raise _failed(exc, rt, payment_id, attempt) from exc
    _log_posted(result, payment_id, attempt)
    return result.status


Connect = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection]]


async def run_async(rt: Runtime, connect: Connect, payment_id: int, attempt: int) -> str:
    """``run`` with the ledger in this database, on an async connection from ``connect``
    (the worker's pool: ``app.connector.pool.connection``, which commits the block's work at
    its end and rolls it back on error): the posting and its final callback commit together.
    A payment without a callback is posted by one statement committed on its own
    (``posting.post``'s ``post_alone``): there is nothing else to commit with it.
    """
    try:
        async with connect() as conn:
            result = await posting.settle.aio(conn, None, payment_id, rt.now())
    except Exception as exc:
        raise await asyncio.to_thread(_failed, exc, rt, payment_id, attempt) from exc
    _log_posted(result, payment_id, attempt)
    return result.status


def _failed(exc: Exception, rt: Runtime, payment_id: int, attempt: int) -> errors.Retry | errors.GiveUp:
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
        _flag_stuck(rt, payment_id, decision.message, attempt)
    return decision


def _log_posted(result: posting.Posted, payment_id: int, attempt: int) -> None:
    """The operators' line of a payment this run finished (none when it was final already)."""
    if result.payment is not None:
        with logs.bound(nob=result.payment.nob):
            log.info("posted", extra={"payment_id": payment_id, "outcome": result.status, "attempt": attempt})


def _flag_stuck(rt: Runtime, payment_id: int, reason: str, attempt: int) -> None:
    try:
        with rt.database.engine.begin() as fresh:
            posting.flag_stuck(fresh, payment_id, reason, attempt, rt.now())
    except Exception:
        log.exception("could not flag payment %s as stuck", payment_id)


@app.task(
    name=queue.POST_PAYMENT,
    queue=queue.POSTING_QUEUE,
    pass_context=True,
    retry=RetryOnType("POSTING_RETRY_SECONDS"),
)
async def post_payment(context: procrastinate.JobContext, payment_id: int) -> str:
    attempt = context.job.attempts + 1
    rt = current()
    if rt.database.separate_ledger:
        return await asyncio.to_thread(run, rt, payment_id, attempt)
    return await run_async(rt, app.connector.pool.connection, payment_id, attempt)
