"""The partner's callbacks log (contract 14.2): its own webhook deliveries, newest first,
and a resend of one of its events, rate-limited per event.

A partner sees the deliveries of its own payments, of the side of its credential (live or
sandbox); another partner's event is one that does not exist. Its delivery states are
three: ``pending`` (queued or retrying), ``delivered``, ``failed`` (given up after the
retries, or refused: a 3xx/4xx answer, or an address the service does not call; the reason
is the last result). A resend is a new delivery of the same event (same body and event
id), queued behind the payment's other callbacks (``webhooks.resend_delivery``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from ..infra import port
from ..infra.port import Plan
from ..infra.sql import queries
from . import errors, webhooks

Q = queries("callbacks")
#: The log's states, and the stored states each one is.
STATES = {
    "pending": (webhooks.PENDING,),
    "delivered": (webhooks.DELIVERED,),
    "failed": (webhooks.FAILED, webhooks.REFUSED),
}
SHOWN = {stored: shown for shown, stored_states in STATES.items() for stored in stored_states}
#: Resends of one event a partner may ask for in an hour.
RESENDS_PER_HOUR = 10
MAX_LIMIT = 500


class TooManyResends(errors.PdamError):
    """too many resends of this event"""

    def __init__(self, message: str, retry_after: float):
        self.retry_after = retry_after
        super().__init__(message)


@dataclass(frozen=True)
class Entry:
    """One delivery as the partner's log shows it. ``last_result``: the last attempt's HTTP
    status, else the class of its error (``refused``, ``timeout``, ``connection error``);
    None before the first attempt. ``next_attempt_at``: when a pending delivery is tried
    next (None once it is final)."""

    id: int
    event_id: str
    nob: str
    pid: str
    event: str
    url: str
    status: str
    attempts: int
    last_attempt_at: dt.datetime | None
    last_result: int | str | None
    next_attempt_at: dt.datetime | None


def _result(http_status: int | None, error: str | None) -> int | str | None:
    if http_status is not None:
        return http_status
    return error.split(":", 1)[0] if error else None


@port.plan
def log(
    db: port.Db,
    partner_code: str,
    *,
    sandbox: bool = False,
    status: str | None = None,
    nob: str | None = None,
    since: dt.datetime | None = None,
    before: int | None = None,
    limit: int = 50,
) -> Plan[tuple[list[Entry], bool]]:
    """At most ``limit`` of the partner's deliveries, newest first, older than the delivery
    ``before`` (the cursor) when given; and whether older ones follow."""
    if status is not None and status not in STATES:
        raise errors.Invalid(f"status must be one of {', '.join(STATES)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.Invalid(f"limit must be 1 to {MAX_LIMIT}")
    statuses = list(STATES[status]) if status else list(SHOWN)
    params = {"partner": partner_code, "sandbox": sandbox, "statuses": statuses, "nob": nob}
    rows = yield port.fetch(Q["log"], params | {"since": since, "before": before, "limit": limit + 1})
    return [_entry(row) for row in rows[:limit]], len(rows) > limit


def _entry(row) -> Entry:
    if row.status != webhooks.PENDING:
        next_at = None
    else:  # the job server's time for a retry; else as soon as it takes the delivery
        next_at = row.next_attempt_at or row.created_at
    return Entry(
        id=row.id,
        event_id=str(row.event_id),
        nob=row.nob,
        pid=row.pid,
        event=row.event,
        url=row.url,
        status=SHOWN[row.status],
        attempts=row.attempts,
        last_attempt_at=row.last_attempt_at,
        last_result=_result(row.last_http_status, row.last_error),
        next_attempt_at=next_at,
    )


def event_id_of(text: str) -> str | None:
    """``text`` as an event id (a UUID, lowercase), None when it is not one."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


@port.plan
def resend(
    db: port.Db, partner_code: str, event_id: str, now: dt.datetime, *, sandbox: bool = False
) -> Plan[webhooks.Resent]:
    """Send the partner's event ``event_id`` again now (in the caller's transaction):
    NotFound when it is not one of the partner's (on this side); TooManyResends past
    ``RESENDS_PER_HOUR`` resends of it in the last hour."""
    found = event_id_of(event_id)
    if found is None:
        raise errors.NotFound("callback event not found")
    last = yield port.one(Q["event"], {"event_id": found, "partner": partner_code, "sandbox": sandbox})
    if last is None:
        raise errors.NotFound("callback event not found")
    hour_ago = now - dt.timedelta(hours=1)
    params = {"event_id": found, "since": hour_ago}
    if (yield port.scalar(Q["resends_since"], params)) >= RESENDS_PER_HOUR:
        oldest = yield port.scalar(Q["oldest_resend_since"], params)
        wait = (oldest - hour_ago).total_seconds()
        raise TooManyResends(
            f"event {found} was resent {RESENDS_PER_HOUR} times in the last hour; retry in {max(1, round(wait))} s",
            wait,
        )
    return (yield from webhooks.resend_delivery(last, now))
