"""Partners (mitra): plain functions on a connection; the caller commits."""

from __future__ import annotations

import re
import secrets

import sqlalchemy as sa

from . import errors

CODE_RE = re.compile(r"^[0-9]{2}$")


def new_secret() -> str:
    return secrets.token_hex(32)


def add(conn: sa.Connection, code: str, name: str) -> None:
    if not CODE_RE.match(code):
        raise errors.BadRequest("partner code must be two digits")
    if not 1 <= len(name) <= 64:
        raise errors.BadRequest("partner name must be 1..64 characters")
    inserted = conn.execute(
        sa.text(
            "insert into partner (code, name, webhook_secret) values (:code, :name, :secret)"
            " on conflict (code) do nothing"
        ),
        {"code": code, "name": name, "secret": new_secret()},
    ).rowcount
    if not inserted:
        raise errors.Conflict(f"partner {code} already exists")


def get(conn: sa.Connection, code: str):
    row = conn.execute(
        sa.text("select code, name, active, webhook_secret, created_at from partner where code = :c"),
        {"c": code},
    ).one_or_none()
    if row is None:
        raise errors.NotFound(f"partner {code} does not exist")
    return row


def set_active(conn: sa.Connection, code: str, active: bool) -> None:
    get(conn, code)
    conn.execute(sa.text("update partner set active = :a where code = :c"), {"a": active, "c": code})


def all_partners(conn: sa.Connection):
    return conn.execute(
        sa.text(
            "select p.code, p.name, p.active, p.created_at,"
            " (select count(*) from api_token t where t.partner_code = p.code"
            "   and t.revoked_at is null and t.expires_at > now()) as live_tokens"
            " from partner p order by p.code"
        )
    ).all()


def secret(conn: sa.Connection, code: str, rotate: bool = False) -> str:
    if rotate:
        get(conn, code)
        value = new_secret()
        conn.execute(
            sa.text("update partner set webhook_secret = :s where code = :c"), {"s": value, "c": code}
        )
        return value
    return get(conn, code).webhook_secret
