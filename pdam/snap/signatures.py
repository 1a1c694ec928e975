"""SNAP's two signatures, the minified body they cover, and ``X-TIMESTAMP``.

- Access token (service 73): SHA256withRSA (PKCS#1 v1.5) by the bank's private key
  over ``<client id>|<X-TIMESTAMP>``, verified with its public key.
- Transactional requests: HMAC-SHA512 with the client secret over
  ``<METHOD>:<path>:<accessToken>:<lowercase hex SHA-256 of the minified body>:<X-TIMESTAMP>``.

The minified body is the raw body with every whitespace character outside JSON
strings removed, worked on the bytes as received: never parsed and re-serialised
(that would change escapes, number spellings and key order, and so the digest).
``X-SIGNATURE`` is base64; hex is accepted too.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

#: A JSON string (escapes respected; an unterminated one runs to the end) or a run of JSON
#: whitespace outside strings.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"?|[ \t\n\r]+', re.DOTALL)
TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_HEX = re.compile(r"[0-9A-Fa-f]+")


def minify(body: bytes) -> bytes:
    """``body`` without the whitespace (space, tab, CR, LF) outside JSON strings."""
    return _TOKENS.sub(lambda m: m.group() if m.group().startswith(b'"') else b"", body)


def body_digest(body: bytes) -> str:
    """Lowercase hex SHA-256 of the minified body."""
    return hashlib.sha256(minify(body)).hexdigest()


def token_string(client_id: str, timestamp: str) -> bytes:
    return f"{client_id}|{timestamp}".encode()


def request_string(method: str, path: str, access_token: str, body: bytes, timestamp: str) -> bytes:
    return f"{method.upper()}:{path}:{access_token}:{body_digest(body)}:{timestamp}".encode()


def decodings(signature: str) -> list[bytes]:
    """What ``signature`` may stand for: its base64 decoding and its hex decoding (a hex
    string is also valid base64, so both are tried)."""
    out = []
    value = signature.strip()
    try:
        out.append(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        pass
    if len(value) % 2 == 0 and _HEX.fullmatch(value):
        out.append(bytes.fromhex(value))
    return out


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    key = load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def verify_rsa(public_key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    """SHA256withRSA (PKCS#1 v1.5) of ``message`` by the key's private half."""
    for candidate in decodings(signature):
        try:
            public_key.verify(candidate, message, padding.PKCS1v15(), hashes.SHA256())
            return True
        except InvalidSignature:
            continue
    return False


def hmac_sha512(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha512).digest()


def verify_hmac(secret: str, message: bytes, signature: str) -> bool:
    expected = hmac_sha512(secret, message)
    return any(hmac.compare_digest(expected, candidate) for candidate in decodings(signature))


def parse_timestamp(value: str) -> dt.datetime | None:
    """``X-TIMESTAMP``: ISO-8601 with an offset (``Z`` or ``+07:00``), milliseconds allowed;
    None when it is anything else."""
    if not TIMESTAMP.fullmatch(value):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:  # a month 13, a day 32, an offset beyond 24 h
        return None
