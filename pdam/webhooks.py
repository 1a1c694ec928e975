"""Webhook callbacks (``X-Async``): enqueue with the state change, deliver from the worker.

``enqueue`` runs on the caller's transaction: it snapshots the callback body
of the payment's current state into ``webhook_delivery`` and defers the
delivery job, so the callback exists exactly when the state change commits.
The job lock ``webhook-payment-<id>`` makes one payment's callbacks go out
strictly in order (``created``, the final status, ``reversed``), retries
included. Web requests never make HTTP calls: delivering is the worker's job.

``deliver`` makes one HTTP attempt, records it in ``webhook_attempt`` and
decides: 2xx delivered; 3xx/4xx (or an address the service may not call)
refused, never retried; 5xx, timeout or connection error retried every
WEBHOOK_RETRY_SECONDS until WEBHOOK_MAX_ATTEMPTS attempts or
WEBHOOK_DEADLINE_SECONDS after the first attempt, then failed.

The HTTP client is urllib3 on connections that resolve the host themselves
and refuse, before connecting, any address that is not public (unless
WEBHOOK_ALLOW_PRIVATE_NETWORKS): the address checked is the address
connected to, whatever way the URL spells it, so DNS rebinding does not
help. Redirects are not followed and proxies from the environment are not
used.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
import urllib3
from flask import current_app
from urllib3.util import parse_url

from . import __version__, clock, db, errors, payment, queue, schemas

log = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.deliver"
EVENTS = ("created", "accepted", "changed", "rejected", "reversed")
#: The ``code`` and ``message`` of each event's body. ``reversed`` answers like
#: the reversal itself (``DELETE /tagihan`` returns 200 "payment reversed").
CODES = {"created": 201, "accepted": 202, "changed": 206, "rejected": 409, "reversed": 200}
MESSAGES = {
    "created": "payment in progress",
    "accepted": "payment accepted",
    "changed": "suspect data",
    "rejected": "paid before",
    "reversed": "payment reversed",
}
USER_AGENT = f"pdam-peti/{__version__} (webhook)"
CONTENT_TYPE = "application/json;charset=utf-8"
DATA_FIELDS = ("cid", "pid", "pat", "mer", "inq", "pts", "nob")
META_FIELDS = (
    "jumlah_tagihan", "jumlah_bayar", "jumlah_masalah",
    "lembar_tagihan", "lembar_bayar", "lembar_masalah",
    "periode_tagihan", "periode_bayar", "periode_masalah",
)  # fmt: skip
BODY_FIELDS = ("status", "code", "message", "data", "meta")
#: At most this much of a non-2xx answer is kept in the attempt's error.
SNIPPET_BYTES = 300


class WebhookError(errors.PdamError):
    """The webhook could not be delivered"""


class RetryLater(WebhookError):
    """The receiver could not take the callback now; the job server tries again"""


class DeliveryFailed(WebhookError):
    """The callback could not be delivered before the attempts or the deadline ran out"""


class AddressRefused(Exception):
    """The callback URL leads to an address the service does not call (not an OSError,
    so the HTTP client does not turn it into a connection error)."""


def lock_for(payment_id: int) -> str:
    return f"webhook-payment-{payment_id}"


# -- enqueue (web request or posting job: the caller's transaction) -------------------


def body_for(row: dict, event: str) -> dict:
    """The callback body of ``event`` for a payment row (``payment.PAYMENT_COLUMNS``)."""
    return {
        "status": event,
        "code": CODES[event],
        "message": MESSAGES[event],
        "data": schemas.PaymentData(only=DATA_FIELDS).dump(row),
        "meta": schemas.Meta().dump(row),
    }


INSERT_DELIVERY = sa.text(
    "insert into webhook_delivery (payment_id, event, url, body, created_at)"
    " values (:payment_id, :event, :url, cast(:body as jsonb), :now) returning id"
)


def enqueue(conn: sa.Connection, payment_id: int, event: str, now: dt.datetime | None = None) -> int | None:
    """Record the ``event`` callback of a payment and defer its delivery, on ``conn``'s
    transaction; return the delivery id, or None when the payment has no ``X-Async``."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    row = conn.execute(
        sa.text(f"select {payment.PAYMENT_COLUMNS} from payment where id = :id"), {"id": payment_id}
    ).one_or_none()
    if row is None:
        raise errors.NotFound(f"payment {payment_id} does not exist")
    if not row.callback_url:
        return None
    delivery_id = conn.execute(
        INSERT_DELIVERY,
        {
            "payment_id": payment_id,
            "event": event,
            "url": row.callback_url,
            "body": json.dumps(body_for(row._asdict(), event)),
            "now": now or clock.now(),
        },
    ).scalar_one()
    _defer(conn, payment_id, delivery_id)
    return delivery_id


