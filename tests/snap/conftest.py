"""SNAP test helpers: a bank with its own RSA key, registered through the real CLI, that
signs its requests with the cryptography and hmac primitives directly (never with the
code under test), so every signature in these tests is an independent vector."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

WIB = ZoneInfo("Asia/Jakarta")
TOKEN_PATH = "/snap/v1.0/access-token/b2b"
INQUIRY = "/snap/v1.0/transfer-va/inquiry"
PAYMENT = "/snap/v1.0/transfer-va/payment"
STATUS = "/snap/v1.0/transfer-va/status"
SERVICE_ID = "12345"
PSID = "   12345"
CID = "010101010101"
#: The contract's customer: two bills, 88800 each.
BILLS = (
    "010101010101,Semar Badranaya,Jl. Perjuangan No. 102,10R - Rumah Tangga 10,"
    "1234202005,202005,496,501,10,50000,8000,800,30000,0\n"
    "010101010101,Semar Badranaya,Jl. Perjuangan No. 102,10R - Rumah Tangga 10,"
    "1234202006,202006,501,515,14,70000,8000,800,10000,0\n"
)
_ids = itertools.count(1)


@pytest.fixture(scope="session")
def rsa_keys():
    """Two RSA key pairs (the bank's, and a stranger's), made once: generating costs ~50 ms each."""
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]


def public_pem(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def wib_timestamp(at: dt.datetime | None = None) -> str:
    at = (at or dt.datetime.now(dt.UTC)).astimezone(WIB)
    return at.isoformat(timespec="milliseconds")


def rsa_signature(key, client_id: str, timestamp: str) -> str:
    raw = key.sign(f"{client_id}|{timestamp}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode()


def hmac_signature(
    secret: str, method: str, path: str, token: str, minified_body: bytes, timestamp: str
) -> str:
    """HMAC-SHA512 over METHOD:path:token:sha256hex(minified body):timestamp, base64."""
    digest = hashlib.sha256(minified_body).hexdigest()
    message = f"{method}:{path}:{token}:{digest}:{timestamp}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha512).digest()).decode()


class Bank:
    """A bank's SNAP client against a Flask test client."""

    def __init__(self, app, client_id: str, key, secret: str, partner: str, clock=None):
        self.app, self.client = app, app.test_client()
        self.client_id, self.key, self.secret, self.partner = client_id, key, secret, partner
        self.clock = clock
        self._token: str | None = None

    def now(self) -> dt.datetime:
        return self.clock() if self.clock else dt.datetime.now(dt.UTC)

    def timestamp(self) -> str:
        return wib_timestamp(self.now())

    def token_headers(self, **overrides) -> dict:
        ts = overrides.pop("timestamp", None) or self.timestamp()
        headers = {
            "X-TIMESTAMP": ts,
            "X-CLIENT-KEY": self.client_id,
            "X-SIGNATURE": rsa_signature(self.key, self.client_id, ts),
            "Content-Type": "application/json",
        }
        headers.update(overrides)
        return {k: v for k, v in headers.items() if v is not None}

    def request_token(self, body=None, client=None, **headers):
        data = compact({"grantType": "client_credentials"}) if body is None else body
        return (client or self.client).post(TOKEN_PATH, data=data, headers=self.token_headers(**headers))

    @property
    def token(self) -> str:
        if self._token is None:
            res = self.request_token()
            assert res.status_code == 200, res.json
            self._token = res.json["accessToken"]
        return self._token

    def headers(
        self,
        path: str,
        body: bytes,
        *,
        minified: bytes | None = None,
        method: str = "POST",
        token: str | None = None,
        **overrides,
    ) -> dict:
        """Signed headers for ``body``; the signature covers ``minified`` (default: ``body``,
        which must then be minified already)."""
        token = token or self.token
        ts = overrides.pop("timestamp", None) or self.timestamp()
        headers = {
            "Authorization": f"Bearer {token}",
            "X-TIMESTAMP": ts,
            "X-PARTNER-ID": self.client_id,
            "X-EXTERNAL-ID": str(next(_ids)) + "0" * 6,
            "CHANNEL-ID": "95221",
            "Content-Type": "application/json",
        }
        headers["X-SIGNATURE"] = hmac_signature(
            self.secret, method, path, token, body if minified is None else minified, ts
        )
        headers.update(overrides)
        return {k: v for k, v in headers.items() if v is not None}

    def post(self, path: str, obj=None, *, raw: bytes | None = None, client=None, **overrides):
        body = compact(obj) if raw is None else raw
        minified = None if raw is None else overrides.pop("minified", None)
        headers = self.headers(path, body, minified=minified, **overrides)
        return (client or self.client).post(path, data=body, headers=headers)

    # -- bodies ----------------------------------------------------------------------------

    @staticmethod
    def va(cid: str = CID, psid: str = PSID) -> dict:
        return {"partnerServiceId": psid, "customerNo": cid, "virtualAccountNo": psid + cid}

    # ``headers``: overrides for ``headers()`` (header values, or ``token``/``timestamp``).

    def inquiry(self, cid: str = CID, ref: str = "inq-1", headers: dict | None = None, **fields):
        return self.post(INQUIRY, {**self.va(cid), "inquiryRequestId": ref, **fields}, **(headers or {}))

    def pay(
        self,
        cid: str = CID,
        ref: str = "inq-1",
        amount: str = "177600.00",
        headers: dict | None = None,
        **fields,
    ):
        body = {**self.va(cid), "paymentRequestId": ref, "paidAmount": {"value": amount, "currency": "IDR"}}
        return self.post(PAYMENT, {**body, **fields}, **(headers or {}))

    def status(self, cid: str = CID, ref: str = "inq-1", headers: dict | None = None, **fields):
        return self.post(STATUS, {**self.va(cid), "paymentRequestId": ref, **fields}, **(headers or {}))


