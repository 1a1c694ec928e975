"""What the SNAP edge keeps in PostgreSQL: access tokens, X-EXTERNAL-ID answers and the bank's
references of a payment (the clients themselves: ``pdam/core/snap_clients.py``).

Everything shared lives in the database, so a token or an answer is the same in
every web process and after a restart. Plans on the core's port
(``infra/port.py``); the request owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from ..core.snap_clients import token_hash
from ..infra import port
from ..infra.port import Plan
from ..infra.sql import queries

Q = queries("snap")


@port.plan
def issue_token(db: port.Db, client_id: str, now: dt.datetime, day: dt.date, ttl: int) -> Plan[str]:
    """A new access token valid ``ttl`` seconds; only its hash is stored. The client's
    expired tokens and its X-EXTERNAL-ID answers before yesterday (``day`` - 1) go."""
    token = secrets.token_urlsafe(32)
    yield port.count(
        Q["issue_token"],
        {
            "token_hash": token_hash(token),
            "client_id": client_id,
            "now": now,
            "day": day,
            "expires": now + dt.timedelta(seconds=ttl),
        },
    )
    return token


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming an X-EXTERNAL-ID: ``new`` (this request answers it), or the
    first answer (``status``, ``body``) of the identical request, or ``conflict``."""

    new: bool = False
    conflict: bool = False
    status: int | None = None
    body: bytes | None = None


@port.plan
def claim(
    db: port.Db, client_id: str, day: dt.date, external_id: str, fingerprint: str, now: dt.datetime
) -> Plan[Claim]:
    """Claim ``external_id`` for this request in the caller's transaction.

    The claim and the answer commit together; a concurrent request with the same id
    waits for that commit (the unique key), then reads the answer. A claimer that
    rolled back (an outage) leaves nothing: the next request claims the id again.
    """
    key = {"client_id": client_id, "day": day, "external_id": external_id}
    if (yield port.one(Q["claim_external_id"], {**key, "fingerprint": fingerprint, "now": now})):
        return Claim(new=True)
    row = yield port.one(Q["external_id"], key)
    if row.fingerprint != fingerprint:
        return Claim(conflict=True)
    return Claim(status=row.status, body=bytes(row.body))


@port.plan
def answer(
    db: port.Db, client_id: str, day: dt.date, external_id: str, status: int, body: bytes
) -> Plan[None]:
    """Record the answer to a claimed X-EXTERNAL-ID (in the transaction that claimed it)."""
    updated = yield port.count(
        Q["answer_external_id"],
        {"client_id": client_id, "day": day, "external_id": external_id, "status": status, "body": body},
    )
    if updated != 1:  # impossible: the row is ours until we commit
        raise RuntimeError(f"X-EXTERNAL-ID {external_id} was not claimed by this request")


@port.plan
def save_payment_refs(db: port.Db, payment_id: int, reference_no: str | None, trx: str | None) -> Plan[None]:
    """Keep the bank's ``referenceNo`` and ``trxDateTime`` of the request that recorded
    payment ``payment_id`` (in its transaction): its later answers repeat them."""
    yield port.count(
        Q["save_payment_refs"],
        {"payment_id": payment_id, "reference_no": reference_no, "trx_date_time": trx},
    )


@port.plan
def payment_refs(db: port.Db, payment_id: int) -> Plan[tuple[str | None, str | None]]:
    """The bank's ``referenceNo`` and ``trxDateTime`` kept for a payment (None, None: a
    payment recorded before they were kept)."""
    row = yield port.one(Q["payment_refs"], {"payment_id": payment_id})
    return (None, None) if row is None else (row.reference_no, row.trx_date_time)
