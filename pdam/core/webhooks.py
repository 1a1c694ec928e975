"""Webhook events: recorded with the state change, delivered by the job server.

``record`` runs on the caller's transaction: it stores the callback body of
the event (rendered by the edge from the row the caller holds) in
``webhook_delivery`` and defers the delivery job, so the callback exists
exactly when the state change commits. The job lock ``webhook-payment-<id>``
makes one payment's callbacks go out strictly in order (``created``, the final
status, ``reversed``), retries included.

Delivery keeps its state here: every attempt recorded in ``webhook_attempt``;
2xx delivered; refused (3xx/4xx, or an address the service may not call)
never retried; anything else retried every WEBHOOK_RETRY_SECONDS until
WEBHOOK_MAX_ATTEMPTS attempts or WEBHOOK_DEADLINE_SECONDS after the first
attempt, then failed. The HTTP call itself is the job server's
(``jobs/webhooks.py``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg
import sqlalchemy as sa

from ..infra import adb, queue
from ..infra.sealing import Sealer
from ..infra.sql import queries
from . import errors, states

Q = queries("webhooks")
DELIVERED, REFUSED, PENDING, FAILED = "delivered", "refused", "pending", "failed"


class DeliveryMissing(errors.GiveUp):
    """The webhook delivery of this job does not exist"""


class RetryLater(errors.Retry):
    """The receiver could not take the callback now; the job server tries again"""


class DeliveryFailed(errors.GiveUp):
    """The callback could not be delivered before the attempts or the deadline ran out"""


def lock_for(payment_id: int) -> str:
    return f"webhook-payment-{payment_id}"


def record(conn: sa.Connection, payment_id: int, event: str, url: str, body: dict, now: dt.datetime) -> int:
    """Store the ``event`` callback of a payment and defer its delivery, on ``conn``'s
    transaction; return the delivery id."""
    params = _delivery(payment_id, event, url, body, now)
    delivery_id = conn.execute(Q["insert_delivery"], params).scalar_one()
    _defer(conn, payment_id, delivery_id)
    return delivery_id


async def record_async(
    conn: psycopg.AsyncConnection, payment_id: int, event: str, url: str, body: dict, now: dt.datetime
) -> int:
    """``record`` on an async psycopg connection (the job server's own), in its current
    transaction: the same row and the same delivery job."""
    params = _delivery(payment_id, event, url, body, now)
    (row,) = await adb.rows(conn, Q["insert_delivery"], params)
    await queue.defer_async(conn, queue.DELIVER_WEBHOOK, **_job(payment_id, row["id"]))
    return row["id"]


def _delivery(payment_id: int, event: str, url: str, body: dict, now: dt.datetime) -> dict:
    if event not in states.EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    return {"payment_id": payment_id, "event": event, "url": url, "body": json.dumps(body), "now": now}


def _job(payment_id: int, delivery_id: int) -> dict:
    """The delivery job's queue, lock (one payment's callbacks in order) and arguments."""
    return {"queue": queue.WEBHOOK_QUEUE, "lock": lock_for(payment_id), "delivery_id": delivery_id}


def _defer(conn: sa.Connection, payment_id: int, delivery_id: int) -> int:
    return queue.defer(conn, queue.DELIVER_WEBHOOK, **_job(payment_id, delivery_id))


@dataclass(frozen=True)
class Resent:
    delivery_id: int
    resend_of: int
    event: str
    event_id: str
    job_id: int


def resend(conn: sa.Connection, nob: str, now: dt.datetime) -> Resent:
    """Send a payment's last callback again: a new delivery of the same event (same
    body, same event id), queued behind the payment's other callbacks."""
    pay = conn.execute(Q["payment_by_nob"], {"nob": nob}).one_or_none()
    if pay is None:
        raise errors.NotFound(f"no payment with nob {nob}")
    if not pay.callback_url:
        raise errors.Conflict(f"payment {nob} has no X-Async callback URL; there is nothing to resend")
    last = conn.execute(Q["last_delivery"], {"id": pay.id}).one_or_none()
    if last is None:
        raise errors.Conflict(f"payment {nob} has no callback yet; there is nothing to resend")
    new = conn.execute(Q["copy_delivery"], {"id": last.id, "now": now}).scalar_one()
    job_id = _defer(conn, pay.id, new)
    return Resent(new, last.id, last.event, str(last.event_id), job_id)


@dataclass(frozen=True)
class Delivery:
    """A webhook delivery with what sending it needs: the partner's signing secret and the
    payment's callback credentials, opened (they are stored sealed; never in a repr)."""

    id: int
    payment_id: int
    event: str
    event_id: str
    url: str
    body: dict
    status: str
    attempts: int
    first_attempt_at: dt.datetime | None
    nob: str
    webhook_secret: str = field(repr=False)
    callback_token: str | None = field(repr=False)
    request_authorization: str | None = field(repr=False)


def load(conn: sa.Connection, delivery_id: int, sealer: Sealer) -> Delivery:
    row = conn.execute(Q["load"], {"id": delivery_id}).one_or_none()
    if row is None:
        raise DeliveryMissing(f"webhook delivery {delivery_id} does not exist")
    return Delivery(
        **{
            **row._asdict(),
            "webhook_secret": sealer.open(row.webhook_secret),
            "callback_token": sealer.open_optional(row.callback_token),
            "request_authorization": sealer.open_optional(row.request_authorization),
        }
    )


def status_after(
    result: str, settings: Mapping, attempts: int, job_attempt: int, first: dt.datetime, now: dt.datetime
) -> str:
    """The delivery's status after attempt number ``attempts`` whose ``result`` was
    delivered, refused or retry: a retry is ``pending`` until the attempts or the deadline
    run out (the next one would be past it), then ``failed``."""
    if result != "retry":
        return result
    if max(attempts, job_attempt) >= settings["WEBHOOK_MAX_ATTEMPTS"]:
        return FAILED
    next_at = (now - first).total_seconds() + settings["WEBHOOK_RETRY_SECONDS"]
    return FAILED if next_at > settings["WEBHOOK_DEADLINE_SECONDS"] else PENDING


def record_attempt(
    conn: sa.Connection,
    delivery: Delivery,
    *,
    at: dt.datetime,
    status: str,
    http_status: int | None,
    error: str | None,
    duration_ms: int,
) -> bool:
    """Record one attempt and the delivery's new status; False when another run recorded
    this delivery meanwhile (its answer stands)."""
    conn.execute(
        Q["insert_attempt"],
        {
            "id": delivery.id,
            "at": at,
            "url": delivery.url,
            "http_status": http_status,
            "error": error,
            "duration_ms": duration_ms,
        },
    )
    return (
        1
        == conn.execute(
            Q["record"],
            {
                "id": delivery.id,
                "attempts": delivery.attempts,
                "status": status,
                "at": at,
                "error": error,
                "delivered_at": at if status == DELIVERED else None,
            },
        ).rowcount
    )


def give_up(conn: sa.Connection, delivery_id: int, reason: str, now: dt.datetime) -> bool:
    """Mark a still pending delivery failed without an attempt (its job was given up
    outside delivery, e.g. by stalled-job recovery); an operator can resend it."""
    reason = f"{reason} ({now:%Y-%m-%d %H:%M:%S%z})"
    return bool(conn.execute(Q["give_up"], {"id": delivery_id, "reason": reason}).rowcount)
