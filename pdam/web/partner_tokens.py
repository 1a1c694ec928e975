"""Partner tokens (contract section 1) on flask-jwt-extended, configured once per app.

The PeTi edge verifies with its ``decode_token`` (``pdam.peti.auth.authenticate``), the
token CLI signs with its ``create_access_token`` (``pdam.cli.token.sign``). Both run under
what ``init_app`` pins here:

- one algorithm (``JWT_ALGORITHM``: ES256, or RS256 by configuration) for signing and
  verifying (``JWT_DECODE_ALGORITHMS`` is that one alone: ``none``, HS* and any other are
  refused), no secret key (HS* can never verify);
- the public key, parsed once (``decode_key_loader``: parsing the PEM text costs more than
  verifying a signature); ``JWT_PUBLIC_KEY`` holds its text;
- the issuer: required and checked on decoding (``JWT_DECODE_ISSUER``), written on signing
  (``JWT_ENCODE_ISSUER``); ``sub`` is the identity claim, leeway 0;
- the claims of a new token are the grant's (``Signing``): ``name``, ``sub``, ``iat``,
  ``exp``, ``jti`` from the service's clock and the database, ``iss`` from the
  configuration; no ``nbf`` (``JWT_ENCODE_NBF``) and no ``csrf`` (tokens travel in the
  ``Authorization`` header only). flask-jwt-extended 4.7 writes ``type: "access"`` and
  ``fresh: false`` into every token it makes, and no option turns them off: the contract's
  claims are all there, and these two are the library's own (``decode_token`` fills them in
  when a token lacks them, so a token signed elsewhere needs neither).

The private key is read by the token CLI only, when it signs (``Signing.private_key``): the
web service holds public keys only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from flask_jwt_extended import JWTManager
from jwt import algorithms as jwt_algorithms
from jwt import exceptions as jwt_exceptions

from ..core.records import Grant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Signing:
    """What ``create_access_token`` is given as its identity: the grant to sign and the
    issuer's private key (PEM text) that signs it."""

    grant: Grant
    private_key: str


def load_public_key(cfg) -> str | None:
    if cfg.get("PDAM_JWT_PUBLIC_KEY"):
        return cfg["PDAM_JWT_PUBLIC_KEY"]
    path = Path(cfg["PDAM_JWT_PUBLIC_KEY_FILE"])
    return path.read_text() if path.exists() else None


def parsed_key(algorithm: str, public_key: str | None):
    """The public key as the algorithm's key object, or None when it is missing or unusable."""
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


def verifying_key(app: Flask):
    """The parsed public key tokens are verified with (None: missing or unusable)."""
    return app.extensions["pdam.jwt_key"]


def init_app(app: Flask) -> None:
    cfg = app.config
    algorithm = cfg["PDAM_JWT_ALGORITHM"]
    public_key = load_public_key(cfg)
    key = app.extensions["pdam.jwt_key"] = parsed_key(algorithm, public_key)
    cfg.update(
        JWT_ALGORITHM=algorithm,
        JWT_DECODE_ALGORITHMS=[algorithm],
        JWT_SECRET_KEY=None,
        JWT_PUBLIC_KEY=public_key,
        JWT_PRIVATE_KEY=None,
        JWT_DECODE_ISSUER=cfg["JWT_ISSUER"],
        JWT_ENCODE_ISSUER=cfg["JWT_ISSUER"],
        JWT_IDENTITY_CLAIM="sub",
        JWT_DECODE_LEEWAY=0,
        # ``sub`` is checked against the partner code's pattern (pdam.peti.auth).
        JWT_VERIFY_SUB=False,
        JWT_ENCODE_NBF=False,
        JWT_TOKEN_LOCATION=["headers"],
        JWT_COOKIE_CSRF_PROTECT=False,
        # A grant always carries its own ``exp`` (``Signing``'s claims).
        JWT_ACCESS_TOKEN_EXPIRES=False,
    )
    manager = JWTManager(app)

    @manager.decode_key_loader
    def _verifying_key(_header: dict, _claims: dict):
        return key

    @manager.encode_key_loader
    def _signing_key(signing: Signing) -> str:
        return signing.private_key

    @manager.user_identity_loader
    def _subject(signing: Signing) -> str:
        return signing.grant.code

    @manager.additional_claims_loader
    def _claims(signing: Signing) -> dict:
        return signing.grant.claims()
