"""Partner authentication: ES256/RS256 JWTs verified with public keys only.

``authenticate(header, now)`` is the whole check, in order: the ``Authorization``
header, the token's signature, algorithm (the one configured, never ``none`` or
HS*), ``iss``, ``exp``, ``nbf`` and ``iat`` (PyJWT, leeway 0), the contract's
claims, then in one statement the token's record, revocation, the partner's
state and its rate limit. It returns the ``Partner`` or raises the answer.

A token's signature is verified once per process: the claims of a token that
passed every check are kept (``VerifiedTokens``, bounded), and a request with the
same ``Authorization`` header checks only what can change: expiry, ``nbf`` and
``iat`` against the clock, and revocation, the partner's state and its rate limit
in the database, every time.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from flask import Flask, current_app, g, request
from jwt import algorithms as jwt_algorithms
from jwt import exceptions as jwt_exceptions

from ..core import errors, ids, tokens
from ..web import addresses, ratelimit, runtime
from ..web.errors import Unauthorized

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Partner:
    code: str
    name: str
    active: bool
    #: The token is a sandbox token (``token issue --sandbox``, its ``api_token`` row): every
    #: route then works on the partner's sandbox only, and answers ``X-Sandbox: true``.
    sandbox: bool = False


def load_public_key(cfg) -> str | None:
    if cfg.get("PDAM_JWT_PUBLIC_KEY"):
        return cfg["PDAM_JWT_PUBLIC_KEY"]
    path = Path(cfg["PDAM_JWT_PUBLIC_KEY_FILE"])
    return path.read_text() if path.exists() else None


def _parsed(algorithm: str, public_key: str | None):
    """The public key as the algorithm's key object (parsed once: parsing the PEM text
    costs more than verifying a signature), or None when it is missing or unusable."""
    if not public_key:
        return None
    try:
        return jwt_algorithms.get_default_algorithms()[algorithm].prepare_key(public_key)
    except (ValueError, TypeError, jwt_exceptions.InvalidKeyError) as exc:
        log.error(
            "the JWT public key is not a usable %s key (%s): every request needing a token gets 503",
            algorithm,
            exc,
        )
        return None


class VerifiedTokens:
    """Claims of the tokens this process verified, by ``Authorization`` header value; at
    most ``size`` of them (the oldest goes first). Only a header that passed every check
    is kept, so a hit can only be a token whose signature, algorithm, issuer and claims
    were verified already."""

    def __init__(self, size: int):
        self.size = size
        self._claims: dict[str, dict] = {}
        self._lock = threading.Lock()

    def get(self, header: str | None) -> dict | None:
        return self._claims.get(header) if header else None

    def put(self, header: str, claims: dict) -> None:
        with self._lock:
            while self._claims and len(self._claims) >= self.size:
                del self._claims[next(iter(self._claims))]
            if self.size > 0:
                self._claims[header] = claims

    def __len__(self) -> int:
        return len(self._claims)


VERIFIED_TOKENS = 4096
#: The clock the cached claims are checked against: PyJWT's (the wall clock, in seconds).
wall_clock = time.time


def check_times(claims: dict, now: float) -> None:
    """What PyJWT checks against the clock (leeway 0), with the same answers: a cached
    token expires, and one not valid yet stays refused, exactly as uncached."""
    if int(claims["exp"]) <= now:
        raise Unauthorized("Token has expired")
    if "nbf" in claims and int(claims["nbf"]) > now:
        raise Unauthorized("Invalid token: The token is not yet valid (nbf)")
    if int(claims["iat"]) > now:
        raise Unauthorized("Invalid token: The token is not yet valid (iat)")


#: The claims every partner token carries (contract section 1), checked after the signature.
REQUIRED_CLAIMS = ("exp", "iat", "iss", "jti", "sub", "name")
BEARER_FORMAT = "Bad Authorization header. Expected 'Authorization: Bearer <JWT>'"


@dataclass(frozen=True)
class Verifier:
    """What checks a token's signature and registered claims: the one algorithm, its
    parsed public key (None: missing or unusable) and the required issuer."""

    algorithm: str
    key: object | None
    issuer: str

    def claims(self, token: str) -> dict:
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                leeway=0,
                options={"verify_aud": False, "verify_sub": False},
            )
        except jwt_exceptions.ExpiredSignatureError:
            raise Unauthorized("Token has expired") from None
        except jwt_exceptions.InvalidTokenError as exc:
            raise Unauthorized(f"Invalid token: {exc}") from None
        if "sub" not in claims:
            raise Unauthorized("Invalid token: Missing claim: sub")
        if claims.get("type", "access") == "refresh":
            raise Unauthorized("Invalid token: Only non-refresh tokens are allowed")
        for claim in REQUIRED_CLAIMS:
            if claims.get(claim) is None:
                raise Unauthorized(f"Missing claim: {claim}")
        if not ids.matches(ids.JTI, claims["jti"]):
            raise Unauthorized("Invalid claim: jti")
        if not ids.matches(ids.PARTNER_CODE, claims["sub"]):
            raise Unauthorized("Invalid claim: sub")
        return claims


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <JWT>`` header (one Bearer field among
    comma-separated ones, as RFC 7235 allows)."""
    value = (header or "").strip().strip(",")
    fields = [f for f in re.split(r",\s*", value) if f and f.split()[0] == "Bearer"] if value else []
    if len(fields) != 1:
        raise Unauthorized("Missing Authorization Bearer token")
    parts = fields[0].split()
    if len(parts) != 2:
        raise Unauthorized(f"Invalid token: {BEARER_FORMAT}")
    return parts[1]


