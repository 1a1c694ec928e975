"""Webhook delivery: one HTTP attempt of a recorded callback, recorded, with the retry
decision (the core's delivery state, the wire format of the protocol the callback came
through, from the core's ``events`` registry, infra's guarded client)."""

from __future__ import annotations

import logging
import time

import procrastinate

from pdam.core import errors, events, webhooks
from pdam.infra import deadline, http, queue
from pdam.infra.db import begin
from pdam.infra.port import is_transient
from pdam.infra.runtime import Runtime

from . import RetryOnType, app, current

log = logging.getLogger(__name__)


def deliver(rt: Runtime, delivery_id: int, job_attempt: int = 1) -> str:
    """One delivery attempt; return delivered/refused (or the status it already had).

    Raises ``RetryLater`` for an attempt to be repeated, ``DeliveryFailed`` when the
    delivery is given up (both after recording the attempt); a database that cannot be
    reached is retried like a receiver that cannot (``Retry``, up to the same maximum).
    Any other error cannot pass by itself: the delivery is marked failed (an operator
    sees it in ``payments_needing_attention`` and can resend it) and the job ends.
    No database transaction stays open during the HTTP call.
    """
    try:
        # Bounded: the receiver's time, then the database's (pdam/infra/deadline.py).
        seconds = rt.settings["REQUEST_DEADLINE_SECONDS"] + rt.settings["WEBHOOK_TIMEOUT_SECONDS"]
        with deadline.bounded(seconds):
            return _attempt(rt, delivery_id, job_attempt)
    except (errors.Retry, errors.GiveUp):
        raise
    except Exception as exc:
        if is_transient(exc):
            raise errors.retry_decision(exc, job_attempt, rt.settings["WEBHOOK_MAX_ATTEMPTS"]) from exc
        log.exception("webhook delivery failed", extra={"delivery_id": delivery_id})
        reason = f"delivery error: {type(exc).__name__}"
        with begin(rt.database.engine) as conn:
            webhooks.give_up(conn, delivery_id, reason, rt.now())
        raise webhooks.DeliveryFailed(f"webhook delivery {delivery_id}: {reason}") from exc


def _attempt(rt: Runtime, delivery_id: int, job_attempt: int) -> str:
    settings = rt.settings
    with rt.database.engine.connect() as conn:
        row = webhooks.load(conn, delivery_id, rt.sealer)
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
        outcome.result, settings, attempts, job_attempt, row.first_attempt_at or attempted_at, attempted_at
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


@app.task(
    name=queue.DELIVER_WEBHOOK,
    queue=queue.WEBHOOK_QUEUE,
    pass_context=True,
    retry=RetryOnType("WEBHOOK_RETRY_SECONDS"),
)
def deliver_task(context: procrastinate.JobContext, delivery_id: int) -> str:
    return deliver(current(), delivery_id, job_attempt=context.job.attempts + 1)
