"""Partner tokens: key pairs, issuing, listing and revocation.

Only the administrator's CLI holds the private key and signs (``issue`` is given its
``sign``); the web service verifies with the public key.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..infra import port
from ..infra.port import Plan
from ..infra.sql import queries
from . import errors, partners
from .records import Grant, PartnerCheck, Token

Q = queries("tokens")


def keygen(directory: Path, algorithm: str = "ES256") -> tuple[Path, Path]:
    """Write ``private.pem`` (mode 600) and ``public.pem`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    if algorithm == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = directory / "private.pem"
    public = directory / "public.pem"
    private.touch(mode=0o600, exist_ok=True)
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


#: Signs a grant as a JWT (the token CLI's ``sign``: flask-jwt-extended's
#: ``create_access_token`` under the configured algorithm, private key and issuer).
Signer = Callable[[Grant], str]


@port.plan
def issue(
    db: port.Db, *, code: str, now: dt.datetime, expires: dt.datetime, sign: Signer, sandbox: bool = False
) -> Plan[str]:
    """Sign a token for an active partner (``sign``) and record its ``jti`` (a sandbox token with
    ``sandbox``: its record says so, and the record is what the service reads)."""
    partner = yield from partners.get.plan(db, code)
    if not partner.active:
        raise errors.NotAllowed(f"partner {code} is deactivated")
    if expires <= now:
        raise errors.Invalid("the token would already be expired")
    grant = Grant(code=code, name=partner.name, jti=secrets.token_hex(16), issued_at=now, expires_at=expires)
    token = sign(grant)
    record = {"jti": grant.jti, "code": code, "iat": now, "exp": expires, "sandbox": sandbox}
    yield port.count(Q["record"], record)
    return token


@port.plan
def list_tokens(db: port.Db, code: str | None = None) -> Plan[list[Token]]:
    return [Token.from_row(row) for row in (yield port.fetch(Q["list"], {"code": code}))]


def jti_of(token_or_jti: str) -> str:
    """Accept a bare ``jti`` or a whole token (its signature is not needed to revoke it)."""
    value = token_or_jti.strip()
    if "." not in value:
        return value
    try:
        claims = jwt.decode(value, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise errors.Invalid(f"not a token: {exc}") from None
    if not isinstance(claims.get("jti"), str):
        raise errors.Invalid("the token has no jti")
    return claims["jti"]


@port.plan
def revoke(db: port.Db, token_or_jti: str, reason: str, now: dt.datetime) -> Plan[str]:
    jti = jti_of(token_or_jti)
    if not reason.strip():
        raise errors.Invalid("a reason is required")
    updated = yield port.count(Q["revoke"], {"jti": jti, "reason": reason, "now": now})
    if not updated:
        raise errors.NotFound(f"no token with jti {jti}")
    return jti


@port.plan
def partner_check(
    db: port.Db, code: str, jti: str, rate: int, address: str | None = None
) -> Plan[PartnerCheck | None]:
    """The partner of a token, whether the CLI issued that token to it, whether it is
    revoked, and one token of the partner's rate limit of ``rate`` requests a second
    (``rate_wait``: 0 taken, else seconds until the next; ``rate`` 0: no limit), in one
    statement of its own: the rate bucket is locked for that statement only, and a
    request that fails later does not give its token back. ``address``: the request's, checked
    against the partner's allowed addresses (``address_ok``; a request from elsewhere takes no
    rate token)."""
    params = {"code": code, "jti": jti, "rate": rate, "address": address}
    row = yield port.one(Q["partner_check"], params, alone=True)
    return None if row is None else PartnerCheck.from_row(row)
