"""Partners (mitra): plain functions on a connection; the caller commits."""

from __future__ import annotations

import secrets

import sqlalchemy as sa

from ..infra.sealing import Sealer
from ..infra.sql import queries
from . import errors, ids

Q = queries("partners")


def new_secret() -> str:
    return secrets.token_hex(32)


def add(conn: sa.Connection, code: str, name: str, sealer: Sealer) -> None:
    """A new partner with a new webhook signing secret (stored sealed)."""
    if not ids.matches(ids.PARTNER_CODE, code):
        raise errors.Invalid("partner code must be two digits")
    if not 1 <= len(name) <= 64:
        raise errors.Invalid("partner name must be 1..64 characters")
    if not conn.execute(Q["add"], {"code": code, "name": name, "secret": sealer.seal(new_secret())}).rowcount:
        raise errors.Conflict(f"partner {code} already exists")


def get(conn: sa.Connection, code: str) -> sa.Row:
    row = conn.execute(Q["get"], {"code": code}).one_or_none()
    if row is None:
        raise errors.NotFound(f"partner {code} does not exist")
    return row


def set_active(conn: sa.Connection, code: str, active: bool) -> None:
    get(conn, code)
    conn.execute(Q["set_active"], {"active": active, "code": code})


def all_partners(conn: sa.Connection) -> list[sa.Row]:
    return conn.execute(Q["all"]).all()


def secret(conn: sa.Connection, code: str, sealer: Sealer, rotate: bool = False) -> str:
    """The partner's webhook signing secret (a new one with ``rotate``), opened."""
    if rotate:
        get(conn, code)
        value = new_secret()
        conn.execute(Q["set_secret"], {"secret": sealer.seal(value), "code": code})
        return value
    return sealer.open(get(conn, code).webhook_secret)