def _defer(conn: sa.Connection, payment_id: int, delivery_id: int) -> int:
    return queue.defer(
        conn, DELIVER_TASK, queue=queue.WEBHOOK_QUEUE, lock=lock_for(payment_id), delivery_id=delivery_id
    )


@dataclass(frozen=True)
class Resent:
    delivery_id: int
    resend_of: int
    event: str
    event_id: str
    job_id: int


def resend(conn: sa.Connection, nob: str, now: dt.datetime | None = None) -> Resent:
    """Send a payment's last callback again: a new delivery of the same event (same
    body, same X-Event-Id), queued behind the payment's other callbacks."""
    pay = conn.execute(
        sa.text("select id, callback_url from payment where nob = :nob"), {"nob": nob}
    ).one_or_none()
    if pay is None:
        raise errors.NotFound(f"no payment with nob {nob}")
    if not pay.callback_url:
        raise errors.Conflict(f"payment {nob} has no X-Async callback URL; there is nothing to resend")
    last = conn.execute(
        sa.text(
            "select id, event, event_id, url, body from webhook_delivery"
            " where payment_id = :id order by id desc limit 1"
        ),
        {"id": pay.id},
    ).one_or_none()
    if last is None:
        raise errors.Conflict(f"payment {nob} has no callback yet; there is nothing to resend")
    new = conn.execute(
        sa.text(
            "insert into webhook_delivery (payment_id, event, event_id, url, body, created_at, resend_of)"
            " select payment_id, event, event_id, url, body, :now, id from webhook_delivery where id = :id"
            " returning id"
        ),
        {"id": last.id, "now": now or clock.now()},
    ).scalar_one()
    job_id = _defer(conn, pay.id, new)
    return Resent(new, last.id, last.event, str(last.event_id), job_id)


# -- the wire: body bytes, headers, signature -------------------------------------------


def _ordered(values: dict, order: tuple[str, ...]) -> dict:
    known = {key: values[key] for key in order if key in values}
    return known | {key: values[key] for key in sorted(values) if key not in known}


