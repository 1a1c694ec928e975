"""Partner authentication: ES256/RS256 JWTs verified with public keys only.

flask-jwt-extended does the signature, algorithm, expiry, ``nbf`` and ``iss``
checks; this module adds the contract's claim rules and, in one query, the
revocation check and the partner's state.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app, g
from flask_jwt_extended import JWTManager, get_current_user, verify_jwt_in_request
from jwt import algorithms as jwt_algorithms
from jwt import exceptions as jwt_exceptions

from ..core import errors, ids, tokens
from ..web import requests, runtime
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
        log.error("the JWT public key is not a usable %s key (%s): every request needing a token gets 503",
                  algorithm, exc)
        return None


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

    @jwt.user_lookup_loader
    def _user(_header, _claims):
        return g.get("pdam_partner")

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

    @jwt.user_lookup_error_loader
    def _no_user(_header, _claims):
        return _response("Unknown partner")


def partner_required(view):
    """Require a valid token of an active partner; the view reads ``current_partner()``."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if current_app.extensions["pdam.jwt_key"] is None:
            raise errors.Unavailable("token verification key is not configured or not usable")
        verify_jwt_in_request()
        partner = current_partner()
        requests.identify(partner.code)
        if g.pdam_rate_wait > 0:
            raise TooManyRequests(g.pdam_rate_wait)
        if not partner.active:
            raise errors.NotAllowed("Partner is deactivated")
        return view(*args, **kwargs)

    return wrapper


def current_partner() -> Partner:
    return get_current_user()
