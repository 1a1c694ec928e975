"""What the SNAP edge keeps in PostgreSQL: access tokens, X-EXTERNAL-ID answers and the bank's
references of a payment (the clients themselves: ``pdam/core/snap_clients.py``).

Everything shared lives in the database, so a token or an answer is the same in
every web process and after a restart. Plain functions on a connection; the
request owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from ..infra.db import execute_alone
from ..infra.sql import queries

Q = queries("snap")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(conn: sa.Connection, client_id: str, now: dt.datetime, day: dt.date, ttl: int) -> str:
    """A new access token valid ``ttl`` seconds; only its hash is stored. The client's
    expired tokens and its X-EXTERNAL-ID answers before yesterday (``day`` - 1) go."""
    token = secrets.token_urlsafe(32)
    conn.execute(
        Q["issue_token"],
        {
            "token_hash": _hash(token),
            "client_id": client_id,
            "now": now,
            "day": day,
            "expires": now + dt.timedelta(seconds=ttl),
        },
    )
    return token


def token_client(conn: sa.Connection, token: str, now: dt.datetime, rate: int) -> sa.Row | None:
    """The client of a live access token, with its secret, its partner's state and one token
    of the partner's rate limit (as ``client``)."""
    return execute_alone(conn, Q["token_client"], {"token_hash": _hash(token), "now": now, "rate": rate})


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming an X-EXTERNAL-ID: ``new`` (this request answers it), or the
    first answer (``status``, ``body``) of the identical request, or ``conflict``."""

    new: bool = False
    conflict: bool = False
    status: int | None = None
    body: bytes | None = None


def claim(
    conn: sa.Connection, client_id: str, day: dt.date, external_id: str, fingerprint: str, now: dt.datetime
) -> Claim:
    """Claim ``external_id`` for this request in the caller's transaction.

    The claim and the answer commit together; a concurrent request with the same id
    waits for that commit (the unique key), then reads the answer. A claimer that
    rolled back (an outage) leaves nothing: the next request claims the id again.
    """
    key = {"client_id": client_id, "day": day, "external_id": external_id}
    if conn.execute(Q["claim_external_id"], {**key, "fingerprint": fingerprint, "now": now}).first():
        return Claim(new=True)
    row = conn.execute(Q["external_id"], key).one()
    if row.fingerprint != fingerprint:
        return Claim(conflict=True)
    return Claim(status=row.status, body=bytes(row.body))


def answer(
    conn: sa.Connection, client_id: str, day: dt.date, external_id: str, status: int, body: bytes
) -> None:
    """Record the answer to a claimed X-EXTERNAL-ID (in the transaction that claimed it)."""
    updated = conn.execute(
        Q["answer_external_id"],
        {"client_id": client_id, "day": day, "external_id": external_id, "status": status, "body": body},
    ).rowcount
    if updated != 1:  # impossible: the row is ours until we commit
        raise RuntimeError(f"X-EXTERNAL-ID {external_id} was not claimed by this request")


def save_payment_refs(
    conn: sa.Connection, payment_id: int, reference_no: str | None, trx: str | None
) -> None:
    """Keep the bank's ``referenceNo`` and ``trxDateTime`` of the request that recorded
    payment ``payment_id`` (in its transaction): its later answers repeat them."""
    conn.execute(
        Q["save_payment_refs"],
        {"payment_id": payment_id, "reference_no": reference_no, "trx_date_time": trx},
    )


def payment_refs(conn: sa.Connection, payment_id: int) -> tuple[str | None, str | None]:
    """The bank's ``referenceNo`` and ``trxDateTime`` kept for a payment (None, None: a
    payment recorded before they were kept)."""
    row = conn.execute(Q["payment_refs"], {"payment_id": payment_id}).one_or_none()
    return (None, None) if row is None else (row.reference_no, row.trx_date_time)
