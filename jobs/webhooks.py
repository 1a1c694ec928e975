"""Webhook delivery: a callback lane's drain (``drain``: its pending deliveries in order,
one HTTP attempt each, recorded, with the retry decision), from the core's delivery state,
the wire format of the protocol the callback came through (the core's ``events``
registry) and infra's guarded client.

Async, like posting, on connections of the worker's own Procrastinate pool (``connect``):
the HTTP call alone runs in a thread (urllib3, guarded and bounded by
WEBHOOK_TIMEOUT_SECONDS), and no connection is held while it runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

from pdam.core import errors, events, webhooks
from pdam.infra import deadline, http, queue
from pdam.infra.port import is_transient
from pdam.infra.runtime import Runtime

from . import Connect, RetryOnType, app, current

log = logging.getLogger(__name__)


#: Deliveries a drain reads at a time.
BATCH = 50
#: A drain that ran this long hands its lane to a new drain job at the back of the queue
#: (after its current attempt), so lanes share the callback slots.
DRAIN_SECONDS = 10.0


async def drain(rt: Runtime, connect: Connect, lane: str) -> list[str]:
    """Send ``lane``'s pending deliveries in order, one attempt each, over a kept-alive
    connection to their receiver (``http.Sender``); return each attempt's
    outcome (delivered, refused, failed). Ends when the lane is empty; when its first
    delivery must wait (a retry: a drain is scheduled for its time, and the lane waits
    behind it, keeping each payment's callbacks in order); or after DRAIN_SECONDS (a new
    drain continues). A database that cannot be reached raises ``Retry`` (the drain job
    is retried); a delivery that cannot be sent for any other reason is marked failed and
    the lane goes on."""
    with http.Sender(allow_private=rt.settings["WEBHOOK_ALLOW_PRIVATE_NETWORKS"]) as sender:
        return await _drain(rt, connect, lane, sender)


async def _drain(rt: Runtime, connect: Connect, lane: str, sender: http.Sender) -> list[str]:
    started = time.monotonic()
    outcomes: list[str] = []
    after = 0
    while True:
        batch = await _database(rt, connect, webhooks.pending, lane, rt.sealer, after=after, limit=BATCH)
        if not batch:
            return outcomes
        for row in batch:
            if time.monotonic() - started > DRAIN_SECONDS:
                return await _later(rt, connect, lane, 0, outcomes)
            wait = (row.next_attempt_at - rt.now()).total_seconds() if row.next_attempt_at else 0
            if wait > 0:
                return await _later(rt, connect, lane, wait, outcomes)
            try:
                outcomes.append(await attempt(rt, connect, row, sender))
            except webhooks.RetryLater:
                return await _later(rt, connect, lane, rt.settings["WEBHOOK_RETRY_SECONDS"], outcomes)
            except webhooks.DeliveryFailed:
                outcomes.append(webhooks.FAILED)
            after = row.id
        if len(batch) < BATCH:  # a callback recorded since has a drain of its own waiting (``wake``)
            return outcomes


async def _later(rt: Runtime, connect: Connect, lane: str, seconds: float, outcomes: list[str]) -> list[str]:
    await _database(rt, connect, webhooks.wake, lane, in_seconds=seconds, commit=True)
    return outcomes


async def _database(rt: Runtime, connect: Connect, planned, *args, commit: bool = False, **kwargs):
    """``planned`` (a core plan) on a connection of ``connect``'s, bounded by
    REQUEST_DEADLINE_SECONDS, committed (and the commit confirmed) when ``commit``: a
    database that does not answer in time, or a commit that is not confirmed, raises
    ``Retry``."""
    notices = deadline.Notices()
    try:
        async with asyncio.timeout(rt.settings["REQUEST_DEADLINE_SECONDS"]), connect() as conn:
            conn.add_notice_handler(notices)
            try:
                with deadline.confirm_commit(notices if commit else None):
                    result = await planned.aio(conn, *args, **kwargs)
                    await (conn.commit() if commit else conn.rollback())
            finally:
                conn.remove_notice_handler(notices)
    except TimeoutError as exc:
        raise errors.Retry(f"database: no answer within {rt.settings['REQUEST_DEADLINE_SECONDS']} s") from exc
    except Exception as exc:
        if is_transient(exc):
            raise errors.Retry(f"database: {type(exc).__name__}: {exc}") from exc
        raise
    return result


async def deliver(rt: Runtime, connect: Connect, delivery_id: int) -> str:
    """One attempt of delivery ``delivery_id`` (``attempt``)."""
    row = await _database(rt, connect, webhooks.load, delivery_id, rt.sealer)
    with http.Sender(allow_private=rt.settings["WEBHOOK_ALLOW_PRIVATE_NETWORKS"]) as sender:
        return await attempt(rt, connect, row, sender)


async def attempt(rt: Runtime, connect: Connect, row: webhooks.Delivery, sender: http.Sender) -> str:
    """One attempt of delivery ``row`` through ``sender``; return delivered/refused (or the status it already had).

    Raises ``RetryLater`` for an attempt to be repeated, ``DeliveryFailed`` when the
    delivery is given up (both after recording the attempt); a database that cannot be
    reached in time raises ``Retry`` (the attempt is made again later, the same event id).
    Any other error cannot pass by itself: the delivery is marked failed (an operator
    sees it in ``payments_needing_attention`` and can resend it).
    """
    try:
        return await _attempt(rt, connect, row, sender)
    except (errors.Retry, errors.GiveUp):
        raise
    except Exception as exc:
        log.exception("webhook delivery failed", extra={"delivery_id": row.id})
        reason = f"delivery error: {type(exc).__name__}"
        await _database(rt, connect, webhooks.give_up, row.id, reason, rt.now(), commit=True)
        raise webhooks.DeliveryFailed(f"webhook delivery {row.id}: {reason}") from exc


async def _attempt(rt: Runtime, connect: Connect, row: webhooks.Delivery, sender: http.Sender) -> str:
    settings = rt.settings
    delivery_id = row.id
    if row.status != webhooks.PENDING:  # a job run again after it finished: nothing to do
        return row.status

    protocol = events.protocol(row.protocol)
    raw_body = protocol.render(row.body)
    attempted_at = rt.now()
    headers = protocol.headers(row, raw_body, attempted_at)
    if row.sandbox:  # every protocol's sandbox callbacks say so (contract 14.1)
        headers["X-Sandbox"] = "true"
    started = time.monotonic()
    outcome = await asyncio.to_thread(
        sender.send, row.url, raw_body, headers, timeout=settings["WEBHOOK_TIMEOUT_SECONDS"]
    )
    duration_ms = int((time.monotonic() - started) * 1000)
    attempts = row.attempts + 1
    status = webhooks.status_after(
        outcome.result, settings, attempts, row.first_attempt_at or attempted_at, attempted_at
    )
    recorded = await _database(
        rt,
        connect,
        webhooks.record_attempt,
        row,
        at=attempted_at,
        status=status,
        http_status=outcome.http_status,
        error=outcome.error,
        duration_ms=duration_ms,
        next_attempt_at=attempted_at + dt.timedelta(seconds=settings["WEBHOOK_RETRY_SECONDS"]),
        commit=True,
    )
    details = {
        "delivery_id": delivery_id, "nob": row.nob, "event": row.event, "attempt": attempts, "outcome": status,
        "http_status": outcome.http_status, "error": outcome.error, "duration_ms": duration_ms,
    }  # fmt: skip
    if not recorded:  # another run recorded this delivery meanwhile; its answer stands
        log.warning("webhook attempt superseded", extra={**details, "outcome": "superseded"})
        return "superseded"
    log.info("webhook attempt", extra=details)
    if status == webhooks.PENDING:
        raise webhooks.RetryLater(f"webhook delivery {delivery_id} attempt {attempts}: {outcome.error}")
    if status == webhooks.FAILED:
        raise webhooks.DeliveryFailed(
            f"webhook delivery {delivery_id} failed after {attempts} attempts: {outcome.error}"
        )
    return status


@app.task(name=queue.DRAIN_LANE, queue=queue.WEBHOOK_QUEUE, retry=RetryOnType("WEBHOOK_RETRY_SECONDS"))
async def drain_task(lane: str) -> int:
    """A callback lane's drain (its lock is the lane: one at a time); how many attempts it made."""
    return len(await drain(current(), app.connector.pool.connection, lane))


@app.task(name=queue.DELIVER_WEBHOOK, queue=queue.WEBHOOK_QUEUE, retry=RetryOnType("WEBHOOK_RETRY_SECONDS"))
async def deliver_task(delivery_id: int) -> int:
    """A delivery's job queued before lanes (its lock is the delivery's lane): drains that lane."""
    return len(await drain_lane_of(current(), app.connector.pool.connection, delivery_id))


async def drain_lane_of(rt: Runtime, connect: Connect, delivery_id: int) -> list[str]:
    """``drain`` the lane of delivery ``delivery_id`` (none when it has no lane: not pending)."""
    lane = await _database(rt, connect, webhooks.lane_of_delivery, delivery_id)
    return await drain(rt, connect, lane) if lane else []
