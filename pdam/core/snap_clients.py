"""SNAP clients: banks' credentials for the virtual-account routes (contract 12.1).

A bank that collects through virtual accounts is a partner with SNAP credentials: its
client id (the ``X-CLIENT-KEY`` / ``X-PARTNER-ID`` it sends), its RSA public key
(verifies its token requests), our company code at that bank (``partnerServiceId``) and
a client secret we generate (the HMAC key of its transactional requests), stored sealed.
An operator registers them (``flask --app wsgi snap ...``); the SNAP edge reads them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..infra import port
from ..infra.port import Plan
from ..infra.sealing import Sealer
from ..infra.sql import queries
from . import errors, partners
from .records import SnapClientKey

Q = queries("snap")

CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SERVICE_ID = re.compile(r"[0-9A-Za-z]{1,8}")
MIN_KEY_BITS = 2048


@dataclass(frozen=True)
class SnapClient:
    """A registered SNAP client as operators see it (no key, no secret)."""

    client_id: str
    partner_code: str
    partner_name: str
    active: bool
    service_id: str
    created_at: dt.datetime
    sandbox: bool = False

    @classmethod
    def from_row(cls, row) -> SnapClient:
        return cls(
            client_id=row.client_id,
            partner_code=row.partner_code,
            partner_name=row.partner_name,
            active=row.active,
            service_id=row.service_id,
            created_at=row.created_at,
            sandbox=row.sandbox,
        )


def public_key_pem(data: bytes) -> str:
    """The RSA public key of a PEM file (a public key, PKCS#1 or SubjectPublicKeyInfo, or an
    X.509 certificate) as SubjectPublicKeyInfo PEM."""
    try:
        if b"BEGIN CERTIFICATE" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise errors.Invalid(f"not a PEM public key or certificate: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise errors.Invalid("the key must be an RSA public key (SNAP signs with SHA256withRSA)")
    if key.key_size < MIN_KEY_BITS:
        raise errors.Invalid(f"the RSA key has {key.key_size} bits; at least {MIN_KEY_BITS} are required")
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode()


@port.plan
def register(
    db: port.Db,
    sealer: Sealer,
    code: str,
    client_id: str,
    public_key: str,
    service_id: str,
    now: dt.datetime,
    sandbox: bool = False,
) -> Plan[str]:
    """Give partner ``code`` SNAP credentials (its sandbox's with ``sandbox``: a client of its
    own, with its own key and secret); return the new client secret (stored sealed)."""
    yield from partners.get.plan(db, code)
    if not CLIENT_ID.fullmatch(client_id):
        raise errors.Invalid(
            "the client id must be 1..64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)"
        )
    if not SERVICE_ID.fullmatch(service_id):
        raise errors.Invalid("the service id (partnerServiceId) must be 1..8 letters or digits")
    secret = partners.new_secret()
    params = {
        "client_id": client_id,
        "partner": code,
        "public_key": public_key,
        "secret": sealer.seal(secret),
        "service_id": service_id,
        "now": now,
        "sandbox": sandbox,
    }
    if (yield port.one(Q["register"], params)) is None:
        existing = yield port.one(Q["by_partner"], {"partner": code, "sandbox": sandbox})
        if existing is not None:
            side = "sandbox " if sandbox else ""
            raise errors.Conflict(f"partner {code} already has {side}SNAP client {existing.client_id}")
        raise errors.Conflict(f"client id {client_id} is already registered to another partner")
    return secret


@port.plan
def secret(db: port.Db, sealer: Sealer, code: str, rotate: bool = False, sandbox: bool = False) -> Plan[str]:
    """The client secret of partner ``code`` (its sandbox client's with ``sandbox``; a new one
    with ``rotate``), opened."""
    yield from partners.get.plan(db, code)
    side = {"partner": code, "sandbox": sandbox}
    if rotate:
        row = yield port.one(Q["set_secret"], side | {"secret": sealer.seal(partners.new_secret())})
    else:
        row = yield port.one(Q["by_partner"], side)
    if row is None:
        raise errors.NotFound(f"partner {code} has no SNAP credentials (snap register)")
    return sealer.open(row.client_secret)


@port.plan
def allow(db: port.Db, client_id: str, values: list[str] | None) -> Plan[list[str] | None]:
    """The networks SNAP client ``client_id`` may be used from (None: any); returns them."""
    allowed = partners.networks(values)
    if (yield port.one(Q["allow"], {"client_id": client_id, "networks": allowed})) is None:
        raise errors.NotFound(f"no SNAP client {client_id}")
    return allowed


@port.plan
def all_clients(db: port.Db) -> Plan[list[SnapClient]]:
    return [SnapClient.from_row(row) for row in (yield port.fetch(Q["all"]))]


@port.plan
def client(db: port.Db, client_id: str, rate: int, address: str | None = None) -> Plan[SnapClientKey | None]:
    """A client with its public key, its partner's state and one token of the partner's
    rate limit of ``rate`` requests a second (``rate_wait``; 0: taken), None when unknown.
    A statement of its own, as the PeTi edge's check: the rate bucket is locked for that
    statement only, and a request that fails later does not give its token back."""
    params = {"client_id": client_id, "rate": rate, "address": address}
    row = yield port.one(Q["client"], params, alone=True)
    return None if row is None else SnapClientKey.from_row(row)


def token_hash(token: str) -> str:
    """What is stored of an access token: its SHA-256 (hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    """The client of a live access token, its partner's state and its rate limit's answer
    (as ``client``). Never its secret: ``verify`` opens that for a check the edge gives."""

    client_id: str
    partner_code: str
    service_id: str
    active: bool
    rate_wait: float
    sandbox: bool = False
    address_ok: bool = True

    @classmethod
    def from_row(cls, row) -> Caller:
        return cls(
            client_id=row.client_id,
            partner_code=row.partner_code,
            service_id=row.service_id,
            active=row.active,
            rate_wait=row.rate_wait,
            sandbox=row.sandbox,
            address_ok=row.address_ok,
        )


@port.plan
def caller(
    db: port.Db, token: str, now: dt.datetime, rate: int, address: str | None = None
) -> Plan[Caller | None]:
    """The client of a live access token (None: unknown or expired), with one token of its
    partner's rate limit (as ``client``): a statement of its own."""
    row = yield port.one(
        Q["token_client"],
        {"token_hash": token_hash(token), "now": now, "rate": rate, "address": address},
        alone=True,
    )
    return None if row is None else Caller.from_row(row)


@port.plan
def verify(db: port.Db, sealer: Sealer, client_id: str, check: Callable[[str], bool]) -> Plan[bool]:
    """``check(secret)`` with client ``client_id``'s secret, opened here and nowhere else:
    whether a request was signed with it (False: no such client any more)."""
    sealed = yield port.scalar(Q["sealed_secret"], {"client_id": client_id})
    return sealed is not None and check(sealer.open(sealed))
