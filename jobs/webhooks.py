"""Webhook delivery: a callback lane's drain (``drain``: its pending deliveries in order,
one HTTP attempt each, recorded, with the retry decision), from the core's delivery state,
the wire format of the protocol the callback came through (the core's ``events``
registry) and infra's guarded client."""

from __future__ import annotations

import datetime as dt
import logging
import time

from pdam.core import errors, events, webhooks
from pdam.infra import deadline, http, queue
from pdam.infra.db import begin
from pdam.infra.port import is_transient
from pdam.infra.runtime import Runtime

from . import RetryOnType, app, current

log = logging.getLogger(__name__)


#: Deliveries a drain reads at a time.
BATCH = 50
#: A drain that ran this long hands its lane to a new drain job at the back of the queue
#: (after its current attempt), so lanes share the callback slots.
DRAIN_SECONDS = 10.0


def drain(rt: Runtime, lane: str) -> list[str]:
    """Send ``lane``'s pending deliveries in order, one attempt each; return each attempt's
    outcome (delivered, refused, failed). Ends when the lane is empty; when its first
    delivery must wait (a retry: a drain is scheduled for its time, and the lane waits
    behind it, keeping each payment's callbacks in order); or after DRAIN_SECONDS (a new
    drain continues). A database that cannot be reached raises ``Retry`` (the drain job
    is retried); a delivery that cannot be sent for any other reason is marked failed and
    the lane goes on."""
    started = time.monotonic()
    outcomes: list[str] = []
    after = 0
    while True:
        with rt.database.engine.connect() as conn:
            batch = webhooks.pending(conn, lane, rt.sealer, after=after, limit=BATCH)
        if not batch:
            return outcomes
        for row in batch:
            if time.monotonic() - started > DRAIN_SECONDS:
                return _later(rt, lane, 0, outcomes)
            wait = (row.next_attempt_at - rt.now()).total_seconds() if row.next_attempt_at else 0
            if wait > 0:
                return _later(rt, lane, wait, outcomes)
            try:
                outcomes.append(attempt(rt, row))
            except webhooks.RetryLater:
                return _later(rt, lane, rt.settings["WEBHOOK_RETRY_SECONDS"], outcomes)
            except webhooks.DeliveryFailed:
                outcomes.append(webhooks.FAILED)
            after = row.id


def _later(rt: Runtime, lane: str, seconds: float, outcomes: list[str]) -> list[str]:
    with begin(rt.database.engine) as conn:
        webhooks.drain_later(conn, lane, seconds)
    return outcomes


def deliver(rt: Runtime, delivery_id: int) -> str:
    """One attempt of delivery ``delivery_id`` (``attempt``)."""
    with rt.database.engine.connect() as conn:
        row = webhooks.load(conn, delivery_id, rt.sealer)
    return attempt(rt, row)


def attempt(rt: Runtime, row: webhooks.Delivery) -> str:
    """One attempt of delivery ``row``; return delivered/refused (or the status it already had).

    Raises ``RetryLater`` for an attempt to be repeated, ``DeliveryFailed`` when the
    delivery is given up (both after recording the attempt); a database that cannot be
    reached raises ``Retry`` (the attempt is made again later, the same event id).
    Any other error cannot pass by itself: the delivery is marked failed (an operator
    sees it in ``payments_needing_attention`` and can resend it).
    No database transaction stays open during the HTTP call.
    """
    try:
        # Bounded: the receiver's time, then the database's (pdam/infra/deadline.py).
        seconds = rt.settings["REQUEST_DEADLINE_SECONDS"] + rt.settings["WEBHOOK_TIMEOUT_SECONDS"]
        with deadline.bounded(seconds):
            return _attempt(rt, row)
    except (errors.Retry, errors.GiveUp):
        raise
    except Exception as exc:
        if is_transient(exc):
            raise errors.Retry(f"webhook delivery {row.id}: {type(exc).__name__}: {exc}") from exc
        log.exception("webhook delivery failed", extra={"delivery_id": row.id})
        reason = f"delivery error: {type(exc).__name__}"
        with begin(rt.database.engine) as conn:
            webhooks.give_up(conn, row.id, reason, rt.now())
        raise webhooks.DeliveryFailed(f"webhook delivery {row.id}: {reason}") from exc


def _attempt(rt: Runtime, row: webhooks.Delivery) -> str:
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
    outcome = http.send(
        row.url,
        raw_body,
        headers,
        timeout=settings["WEBHOOK_TIMEOUT_SECONDS"],
        allow_private=settings["WEBHOOK_ALLOW_PRIVATE_NETWORKS"],
    )
    duration_ms = int((time.monotonic() - started) * 1000)
    attempts = row.attempts + 1
    status = webhooks.status_after(
        outcome.result, settings, attempts, row.first_attempt_at or attempted_at, attempted_at
    )
    with begin(rt.database.engine) as conn:
        recorded = webhooks.record_attempt(
            conn,
            row,
            at=attempted_at,
            status=status,
            http_status=outcome.http_status,
            error=outcome.error,
            duration_ms=duration_ms,
            next_attempt_at=attempted_at + dt.timedelta(seconds=settings["WEBHOOK_RETRY_SECONDS"]),
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
def drain_task(lane: str) -> int:
    """A callback lane's drain (its lock is the lane: one at a time); how many attempts it made."""
    return len(drain(current(), lane))


@app.task(name=queue.DELIVER_WEBHOOK, queue=queue.WEBHOOK_QUEUE, retry=RetryOnType("WEBHOOK_RETRY_SECONDS"))
def deliver_task(delivery_id: int) -> int:
    """A delivery's job queued before lanes (its lock is the delivery's lane): drains that lane."""
    return len(drain_lane_of(current(), delivery_id))


def drain_lane_of(rt: Runtime, delivery_id: int) -> list[str]:
    """``drain`` the lane of delivery ``delivery_id`` (none when it has no lane: not pending)."""
    with rt.database.engine.connect() as conn:
        lane = webhooks.lane_of_delivery(conn, delivery_id)
    return drain(rt, lane) if lane else []
