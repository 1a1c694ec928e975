"""Partners (mitra): plans on the port (``infra/port.py``); the caller commits."""

from __future__ import annotations

import ipaddress
import secrets

from ..infra import port
from ..infra.port import Plan
from ..infra.sealing import Sealer
from ..infra.sql import queries
from . import errors, ids
from .records import Partner, PartnerListing

Q = queries("partners")


def new_secret() -> str:
    return secrets.token_hex(32)


@port.plan
def add(db: port.Db, code: str, name: str, sealer: Sealer) -> Plan[None]:
    """A new partner with a new webhook signing secret (stored sealed)."""
    if not ids.matches(ids.PARTNER_CODE, code):
        raise errors.Invalid("partner code must be two digits")
    if not 1 <= len(name) <= 64:
        raise errors.Invalid("partner name must be 1..64 characters")
    if not (yield port.count(Q["add"], {"code": code, "name": name, "secret": sealer.seal(new_secret())})):
        raise errors.Conflict(f"partner {code} already exists")


def _row(code: str) -> Plan:
    """The partner's row (its sealed secret included: never handed out), else NotFound."""
    row = yield port.one(Q["get"], {"code": code})
    if row is None:
        raise errors.NotFound(f"partner {code} does not exist")
    return row


@port.plan
def get(db: port.Db, code: str) -> Plan[Partner]:
    return Partner.from_row((yield from _row(code)))


@port.plan
def set_active(db: port.Db, code: str, active: bool) -> Plan[None]:
    yield from _row(code)
    yield port.count(Q["set_active"], {"active": active, "code": code})


@port.plan
def all_partners(db: port.Db) -> Plan[list[PartnerListing]]:
    return [PartnerListing.from_row(row) for row in (yield port.fetch(Q["all"]))]


def networks(values: list[str] | tuple[str, ...] | None) -> list[str] | None:
    """Allowed addresses (contract 14.3) as stored: each a network in CIDR notation (an
    address alone is its /32 or /128); None (or nothing given): any address."""
    if not values:
        return None
    found = []
    for value in values:
        try:
            found.append(str(ipaddress.ip_network(value.strip(), strict=True)))
        except ValueError as exc:
            raise errors.Invalid(f"{value!r} is not an address or network (CIDR): {exc}") from None
    return sorted(set(found), key=found.index)


@port.plan
def allow(db: port.Db, code: str, values: list[str] | None) -> Plan[list[str] | None]:
    """The networks partner ``code``'s live tokens may be used from (None: any); returns them."""
    allowed = networks(values)
    yield from _row(code)
    yield port.count(Q["allow"], {"code": code, "networks": allowed})
    return allowed


@port.plan
def secret(db: port.Db, code: str, sealer: Sealer, rotate: bool = False) -> Plan[str]:
    """The partner's webhook signing secret (a new one with ``rotate``), opened."""
    row = yield from _row(code)
    if rotate:
        value = new_secret()
        yield port.count(Q["set_secret"], {"secret": sealer.seal(value), "code": code})
        return value
    return sealer.open(row.webhook_secret)
