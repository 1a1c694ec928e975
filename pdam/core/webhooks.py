"""Webhook events: recorded with the state change, delivered by the job server.

``record`` runs on the caller's transaction: it stores the callback body of
the event (rendered by the edge that took the callback, through ``events``, from the
payment the caller holds) in
``webhook_delivery`` and defers the delivery job, so the callback exists
exactly when the state change commits. The job lock (``lock_for``) makes one
payment's callbacks go out strictly in order (``created``, the final status,
``reversed``), retries included, and is also the bulkhead per receiver: a receiver
(host and port) has HOST_LANES locks, a payment's callbacks always take the same one,
so at most HOST_LANES deliveries to one receiver are in flight at once, across every
worker process, and a receiver that stalls holds at most that many of the job server's
callback slots (its other deliveries wait in the queue, holding none).

Delivery keeps its state here: every attempt recorded in ``webhook_attempt``;
2xx delivered; refused (3xx/4xx, or an address the service may not call)
never retried; anything else retried every WEBHOOK_RETRY_SECONDS until
WEBHOOK_MAX_ATTEMPTS attempts or WEBHOOK_DEADLINE_SECONDS after the first
attempt, then failed. The HTTP call itself is the job server's
(``jobs/webhooks.py``), with the protocol's bytes and headers.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..infra import port, queue
from ..infra.port import Plan
from ..infra.sealing import Sealer
from ..infra.sql import queries
from . import errors, events, states
from .records import Payment

Q = queries("webhooks")
DELIVERED, REFUSED, PENDING, FAILED = "delivered", "refused", "pending", "failed"


class DeliveryMissing(errors.GiveUp):
    """The webhook delivery of this job does not exist"""


class RetryLater(errors.Retry):
    """The receiver could not take the callback now; the job server tries again"""


class DeliveryFailed(errors.GiveUp):
    """The callback could not be delivered before the attempts or the deadline ran out"""


#: Deliveries in flight at once to one receiver (host and port), at most.
HOST_LANES = 3


def receiver_of(url: str) -> str:
    """The receiver a URL names: its host (lower case) and port (the scheme's by default)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = (parts.hostname or "").lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def lock_for(payment_id: int, url: str) -> str:
    """The job lock of a payment's callbacks: one of its receiver's HOST_LANES lanes."""
    return f"webhook-{receiver_of(url)}-{payment_id % HOST_LANES}"


@port.plan
def record(db: port.Db, payment: Payment, event: str, now: dt.datetime) -> Plan[int | None]:
    """Store the ``event`` callback of ``payment`` (as the caller holds it, after the change)
    and defer its delivery, in the caller's transaction; return the delivery id (None when
    the payment has no callback). The body is the callback protocol's (``events``)."""
    if event not in states.EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    if not payment.callback_url:
        return None
    body = events.protocol(payment.callback_protocol).body(payment, event)
    params = {"payment_id": payment.id, "event": event, "url": payment.callback_url, "body": json.dumps(body)}
    delivery_id = yield port.scalar(Q["insert_delivery"], params | {"now": now})
    yield _defer(payment.id, payment.callback_url, delivery_id)
    return delivery_id


def _defer(payment_id: int, url: str, delivery_id: int) -> port.Defer:
    """The delivery job: its queue, its lock (one payment's callbacks in order, its
    receiver's lane), its id."""
    return port.defer(
        queue.DELIVER_WEBHOOK,
        queue=queue.WEBHOOK_QUEUE,
        lock=lock_for(payment_id, url),
        delivery_id=delivery_id,
    )


@dataclass(frozen=True)
class Resent:
    delivery_id: int
    resend_of: int
    event: str
    event_id: str
    job_id: int


@port.plan
def resend(db: port.Db, nob: str, now: dt.datetime, event_id: str | None = None) -> Plan[Resent]:
    """Send a payment's last callback again (or its event ``event_id``, a UUID: the latest
    delivery of that event): a new delivery of the same event (same body, same event id),
    queued behind the payment's other callbacks."""
    pay = yield port.one(Q["payment_by_nob"], {"nob": nob})
    if pay is None:
        raise errors.NotFound(f"no payment with nob {nob}")
    if not pay.callback_url:
        raise errors.Conflict(f"payment {nob} has no X-Async callback URL; there is nothing to resend")
    if event_id is None:
        last = yield port.one(Q["last_delivery"], {"id": pay.id})
        if last is None:
            raise errors.Conflict(f"payment {nob} has no callback yet; there is nothing to resend")
    else:
        last = yield port.one(Q["last_delivery_of_event"], {"id": pay.id, "event_id": event_id})
        if last is None:
            raise errors.NotFound(f"payment {nob} has no callback with event id {event_id}")
    return (yield from resend_delivery(last, now))


def resend_delivery(last, now: dt.datetime) -> Plan[Resent]:
    """A new delivery copying delivery ``last`` (its ``id``, ``payment_id``, ``event``,
    ``event_id``, ``url``), deferred behind the payment's other callbacks (a plan's step)."""
    new = yield port.scalar(Q["copy_delivery"], {"id": last.id, "now": now})
    job_id = yield _defer(last.payment_id, last.url, new)
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
    protocol: str | None
    #: A sandbox payment's callback: sent with ``X-Sandbox: true``.
    sandbox: bool
    webhook_secret: str = field(repr=False)
    callback_token: str | None = field(repr=False)
    request_authorization: str | None = field(repr=False)


@port.plan
def load(db: port.Db, delivery_id: int, sealer: Sealer) -> Plan[Delivery]:
    row = yield port.one(Q["load"], {"id": delivery_id})
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


@port.plan
def record_attempt(
    db: port.Db,
    delivery: Delivery,
    *,
    at: dt.datetime,
    status: str,
    http_status: int | None,
    error: str | None,
    duration_ms: int,
) -> Plan[bool]:
    """Record one attempt and the delivery's new status; False when another run recorded
    this delivery meanwhile (its answer stands)."""
    yield port.count(
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
    recorded = yield port.count(
        Q["record"],
        {
            "id": delivery.id,
            "attempts": delivery.attempts,
            "status": status,
            "at": at,
            "error": error,
            "delivered_at": at if status == DELIVERED else None,
        },
    )
    return recorded == 1


@port.plan
def give_up(db: port.Db, delivery_id: int, reason: str, now: dt.datetime) -> Plan[bool]:
    """Mark a still pending delivery failed without an attempt (its job was given up
    outside delivery, e.g. by stalled-job recovery); an operator can resend it."""
    reason = f"{reason} ({now:%Y-%m-%d %H:%M:%S%z})"
    return bool((yield port.count(Q["give_up"], {"id": delivery_id, "reason": reason})))
