"""Who is calling: the token request's RSA signature, the transactional requests'
access token and HMAC signature, and the headers they rest on.

The checks run in a fixed order, each with its exact SNAP answer:

- token request: ``X-CLIENT-KEY``, ``X-TIMESTAMP``, ``X-SIGNATURE`` present
  (``4007302``); ``X-TIMESTAMP`` well-formed (``4007301``); the client known and its
  partner active (``4017300 [Unknown client]``); the partner's rate limit
  (``4297300``, contract section 13); ``X-TIMESTAMP`` within
  ``SNAP_TIMESTAMP_SKEW_SECONDS`` (``4017300 [X-TIMESTAMP]``); the signature
  (``4017300 [Signature]``).
- transactional request: a live access token of an active partner (``401xx01``); the
  partner's rate limit (``429xx00``, shared with its PeTi requests);
  ``X-TIMESTAMP``, ``X-SIGNATURE``, ``X-PARTNER-ID``, ``X-EXTERNAL-ID``, ``CHANNEL-ID``
  present (``400xx02``) and well-formed (``400xx01``); ``X-PARTNER-ID`` the token's
  client (``401xx00 [X-PARTNER-ID]``); the timestamp window (``401xx00 [X-TIMESTAMP]``);
  the signature (``401xx00 [Signature]``).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from dataclasses import dataclass

from flask import current_app, g, request

from ..core import snap_clients
from ..web import addresses, ratelimit, runtime
from . import codes, signatures

log = logging.getLogger(__name__)

BEARER = re.compile(r"Bearer ([A-Za-z0-9._~+/=-]{1,512})", re.IGNORECASE)
#: Printable ASCII, no spaces.
VISIBLE = re.compile(r"[\x21-\x7e]+")
EXTERNAL_ID_MAX = 36
#: A registered client id is at most this long (pdam/cli/snap.py).
CLIENT_ID_MAX = 64
CHANNEL_ID_MAX = 5
TRANSACTIONAL_HEADERS = ("X-TIMESTAMP", "X-SIGNATURE", "X-PARTNER-ID", "X-EXTERNAL-ID", "CHANNEL-ID")


@dataclass(frozen=True)
class Caller:
    """An authenticated transactional request."""

    client_id: str
    partner_code: str
    service_id: str
    external_id: str
    channel_id: str
    #: A sandbox client (``snap register --sandbox``): its partner's sandbox only.
    sandbox: bool = False


@functools.lru_cache(maxsize=256)
def _public_key(pem: str):
    """Parsing a PEM costs more than verifying with it: once per key and process."""
    return signatures.load_public_key(pem)


def _header(name: str) -> str:
    """A header's value; empty when absent (an empty header counts as absent)."""
    return request.headers.get(name, "").strip()


def _rate() -> int:
    return current_app.config["PARTNER_RATE_LIMIT"]


def _within_window(timestamp: dt.datetime, now: dt.datetime) -> bool:
    skew = current_app.config["SNAP_TIMESTAMP_SKEW_SECONDS"]
    return abs((now - timestamp).total_seconds()) <= skew


#: ASPI's reason for an unauthorized client (its 401xx00 row: "General unauthorized error (...,
#: Client Forbidden Access API, Unknown Client, ...)"): a client used from an address it may not.
FORBIDDEN_ADDRESS = "Client Forbidden Access API"


def _address_allowed(client, address: str | None) -> None:
    """The client's allowed addresses (contract 14.3), checked before anything else of it."""
    if not client.address_ok:
        log.warning("address not allowed", extra={"client_id": client.client_id, "address": address})
        raise codes.unauthorized(FORBIDDEN_ADDRESS)


def token_request(now: dt.datetime) -> str:
    """Check a token request's headers and RSA signature; return the client id."""
    client_id, stamp, signature = _header("X-CLIENT-KEY"), _header("X-TIMESTAMP"), _header("X-SIGNATURE")
    for name, value in (("X-CLIENT-KEY", client_id), ("X-TIMESTAMP", stamp), ("X-SIGNATURE", signature)):
        if not value:
            raise codes.missing(name)
    timestamp = signatures.parse_timestamp(stamp)
    if timestamp is None:
        raise codes.invalid_format("X-TIMESTAMP")
    known = len(client_id) <= CLIENT_ID_MAX and VISIBLE.fullmatch(client_id)
    address = addresses.of_request()
    client = snap_clients.client(runtime.connection(), client_id, _rate(), address) if known else None
    if client is None or not client.active:
        raise codes.unauthorized("Unknown client")
    _address_allowed(client, address)
    g.pdam_sandbox = client.sandbox  # X-Sandbox on the answer, whatever it is
    ratelimit.admit(client.partner_code, client.rate_wait)
    if not _within_window(timestamp, now):
        raise codes.unauthorized("X-TIMESTAMP")
    message = signatures.token_string(client_id, stamp)
    if not signatures.verify_rsa(_public_key(client.public_key), message, signature):
        raise codes.unauthorized("Signature")
    return client_id


def transactional_request(body: bytes, now: dt.datetime) -> Caller:
    """Check a transactional request's token, headers and HMAC signature over ``body``."""
    match = BEARER.fullmatch(_header("Authorization"))
    address = addresses.of_request()
    client = (
        snap_clients.caller(runtime.connection(), match.group(1), now, _rate(), address) if match else None
    )
    if client is None or not client.active:
        raise codes.invalid_token()
    _address_allowed(client, address)
    g.pdam_sandbox = client.sandbox
    ratelimit.admit(client.partner_code, client.rate_wait)
    values = {name: _header(name) for name in TRANSACTIONAL_HEADERS}
    for name, value in values.items():
        if not value:
            raise codes.missing(name)
    timestamp = signatures.parse_timestamp(values["X-TIMESTAMP"])
    if timestamp is None:
        raise codes.invalid_format("X-TIMESTAMP")
    external_id, channel_id = values["X-EXTERNAL-ID"], values["CHANNEL-ID"]
    if len(external_id) > EXTERNAL_ID_MAX or not VISIBLE.fullmatch(external_id):
        raise codes.invalid_format("X-EXTERNAL-ID")
    if len(channel_id) > CHANNEL_ID_MAX or not VISIBLE.fullmatch(channel_id):
        raise codes.invalid_format("CHANNEL-ID")
    if values["X-PARTNER-ID"] != client.client_id:
        raise codes.unauthorized("X-PARTNER-ID")
    if not _within_window(timestamp, now):
        raise codes.unauthorized("X-TIMESTAMP")
    message = signatures.request_string(
        request.method, signed_path(), match.group(1), body, values["X-TIMESTAMP"]
    )
    signed_with = functools.partial(signatures.verify_hmac, message=message, signature=values["X-SIGNATURE"])
    if not snap_clients.verify(runtime.connection(), runtime.sealer(), client.client_id, signed_with):
        raise codes.unauthorized("Signature")
    return Caller(
        client.client_id, client.partner_code, client.service_id, external_id, channel_id, client.sandbox
    )


def signed_path() -> str:
    """The path the signature covers: as received, with the query string if there is one."""
    query = request.query_string.decode("latin-1")
    return request.script_root + request.path + (f"?{query}" if query else "")
