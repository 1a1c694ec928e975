"""Partner authentication: ES256/RS256 JWTs verified with public keys only.

flask-jwt-extended does the signature, algorithm, expiry, ``nbf`` and ``iss``
checks; this module adds the contract's claim rules and, in one query, the
revocation check and the partner's state.

A token's signature is verified once per process: the claims of a token that
passed every check are kept (``VerifiedTokens``, bounded), and a request with the
same ``Authorization`` header checks only what can change: expiry, ``nbf`` and
``iat`` against the clock, and revocation, the partner's state and its rate limit
in the database, every time.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app, g, request
from flask_jwt_extended import JWTManager, get_jwt, verify_jwt_in_request
from flask_jwt_extended.exceptions import RevokedTokenError
from jwt import algorithms as jwt_algorithms
from jwt import exceptions as jwt_exceptions

from ..core import errors, ids, tokens
from ..web import request_log, runtime
from ..web.errors import TooManyRequests, Unauthorized, handle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Partner:
    code: str
    name: str
    active: bool


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


def check_times(claims: dict) -> None:
    """What PyJWT checks against the clock (leeway 0), with its errors and messages:
    a cached token expires, and one not valid yet stays refused, exactly as uncached."""
    now = wall_clock()
    if int(claims["exp"]) <= now:
        expired = jwt_exceptions.ExpiredSignatureError("Signature has expired")
        expired.jwt_header, expired.jwt_data = {}, claims  # as flask-jwt-extended's decode_token adds
        raise expired
    if "nbf" in claims and int(claims["nbf"]) > now:
        raise jwt_exceptions.ImmatureSignatureError("The token is not yet valid (nbf)")
    if int(claims["iat"]) > now:
        raise jwt_exceptions.ImmatureSignatureError("The token is not yet valid (iat)")


def _reject(message: str):
    raise Unauthorized(message)


def _response(message: str):
    """flask-jwt-extended's error callbacks must return a response, not raise."""
    return handle(Unauthorized(message))


def init_app(app: Flask) -> None:
    cfg = app.config
    algorithm = cfg["PDAM_JWT_ALGORITHM"]
    public_key = load_public_key(cfg)
    cfg.update(
        JWT_ALGORITHM=algorithm,
        JWT_DECODE_ALGORITHMS=[algorithm],
        # No secret: HS* can never verify. A missing public key fails every token.
        JWT_SECRET_KEY=None,
        JWT_PUBLIC_KEY=public_key or "",
        JWT_DECODE_ISSUER=cfg["JWT_ISSUER"],
        JWT_TOKEN_LOCATION=["headers"],
        JWT_IDENTITY_CLAIM="sub",
        JWT_DECODE_LEEWAY=0,
        JWT_VERIFY_SUB=False,
    )
    jwt = JWTManager(app)
    verifying_key = app.extensions["pdam.jwt_key"] = _parsed(algorithm, public_key)
    app.extensions["pdam.verified_tokens"] = VerifiedTokens(VERIFIED_TOKENS)

    @jwt.decode_key_loader
    def _key(_header, _claims):
        return verifying_key

    @jwt.token_in_blocklist_loader
    def _check(_header, claims) -> bool:
        for claim in ("exp", "iat", "iss", "jti", "sub", "name"):
            if claim not in claims or claims[claim] is None:
                _reject(f"Missing claim: {claim}")
        if not ids.matches(ids.JTI, claims["jti"]):
            _reject("Invalid claim: jti")
        if not ids.matches(ids.PARTNER_CODE, claims["sub"]):
            _reject("Invalid claim: sub")
        return check_partner(claims)

    @jwt.unauthorized_loader
    def _missing(reason: str):
        return _response("Missing Authorization Bearer token")

    @jwt.invalid_token_loader
    def _invalid(reason: str):
        return _response(f"Invalid token: {reason}")

    @jwt.expired_token_loader
    def _expired(_header, _claims):
        return _response("Token has expired")

    @jwt.revoked_token_loader
    def _revoked(_header, _claims):
        return _response("Token has been revoked")


def check_partner(claims: dict) -> bool:
    """The token's partner, its state and rate limit, and whether the token is revoked, read
    from the database (one statement); ``g`` keeps the partner and the rate limit's wait."""
    row = tokens.partner_check(
        runtime.connection(), claims["sub"], claims["jti"], current_app.config["PARTNER_RATE_LIMIT"]
    )
    if row is None:
        _reject("Unknown partner")
    if not row.known:
        _reject("Unknown token")
    g.pdam_partner = Partner(row.code, row.name, row.active)
    g.pdam_rate_wait = row.rate_wait
    return bool(row.revoked)


def verify_token() -> None:
    """The request's token: verified by flask-jwt-extended the first time this process sees
    it, from the verified claims after that (the clock and the database checked again)."""
    header = request.headers.get("Authorization")
    cache: VerifiedTokens = current_app.extensions["pdam.verified_tokens"]
    claims = cache.get(header)
    if claims is None:
        verify_jwt_in_request()
        cache.put(header, get_jwt())
        return
    check_times(claims)
    if check_partner(claims):
        raise RevokedTokenError({}, claims)


def partner_required(view):
    """Require a valid token of an active partner; the view reads ``current_partner()``."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if current_app.extensions["pdam.jwt_key"] is None:
            raise errors.Unavailable("token verification key is not configured or not usable")
        verify_token()
        partner = current_partner()
        request_log.identify(partner.code)
        if g.pdam_rate_wait > 0:
            raise TooManyRequests(g.pdam_rate_wait)
        if not partner.active:
            raise errors.NotAllowed("Partner is deactivated")
        return view(*args, **kwargs)

    return wrapper


def current_partner() -> Partner:
    return g.pdam_partner
