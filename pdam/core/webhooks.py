"""Webhook events: recorded with the state change, delivered by the job server.

``record`` runs on the caller's transaction: it stores the callback body of the event
(rendered by the edge that took the callback, through ``events``, from the payment the
caller holds) in ``webhook_delivery``, in its **lane**; the insert announces the lane
when the transaction commits (a notification, sql/022_callback_dispatcher.sql), so the
callback exists exactly when the state change commits and no queue job is needed. A lane
(``lane_of``) is one of its receiver's (host and port) HOST_LANES lanes; a payment's
callbacks always take the same one. The job server's dispatcher (``jobs/webhooks.py``)
sends a lane's pending deliveries in id order, one sender per lane across every worker
process (``take_lane``: an advisory lock), so one payment's callbacks go out strictly in
order (``created``, the final status, ``reversed``), retries included; at most HOST_LANES
deliveries to one receiver are in flight at once, and a receiver that stalls holds at
most that many of the dispatcher's slots.

Delivery keeps its state here: every attempt recorded in ``webhook_attempt``;
2xx delivered; refused (3xx/4xx, or an address the service may not call)
never retried; anything else retried every WEBHOOK_RETRY_SECONDS (``next_attempt_at``;
the lane waits behind it) until WEBHOOK_MAX_ATTEMPTS attempts or
WEBHOOK_DEADLINE_SECONDS after the first attempt, then failed. The HTTP call itself is
the job server's (``jobs/webhooks.py``), with the protocol's bytes and headers.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..infra import port
from ..infra.port import Plan
from ..infra.sealing import Sealer
from ..infra.sql import queries
from . import errors, events, states
from .records import Payment

Q = queries("webhooks")
DELIVERED, REFUSED, PENDING, FAILED = "delivered", "refused", "pending", "failed"


class DeliveryMissing(errors.GiveUp):
    """The webhook delivery does not exist"""


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


def lane_of(payment_id: int, url: str) -> str:
    """The lane of a payment's callbacks to ``url``: one of its receiver's HOST_LANES lanes."""
    return f"webhook-{receiver_of(url)}-{payment_id % HOST_LANES}"


@port.plan
def record(db: port.Db, payment: Payment, event: str, now: dt.datetime) -> Plan[int | None]:
    """Store the ``event`` callback of ``payment`` (as the caller holds it, after the change)
    in its lane, in the caller's transaction (its commit announces the lane to the
    dispatchers); return the delivery id (None when the payment has no callback). The body
    is the callback protocol's (``events``)."""
    if event not in states.EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    if not payment.callback_url:
        return None
    body = events.protocol(payment.callback_protocol).body(payment, event)
    lane = lane_of(payment.id, payment.callback_url)
    params = {"payment_id": payment.id, "event": event, "url": payment.callback_url, "body": json.dumps(body)}
    return (yield port.scalar(Q["insert_delivery"], params | {"lane": lane, "now": now}))


