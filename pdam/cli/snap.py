"""``snap``: SNAP credentials of partners (banks), contract section 12.1.

A bank that collects through virtual accounts is a partner (``partner add``) with
SNAP credentials: its client id (the ``X-CLIENT-KEY`` / ``X-PARTNER-ID`` it sends),
its RSA public key (verifies its token requests), our company code at that bank
(``partnerServiceId``) and a client secret we generate (the HMAC key of its
transactional requests, handed to the bank over a secure channel).
"""

from __future__ import annotations

import re
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.cli import AppGroup

from ..core import errors, partners
from ..infra import clock
from ..infra.sealing import Sealer
from ..infra.sql import queries
from ..web import runtime
from .common import reports_errors, run_in_transaction

Q = queries("snap")
group = AppGroup("snap", help="SNAP credentials of partners (banks' virtual accounts).")

CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SERVICE_ID = re.compile(r"[0-9A-Za-z]{1,8}")
MIN_KEY_BITS = 2048


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


def register(conn, code: str, client_id: str, public_key: str, service_id: str, sealer: Sealer) -> str:
    """Give partner ``code`` SNAP credentials; return the new client secret (stored sealed)."""
    partners.get(conn, code)
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
        "now": clock.system(),
    }
    if conn.execute(Q["register"], params).first() is None:
        existing = conn.execute(Q["by_partner"], {"partner": code}).one_or_none()
        if existing is not None:
            raise errors.Conflict(f"partner {code} already has SNAP client {existing.client_id}")
        raise errors.Conflict(f"client id {client_id} is already registered to another partner")
    return secret


def secret(conn, code: str, rotate: bool, sealer: Sealer) -> str:
    """The client secret of partner ``code`` (a new one with ``rotate``), opened."""
    partners.get(conn, code)
    if rotate:
        row = conn.execute(
            Q["set_secret"], {"partner": code, "secret": sealer.seal(partners.new_secret())}
        ).one_or_none()
    else:
        row = conn.execute(Q["by_partner"], {"partner": code}).one_or_none()
    if row is None:
        raise errors.NotFound(f"partner {code} has no SNAP credentials (snap register)")
    return sealer.open(row.client_secret)


@group.command("register")
@click.argument("code")
@click.option("--client-id", required=True, help="The bank's client id (its X-CLIENT-KEY / X-PARTNER-ID).")
@click.option(
    "--public-key",
    "public_key_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="PEM file of the bank's RSA public key (or its certificate).",
)
@click.option(
    "--service-id", required=True, help="Our company code at that bank (partnerServiceId, up to 8)."
)
@reports_errors
def snap_register(code, client_id, public_key_file, service_id):
    """Give partner CODE SNAP credentials; print the client secret alone on the last line."""
    pem = public_key_pem(public_key_file.read_bytes())
    value = run_in_transaction(register, code, client_id, pem, service_id, runtime.sealer())
    click.echo(
        f"partner {code}: SNAP client {client_id} registered, partnerServiceId {service_id.rjust(8)!r};"
        " client secret (give it to the bank over a secure channel):"
    )
    click.echo(value)


@group.command("secret")
@click.argument("code")
@click.option("--rotate", is_flag=True, help="Replace the client secret with a new one.")
@reports_errors
def snap_secret(code, rotate):
    """Print (or replace) the client secret of partner CODE."""
    click.echo(run_in_transaction(secret, code, rotate, runtime.sealer()))


@group.command("list")
@reports_errors
def snap_list():
    """List SNAP clients."""
    rows = run_in_transaction(lambda conn: conn.execute(Q["all"]).all())
    click.echo(f"{'client id':24}  {'partner':12}  {'service id':10}  created")
    for r in rows:
        partner = f"{r.partner_code} {r.name}" + ("" if r.active else " (off)")
        click.echo(f"{r.client_id:24}  {partner:12}  {r.service_id:10}  {r.created_at:%Y-%m-%d %H:%M}")
