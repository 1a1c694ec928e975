#!/usr/bin/env python3
"""Play the bank against a running service's SNAP routes (contract section 12).

A standalone client: the Python standard library and ``cryptography``, nothing of the
service. It signs like a bank would and walks access token -> VA inquiry -> VA payment
-> the same payment retried (``flagAdvise`` "Y", a new X-EXTERNAL-ID) -> VA status (by
``inquiryRequestId``), printing every request and answer (with the answer's X-TIMESTAMP,
and X-CLIENT-KEY on the token's).

  # once: the bank's key pair, then the operator registers its public key
  .venv/bin/python scripts/snap_bank.py --keygen instance/bank
  .venv/bin/flask --app wsgi snap register 00 --client-id demo-bank \\
      --public-key instance/bank/public.pem --service-id 12345      # prints the secret

  .venv/bin/python scripts/snap_bank.py --url http://127.0.0.1:5000 --client-id demo-bank \\
      --private-key instance/bank/private.pem --secret <secret> --service-id 12345 \\
      --customer 010101010101

With ``--sandbox`` (a client from ``snap register ... --sandbox``) every answer must carry
``X-Sandbox: true``, and the customer defaults to the sandbox's 990000000006 (30 bills,
24 shown and paid): docs/banks.md lists the test customers.

Exit status 0 when every step answered as SNAP says it should, else 1.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

WIB = dt.timezone(dt.timedelta(hours=7))
TOKEN_PATH = "/snap/v1.0/access-token/b2b"
INQUIRY_PATH = "/snap/v1.0/transfer-va/inquiry"
PAYMENT_PATH = "/snap/v1.0/transfer-va/payment"
STATUS_PATH = "/snap/v1.0/transfer-va/status"


def keygen(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = folder / "private.pem", folder / "public.pem"
    private.touch(mode=0o600, exist_ok=True)
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    print(f"wrote {private} (keep it) and {public} (give it to the utility)")


def timestamp() -> str:
    return dt.datetime.now(WIB).isoformat(timespec="milliseconds")


def trx_timestamp() -> str:
    """A body's date and time field: seconds, 25 characters (the standard's length)."""
    return dt.datetime.now(WIB).isoformat(timespec="seconds")


def minify(body: bytes) -> bytes:
    """The body without the whitespace outside JSON strings (what the signature covers)."""
    out, in_string, escaped = bytearray(), False, False
    for byte in body:
        char = bytes([byte])
        if in_string:
            out += char
            if escaped:
                escaped = False
            elif char == b"\\":
                escaped = True
            elif char == b'"':
                in_string = False
        elif char == b'"':
            in_string = True
            out += char
        elif char not in b" \t\r\n":
            out += char
    return bytes(out)


class Bank:
    def __init__(self, args):
        self.url = args.url.rstrip("/")
        self.client_id = args.client_id
        self.key = serialization.load_pem_private_key(Path(args.private_key).read_bytes(), password=None)
        self.secret = args.secret
        self.channel_id = args.channel_id
        self.pretty = args.pretty
        self.full = args.full_signatures
        self.sandbox = args.sandbox
        self.token: str | None = None
        self.ok = True

    def _short(self, value: str) -> str:
        return value if self.full or len(value) <= 24 else value[:20] + "..."

    def send(self, step: str, path: str, body: dict, headers: dict, expect: str) -> dict:
        raw = json.dumps(
            body, indent=2 if self.pretty else None, separators=None if self.pretty else (",", ":")
        )
        data = raw.encode()
        print(f"== {step}")
        print(f"POST {path}")
        for name, value in headers.items():
            shown = self._short(value) if name in ("X-SIGNATURE", "Authorization") else value
            print(f"{name}: {shown}")
        print(raw)
        request = urllib.request.Request(
            self.url + path, data=data, method="POST", headers={"Content-Type": "application/json", **headers}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as res:
                status, answer, answer_headers = res.status, res.read(), res.headers
        except urllib.error.HTTPError as exc:
            status, answer, answer_headers = exc.code, exc.read(), exc.headers
        text = answer.decode("utf-8", "replace")
        shown = text
        if self.token and not self.full:
            shown = shown.replace(self.token, self._short(self.token))
        print(f"-> HTTP {status}")
        wanted = [
            "X-TIMESTAMP",
            *(["X-CLIENT-KEY"] if path == TOKEN_PATH else []),
            *(["X-Sandbox"] if self.sandbox else []),
        ]
        for name in wanted:
            if answer_headers.get(name) is None:
                print(f"!! no {name} header in the answer", file=sys.stderr)
                self.ok = False
            print(f"{name}: {answer_headers.get(name)}")
        if self.sandbox and answer_headers.get("X-Sandbox") != "true":
            print("!! a sandbox answer without X-Sandbox: true", file=sys.stderr)
            self.ok = False
        print(shown)
        print()
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = {}
        if parsed.get("responseCode") != expect:
            print(f"!! expected responseCode {expect}", file=sys.stderr)
            self.ok = False
        return parsed

    def access_token(self) -> None:
        ts = timestamp()
        signature = self.key.sign(f"{self.client_id}|{ts}".encode(), padding.PKCS1v15(), hashes.SHA256())
        headers = {
            "X-TIMESTAMP": ts,
            "X-CLIENT-KEY": self.client_id,
            "X-SIGNATURE": base64.b64encode(signature).decode(),
        }
        answer = self.send(
            "1. access token (SHA256withRSA over client id|timestamp)",
            TOKEN_PATH,
            {"grantType": "client_credentials"},
            headers,
            "2007300",
        )
        self.token = answer.get("accessToken")
        if not self.token:
            sys.exit(1)

    def transact(self, step: str, path: str, body: dict, expect: str) -> dict:
        ts = timestamp()
        sent = json.dumps(
            body, indent=2 if self.pretty else None, separators=None if self.pretty else (",", ":")
        ).encode()
        digest = hashlib.sha256(minify(sent)).hexdigest()
        message = f"POST:{path}:{self.token}:{digest}:{ts}".encode()
        signature = base64.b64encode(
            hmac.new(self.secret.encode(), message, hashlib.sha512).digest()
        ).decode()
        headers = {
            "Authorization": f"Bearer {self.token}",
            "X-TIMESTAMP": ts,
            "X-SIGNATURE": signature,
            "X-PARTNER-ID": self.client_id,
            "X-EXTERNAL-ID": str(uuid.uuid4().int)[:32],
            "CHANNEL-ID": self.channel_id,
        }
        return self.send(step, path, body, headers, expect)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--keygen", metavar="DIR", type=Path, help="write DIR/private.pem and DIR/public.pem, exit"
    )
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--client-id")
    parser.add_argument("--private-key", help="PEM file of the bank's RSA private key")
    parser.add_argument("--secret", help="the client secret `flask --app wsgi snap register` printed")
    parser.add_argument("--service-id", help="partnerServiceId: our company code at the bank (up to 8)")
    parser.add_argument("--customer", help="customer number (the VA's customerNo; default 010101010101)")
    parser.add_argument(
        "--sandbox", action="store_true", help="a sandbox client: every answer must say X-Sandbox: true"
    )
    parser.add_argument("--reference", help="inquiryRequestId / paymentRequestId (default: a new one)")
    parser.add_argument("--channel-id", default="95221")
    parser.add_argument("--channel-code", type=int, default=6017, help="6011 ATM, 6014 internet, 6017 mobile")
    parser.add_argument("--pretty", action="store_true", help="send pretty-printed bodies (signed minified)")
    parser.add_argument("--full-signatures", action="store_true", help="print tokens and signatures whole")
    parser.add_argument(
        "--wait", type=float, default=5.0, help="seconds to wait for posting before the status"
    )
    args = parser.parse_args(argv)
    if args.keygen:
        keygen(args.keygen)
        return 0
    missing = [n for n in ("client_id", "private_key", "secret", "service_id") if not getattr(args, n)]
    if missing:
        parser.error("missing: " + ", ".join("--" + n.replace("_", "-") for n in missing))

    args.customer = args.customer or ("990000000006" if args.sandbox else "010101010101")
    bank = Bank(args)
    psid = args.service_id.rjust(8)
    va = {"partnerServiceId": psid, "customerNo": args.customer, "virtualAccountNo": psid + args.customer}
    reference = args.reference or "inq-" + uuid.uuid4().hex[:12]

    bank.access_token()
    inquiry = bank.transact(
        "2. VA inquiry (service 24)",
        INQUIRY_PATH,
        {
            **va,
            "inquiryRequestId": reference,
            "channelCode": args.channel_code,
            "trxDateInit": trx_timestamp(),
        },
        "2002400",
    )
    data = inquiry.get("virtualAccountData") or {}
    if "totalAmount" not in data:
        return 1
    payment = {
        **va,
        "virtualAccountName": data["virtualAccountName"],
        "paymentRequestId": reference,
        "channelCode": args.channel_code,
        "paidAmount": data["totalAmount"],
        "totalAmount": data["totalAmount"],
        "trxDateTime": trx_timestamp(),
        "referenceNo": "bank-" + uuid.uuid4().hex[:12],
        "flagAdvise": "N",
    }
    first = bank.transact("3. VA payment (service 25)", PAYMENT_PATH, payment, "2002500")
    again = bank.transact(
        "4. the same payment retried (flagAdvise Y, a new X-EXTERNAL-ID)",
        PAYMENT_PATH,
        {**payment, "flagAdvise": "Y"},
        "2002500",
    )
    paid = first.get("virtualAccountData") or {}
    if (paid.get("referenceNo"), paid.get("trxDateTime")) != (payment["referenceNo"], payment["trxDateTime"]):
        print("!! the answer does not repeat the bank's referenceNo and trxDateTime", file=sys.stderr)
        bank.ok = False
    if first.get("virtualAccountData") != again.get("virtualAccountData"):
        print("!! the retry did not get the same payment", file=sys.stderr)
        bank.ok = False
    deadline = time.monotonic() + args.wait
    time.sleep(min(1.0, args.wait))
    while True:  # the job server posts it (additionalInfo.status: created -> accepted)
        status = bank.transact(
            "5. VA status (service 26)", STATUS_PATH, {**va, "inquiryRequestId": reference}, "2002600"
        )
        state = ((status.get("virtualAccountData") or {}).get("additionalInfo") or {}).get("status")
        if state != "created" or time.monotonic() >= deadline:
            break
        time.sleep(1)
    return 0 if bank.ok else 1


if __name__ == "__main__":
    sys.exit(main())