@dataclass(frozen=True)
class Resent:
    delivery_id: int
    resend_of: int
    event: str
    event_id: str


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
    ``event_id``, ``url``), in its lane behind the payment's other callbacks (a plan's step)."""
    lane = lane_of(last.payment_id, last.url)
    new = yield port.scalar(Q["copy_delivery"], {"id": last.id, "lane": lane, "now": now})
    return Resent(new, last.id, last.event, str(last.event_id))


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
    #: A pending retry's time (not sent before it); None: at once.
    next_attempt_at: dt.datetime | None
    nob: str
    protocol: str | None
    #: A sandbox payment's callback: sent with ``X-Sandbox: true``.
    sandbox: bool
    #: Sends begun whose attempt is not recorded (``pending`` counts one up before a lane's
    #: first due callback is sent; an attempt recorded sets it to 0): past 1, its worker died.
    open_sends: int
    webhook_secret: str = field(repr=False)
    callback_token: str | None = field(repr=False)
    request_authorization: str | None = field(repr=False)


def _opened(row, sealer: Sealer) -> Delivery:
    return Delivery(
        **{
            **row._asdict(),
            "webhook_secret": sealer.open(row.webhook_secret),
            "callback_token": sealer.open_optional(row.callback_token),
            "request_authorization": sealer.open_optional(row.request_authorization),
        }
    )


@port.plan
def load(db: port.Db, delivery_id: int, sealer: Sealer) -> Plan[Delivery]:
    row = yield port.one(Q["load"], {"id": delivery_id})
    if row is None:
        raise DeliveryMissing(f"webhook delivery {delivery_id} does not exist")
    return _opened(row, sealer)


@port.plan
def pending(
    db: port.Db, lane: str, sealer: Sealer, now: dt.datetime, *, after: int = 0, limit: int = 50
) -> Plan[list[Delivery]]:
    """The first ``limit`` pending deliveries of ``lane`` after delivery ``after``, in
    order, ready to send; the first one, if due, counts a send (one statement, committed by
    itself when no transaction is open)."""
    params = {"lane": lane, "after": after, "limit": limit, "now": now}
    rows = yield port.fetch(Q["pending"], params, alone=True)
    return [_opened(row, sealer) for row in rows]


@port.plan
def due_lanes(db: port.Db, now: dt.datetime) -> Plan[list[str]]:
    """The lanes whose first pending callback is due."""
    return [lane for (lane,) in (yield port.fetch(Q["due_lanes"], {"now": now}, alone=True))]


@port.plan
def listen(db: port.Db) -> Plan[None]:
    """Hear every lane announced (``record``, a resend) on this session (autocommit)."""
    yield port.count(Q["listen"], {}, alone=True)


@port.plan
def take_lane(db: port.Db, lane: str) -> Plan[bool]:
    """Become ``lane``'s sender for this session, unless another session is (no wait)."""
    return bool((yield port.scalar(Q["take_lane"], {"lane": lane}, alone=True)))


@port.plan
def leave_lane(db: port.Db, lane: str) -> Plan[None]:
    """Stop being ``lane``'s sender (``take_lane``) on this session."""
    yield port.scalar(Q["leave_lane"], {"lane": lane}, alone=True)


def status_after(result: str, settings: Mapping, attempts: int, first: dt.datetime, now: dt.datetime) -> str:
    """The delivery's status after attempt number ``attempts`` whose ``result`` was
    delivered, refused or retry: a retry is ``pending`` until the attempts or the deadline
    run out (the next one would be past it), then ``failed``."""
    if result != "retry":
        return result
    if attempts >= settings["WEBHOOK_MAX_ATTEMPTS"]:
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
    next_attempt_at: dt.datetime | None = None,
) -> Plan[bool]:
    """Record one attempt and the delivery's new status (a pending one's next attempt not
    before ``next_attempt_at``), in one statement (committed by itself when no transaction
    is open); False when another run recorded this delivery meanwhile (its answer stands)."""
    recorded = yield port.count(
        Q["record"],
        {
            "id": delivery.id,
            "attempts": delivery.attempts,
            "status": status,
            "at": at,
            "url": delivery.url,
            "http_status": http_status,
            "error": error,
            "duration_ms": duration_ms,
            "delivered_at": at if status == DELIVERED else None,
            "next_attempt_at": next_attempt_at if status == PENDING else None,
        },
        alone=True,
    )
    return recorded == 1


@port.plan
def give_up(db: port.Db, delivery_id: int, reason: str, now: dt.datetime) -> Plan[bool]:
    """Mark a still pending delivery failed without an attempt (it cannot be sent, or its
    drain was given up by stalled-job recovery); an operator can resend it."""
    reason = f"{reason} ({now:%Y-%m-%d %H:%M:%S%z})"
    return bool((yield port.count(Q["give_up"], {"id": delivery_id, "reason": reason})))
