"""Partner authentication: ES256/RS256 JWTs verified with public keys only.

``authenticate(header, now, ...)`` is the whole check, in order: the ``Authorization``
header, then flask-jwt-extended's ``decode_token`` (the signature, the one configured
algorithm, never ``none`` or HS*, ``iss``, ``exp``, ``nbf`` and ``iat``, leeway 0, under
what ``pdam.web.partner_tokens`` pins), the contract's claims, the token's times against
the clock it is given (``now``), then in one statement the token's record, revocation, the partner's
state and its rate limit. It returns the core's ``Partner`` or raises the answer.

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

import sqlalchemy as sa
from flask import Flask, current_app, g, request
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTDecodeError
from jwt import exceptions as jwt_exceptions

from ..core import errors, ids, tokens
from ..core.records import Partner
from ..web import addresses, partner_tokens, ratelimit, runtime
from ..web.errors import Unauthorized

log = logging.getLogger(__name__)


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


#: What a token's times are checked against: the machine's clock, in seconds. It is the
#: clock ``decode_token`` checks with (PyJWT's; it takes no other), so a cached token gets
#: the same answers as an uncached one. The service's clock (``CLOCK``, which tests move to
#: a payment's day) is for the payments; a token is valid or not in real time.
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


def verified_claims(token: str) -> dict:
    """The claims of ``token`` once flask-jwt-extended's ``decode_token`` and the contract's
    claim rules passed it; else ``Unauthorized`` with the exact answer."""
    try:
        claims = decode_token(token)
    except jwt_exceptions.ExpiredSignatureError:
        raise Unauthorized("Token has expired") from None
    except (jwt_exceptions.InvalidTokenError, JWTDecodeError) as exc:
        raise Unauthorized(f"Invalid token: {exc}") from None
    if claims["type"] == "refresh":
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


def authenticate(
    header: str | None,
    now: float,
    *,
    key_ready: bool,
    cache: VerifiedTokens,
    conn: sa.Connection,
    rate: int,
    address: str | None,
) -> Partner:
    """The active partner whose token ``header`` carries, used from ``address`` (one of the
    partner's allowed addresses), within its rate limit of ``rate`` requests a second, checked
    against the clock's ``now`` (seconds) and the database on ``conn``; ``sandbox`` set when the
    token is a sandbox one (it then works on the partner's sandbox only). Raises ``Unauthorized``, ``NotAllowed``, ``TooManyRequests`` (or
    ``Unavailable`` when no key can verify tokens: ``key_ready`` false)."""
    if not key_ready:
        raise errors.Unavailable("token verification key is not configured or not usable")
    claims = cache.get(header)
    cached = claims is not None
    if not cached:
        claims = verified_claims(bearer_token(header))
    check_times(claims, now)
    check = tokens.partner_check(conn, claims["sub"], claims["jti"], rate, address)
    if check is None:
        raise Unauthorized("Unknown partner")
    if not check.address_ok:  # the partner's allowed addresses (contract 14.3), before the rest
        log.warning("address not allowed", extra={"partner": check.partner.code, "address": address})
        raise errors.NotAllowed("address not allowed")
    if not check.known:
        raise Unauthorized("Unknown token")
    if check.revoked:
        raise Unauthorized("Token has been revoked")
    if not cached:
        cache.put(header, claims)
    ratelimit.admit(check.partner.code, check.rate_wait)
    if not check.partner.active:
        raise errors.NotAllowed("Partner is deactivated")
    return check.partner


def init_app(app: Flask) -> None:
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
        app = current_app
        g.pdam_partner = authenticate(
            request.headers.get("Authorization"),
            wall_clock(),
            key_ready=partner_tokens.verifying_key(app) is not None,
            cache=app.extensions["pdam.verified_tokens"],
            conn=runtime.connection(),
            rate=app.config["PARTNER_RATE_LIMIT"],
            address=addresses.of_request(),
        )
        g.pdam_sandbox = g.pdam_partner.sandbox  # X-Sandbox on the answer, whatever it is
        return view(*args, **kwargs)

    return wrapper


def current_partner() -> Partner:
    return g.pdam_partner