def render(body: dict) -> bytes:
    """The exact bytes sent (and signed): the contract's field order, compact UTF-8 JSON.
    Deterministic, so every attempt of one delivery sends the same body."""
    out = _ordered(body, BODY_FIELDS)
    if isinstance(out.get("data"), dict):
        out["data"] = _ordered(out["data"], DATA_FIELDS)
    if isinstance(out.get("meta"), dict):
        out["meta"] = _ordered(out["meta"], META_FIELDS)
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signature(secret: str, timestamp: int, raw_body: bytes) -> str:
    """``X-Signature``: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + raw_body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def headers_for(row, raw_body: bytes, now: dt.datetime) -> dict[str, str]:
    headers = {
        "Content-Type": CONTENT_TYPE,
        "User-Agent": USER_AGENT,
        "X-Event-Id": str(row.event_id),
        "X-Signature": signature(row.webhook_secret, int(now.timestamp()), raw_body),
    }
    authorization = row.callback_token or row.request_authorization
    if authorization:
        headers["Authorization"] = authorization
    return headers


# -- the guarded HTTP client --------------------------------------------------------------


UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
REFUSED_KINDS = (
    ("loopback", "a loopback address"),
    ("unspecified", "the unspecified address"),
    ("link_local", "a link-local address"),
    ("multicast", "a multicast address"),
    ("reserved", "a reserved address"),
    ("private", "a private address"),
)


def refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why the service must not call ``ip`` (None: a public address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 is judged as the IPv4 address it reaches.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = refusal(embedded)
            if reason:
                return f"{reason} (inside {ip})"
            if ip.ipv4_mapped:  # a mapped address reaches exactly that IPv4 address
                return None
        if ip in UNIQUE_LOCAL:
            return f"{ip} is a unique-local address"
        if ip.is_site_local:
            return f"{ip} is a site-local address"
    for kind, label in REFUSED_KINDS:
        if getattr(ip, f"is_{kind}"):
            return f"{ip} is {label}"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def private_network_refusal(ip) -> str | None:
    """With WEBHOOK_ALLOW_PRIVATE_NETWORKS: loopback and private networks are allowed; the
    addresses that are never a receiver (unspecified, multicast) still are not."""
    if ip.is_unspecified or ip.is_multicast:
        return f"{ip} is not a unicast address"
    return None


class _GuardedConnectionMixin:
    """Resolve the host here, check every address, connect only to an allowed one."""

    def __init__(self, *args, allow_private: bool = False, deadline: Deadline | None = None, **kwargs):
        self.allow_private = allow_private
        self.deadline = deadline
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        host = self._dns_host.strip("[]")
        check = private_network_refusal if self.allow_private else refusal
        try:
            infos = socket.getaddrinfo(host, self.port, socket.AF_UNSPEC, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise urllib3.exceptions.NameResolutionError(host, self, exc) from exc
        refused, last_error = [], None
        for family, socktype, proto, _canon, sockaddr in infos:
            ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
            reason = check(ip)
            if reason:
                refused.append(reason)
                continue
            sock = socket.socket(family, socktype, proto)
            try:
                sock.settimeout(self.timeout)
                sock.connect(sockaddr)
                if self.deadline is not None:
                    self.deadline.watch(sock)
                return sock
            except OSError as exc:
                sock.close()
                last_error = exc
        if last_error is None:
            raise AddressRefused(f"{host} is not called: " + "; ".join(dict.fromkeys(refused)))
        if isinstance(last_error, TimeoutError):
            raise urllib3.exceptions.ConnectTimeoutError(
                self, f"connection to {host} timed out (connect timeout={self.timeout})"
            ) from last_error
        raise urllib3.exceptions.NewConnectionError(self, f"cannot connect to {host}: {last_error}")


class Deadline:
    """The whole attempt's time limit. A read timeout bounds each read, so a receiver
    that sends its answer a byte at a time would hold a worker slot for ever; when the
    time is up this shuts the connection down, and the blocked read returns."""

    def __init__(self, seconds: float):
        self.expired = False
        self._sock: socket.socket | None = None
        self._done = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        # A duplicate descriptor of the same connection: TLS takes the original over.
        with self._lock:
            self._sock = sock.dup()
            if self.expired:
                self._shutdown()

    def _shutdown(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed by the other side
            pass

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            if self._sock is not None:
                self._shutdown()

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._done = True
            if self._sock is not None:
                self._sock.close()


class GuardedHTTPConnection(_GuardedConnectionMixin, urllib3.connection.HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, urllib3.connection.HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


@dataclass(frozen=True)
class Outcome:
    """One attempt: ``result`` is delivered, refused or retry."""

    result: str
    http_status: int | None = None
    error: str | None = None


def _snippet(response) -> str:
    try:
        data = response.read(SNIPPET_BYTES, decode_content=False)
    except Exception:  # the status is what matters; a broken body is not worth an error
        return ""
    return data.decode("utf-8", "replace").strip()


def send(url: str, raw_body: bytes, headers: dict, *, timeout: float, allow_private: bool) -> Outcome:
    """POST ``raw_body`` to ``url`` once, the whole attempt within ``timeout`` seconds:
    no redirects, no proxies, only addresses that pass the guard."""
    try:
        parts = parse_url(url)
    except urllib3.exceptions.LocationParseError:
        return Outcome("refused", error="refused: not a valid URL")
    if parts.scheme not in ("http", "https") or not parts.host:
        return Outcome("refused", error="refused: only absolute http(s) URLs are called")
    pool_cls = GuardedHTTPSConnectionPool if parts.scheme == "https" else GuardedHTTPConnectionPool
    deadline = Deadline(timeout)
    pool = pool_cls(
        parts.host,
        parts.port,
        timeout=urllib3.Timeout(connect=timeout, read=timeout),
        retries=False,
        maxsize=1,
        allow_private=allow_private,
        deadline=deadline,
    )
    try:
        response = pool.urlopen(
            "POST",
            parts.request_uri,
            body=raw_body,
            headers=headers,
            retries=False,
            redirect=False,
            assert_same_host=False,
            preload_content=False,
        )
        try:
            status = response.status
            if 200 <= status < 300:
                return Outcome("delivered", http_status=status)
            if 300 <= status < 400:
                location = response.headers.get("Location", "")
                return Outcome("refused", status, f"redirect to {location[:200]} not followed")
            snippet = _snippet(response)
            error = f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
            return Outcome("refused" if status < 500 else "retry", status, error)
        finally:
            response.release_conn()
    except AddressRefused as exc:
        return Outcome("refused", error=f"refused: {exc}")
    except urllib3.exceptions.NewConnectionError as exc:  # before TimeoutError: a subclass of it
        return Outcome("retry", error=f"connection error: {exc}")
    except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
        return Outcome("retry", error=f"timeout: {exc}")
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if deadline.expired:  # the connection was shut down by the deadline
            return Outcome("retry", error=f"timeout: no complete answer within {timeout} s")
        return Outcome("retry", error=f"connection error: {exc}")
    finally:
        deadline.cancel()
        pool.close()


# -- deliver (the worker) ----------------------------------------------------------------

LOAD = sa.text(
    "select d.id, d.payment_id, d.event, d.event_id, d.url, d.body, d.status, d.attempts,"
    " d.first_attempt_at, p.callback_token, p.request_authorization, pa.webhook_secret"
    " from webhook_delivery d join payment p on p.id = d.payment_id"
    " join partner pa on pa.code = p.partner_code where d.id = :id"
)
INSERT_ATTEMPT = sa.text(
    "insert into webhook_attempt (delivery_id, attempted_at, url, http_status, error, duration_ms)"
    " values (:id, :at, :url, :http_status, left(:error, 1000), :duration_ms)"
)
RECORD = sa.text(
    "update webhook_delivery set attempts = attempts + 1, status = :status,"
    " first_attempt_at = coalesce(first_attempt_at, :at), last_attempt_at = :at,"
    " last_error = left(:error, 1000), delivered_at = :delivered_at"
    " where id = :id and status = 'pending' and attempts = :attempts"
)


def _final(cfg, attempts: int, job_attempt: int, first: dt.datetime, now: dt.datetime) -> bool:
    """No retry after this attempt: out of attempts, or the next one would be past the deadline."""
    if max(attempts, job_attempt) >= cfg["WEBHOOK_MAX_ATTEMPTS"]:
        return True
    next_at = (now - first).total_seconds() + cfg["WEBHOOK_RETRY_SECONDS"]
    return next_at > cfg["WEBHOOK_DEADLINE_SECONDS"]


def deliver(delivery_id: int, job_attempt: int = 1) -> str:
    """One delivery attempt as the job server runs it; return delivered/refused.

    Raises RetryLater for an attempt to be repeated, DeliveryFailed when the
    delivery is given up (both after recording the attempt). No database
    transaction stays open during the HTTP call.
    """
    cfg = current_app.config
    conn = db.connection()
    row = conn.execute(LOAD, {"id": delivery_id}).one_or_none()
    conn.rollback()  # only read: end the transaction before calling out
    if row is None:
        raise WebhookError(f"webhook delivery {delivery_id} does not exist")
    if row.status != "pending":  # a job run again after it finished: nothing to do
        return row.status

    raw_body = render(row.body)
    attempted_at = clock.now()
    started = time.monotonic()
    outcome = send(
        row.url,
        raw_body,
        headers_for(row, raw_body, attempted_at),
        timeout=cfg["WEBHOOK_TIMEOUT_SECONDS"],
        allow_private=cfg["WEBHOOK_ALLOW_PRIVATE_NETWORKS"],
    )
    duration_ms = int((time.monotonic() - started) * 1000)

    attempts = row.attempts + 1
    status = outcome.result
    if status == "retry":
        first = row.first_attempt_at or attempted_at
        status = "failed" if _final(cfg, attempts, job_attempt, first, attempted_at) else "pending"
    error = outcome.error
    with db.transaction() as conn:
        conn.execute(
            INSERT_ATTEMPT,
            {
                "id": delivery_id,
                "at": attempted_at,
                "url": row.url,
                "http_status": outcome.http_status,
                "error": error,
                "duration_ms": duration_ms,
            },
        )
        recorded = conn.execute(
            RECORD,
            {
                "id": delivery_id,
                "attempts": row.attempts,
                "status": status,
                "at": attempted_at,
                "error": error,
                "delivered_at": attempted_at if status == "delivered" else None,
            },
        ).rowcount
    if recorded != 1:  # another run recorded this delivery meanwhile; its answer stands
        log.warning("webhook delivery %s changed during attempt %s", delivery_id, attempts)
        return "superseded"
    log.info(
        "webhook delivery %s (%s) attempt %s: %s %s", delivery_id, row.event, attempts, status,
        outcome.http_status or error,
    )
    if status == "pending":
        raise RetryLater(f"webhook delivery {delivery_id} attempt {attempts}: {error}")
    if status == "failed":
        raise DeliveryFailed(f"webhook delivery {delivery_id} failed after {attempts} attempts: {error}")
    return status


def give_up(conn: sa.Connection, delivery_id: int, reason: str, now: dt.datetime | None = None) -> bool:
    """Mark a still pending delivery failed without an attempt (its job was given up
    outside ``deliver``, e.g. by stalled-job recovery); an operator can resend it."""
    return bool(
        conn.execute(
            sa.text(
                "update webhook_delivery set status = 'failed', last_error = left(:reason, 1000)"
                " where id = :id and status = 'pending'"
            ),
            {"id": delivery_id, "reason": f"{reason} ({(now or clock.now()):%Y-%m-%d %H:%M:%S%z})"},
        ).rowcount
    )