def authenticate(header: str | None, now: float) -> Partner:
    """The active partner whose token ``header`` carries, within its rate limit, checked
    against the wall clock ``now``; raises ``Unauthorized``, ``NotAllowed``,
    ``TooManyRequests`` (or ``Unavailable`` when no key can verify tokens)."""
    app = current_app
    verifier: Verifier = app.extensions["pdam.jwt_verifier"]
    if verifier.key is None:
        raise errors.Unavailable("token verification key is not configured or not usable")
    cache: VerifiedTokens = app.extensions["pdam.verified_tokens"]
    claims = cache.get(header)
    cached = claims is not None
    if not cached:
        claims = verifier.claims(bearer_token(header))
    check_times(claims, now)
    address = addresses.of_request()
    row = tokens.partner_check(
        runtime.connection(), claims["sub"], claims["jti"], app.config["PARTNER_RATE_LIMIT"], address
    )
    if row is None:
        raise Unauthorized("Unknown partner")
    if not row.address_ok:  # the partner's allowed addresses (contract 14.3), before the rest
        log.warning("address not allowed", extra={"partner": row.code, "address": address})
        raise errors.NotAllowed("address not allowed")
    if not row.known:
        raise Unauthorized("Unknown token")
    if row.revoked:
        raise Unauthorized("Token has been revoked")
    if not cached:
        cache.put(header, claims)
    partner = Partner(row.code, row.name, row.active, row.sandbox)
    g.pdam_sandbox = partner.sandbox  # X-Sandbox on the answer, whatever it is
    ratelimit.admit(partner.code, row.rate_wait)
    if not partner.active:
        raise errors.NotAllowed("Partner is deactivated")
    return partner


def init_app(app: Flask) -> None:
    cfg = app.config
    algorithm = cfg["PDAM_JWT_ALGORITHM"]
    key = _parsed(algorithm, load_public_key(cfg))
    app.extensions["pdam.jwt_verifier"] = Verifier(algorithm, key, cfg["JWT_ISSUER"])
    app.extensions["pdam.verified_tokens"] = VerifiedTokens(VERIFIED_TOKENS)
    app.after_request(sandbox_header)


def sandbox_header(response):
    """Every answer to a sandbox credential (PeTi or SNAP, errors included) says so."""
    if g.get("pdam_sandbox"):
        response.headers["X-Sandbox"] = "true"
    return response


def partner_required(view):
    """Require a valid token of an active partner; the view reads ``current_partner()``."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        g.pdam_partner = authenticate(request.headers.get("Authorization"), wall_clock())
        return view(*args, **kwargs)

    return wrapper


def current_partner() -> Partner:
    return g.pdam_partner