def register(
    app,
    key,
    code: str = "00",
    client_id: str = "bank-one",
    service_id: str = SERVICE_ID,
    tmp_path=None,
    sandbox: bool = False,
) -> str:
    """``flask snap register`` for real (``--sandbox`` with ``sandbox``); return the secret
    (the last line)."""
    import tempfile
    from pathlib import Path

    folder = Path(tmp_path or tempfile.mkdtemp())
    pem = folder / f"{client_id}.pem"
    pem.write_bytes(public_pem(key))
    res = app.test_cli_runner().invoke(
        args=[
            "snap",
            "register",
            code,
            "--client-id",
            client_id,
            "--public-key",
            str(pem),
            "--service-id",
            service_id,
            *(["--sandbox"] if sandbox else []),
        ]
    )
    assert res.exit_code == 0, res.output
    return res.output.strip().splitlines()[-1]


@pytest.fixture
def make_bank(app, add_partner, rsa_keys, tmp_path):
    """``make_bank(code, client_id, service_id)``: a partner with SNAP credentials."""

    def make(
        code: str = "00",
        client_id: str = "bank-one",
        service_id: str = SERVICE_ID,
        app_=None,
        clock=None,
        key=None,
    ) -> Bank:
        target = app_ or app
        add_partner(code, f"BANK{code}")
        key = key or rsa_keys[0]
        secret = register(target, key, code, client_id, service_id, tmp_path)
        return Bank(target, client_id, key, secret, code, clock)

    return make


@pytest.fixture
def bank(make_bank):
    return make_bank()


@pytest.fixture
def bills(seed_bills):
    seed_bills(BILLS)


def expect(res, code: str, message: str):
    body = res.get_json()
    assert body is not None, res.data
    assert (body["responseCode"], body["responseMessage"]) == (code, message), body
    assert res.status_code == int(code[:3])
    assert res.mimetype == "application/json"
    assert res.headers["X-Request-Id"]
    return body
