"""Both SNAP signatures against vectors computed here with cryptography, hmac and hashlib,
never with the code under test; the minified body taken from the raw bytes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from pdam.snap import signatures

from .conftest import INQUIRY, PAYMENT, compact, hmac_signature, wib_timestamp

BODY = {
    "partnerServiceId": "   12345",
    "customerNo": "010101010101",
    "virtualAccountNo": "   12345010101010101",
    "virtualAccountName": "Semar  Badranaya  ",
    "paymentRequestId": 'ref with spaces \t and " quote \\ backslash',
    "paidAmount": {"value": "177600.00", "currency": "IDR"},
    "additionalInfo": {"note": "tab\there, newline\nthere, {braces} [brackets], colon: comma,"},
}


# -- the minified body -----------------------------------------------------------------------


@pytest.mark.parametrize("indent", [None, 2, 4, "\t"])
def test_minified_pretty_body_is_the_compact_serialisation(indent):
    raw = json.dumps(BODY, indent=indent).encode()
    expected = json.dumps(BODY, separators=(",", ":")).encode()  # same escapes, same order, no whitespace
    assert signatures.minify(raw) == expected
    assert signatures.body_digest(raw) == hashlib.sha256(expected).hexdigest()


def test_whitespace_inside_strings_is_kept_and_escapes_respected():
    raw = b'{ "a" : "x  y" ,\r\n\t"b":"q\\" z \\\\" , "c" : [ 1 , "\\u0020 " ] }'
    assert signatures.minify(raw) == b'{"a":"x  y","b":"q\\" z \\\\","c":[1,"\\u0020 "]}'


def test_minify_is_not_a_reserialisation():
    raw = b'{"b": 1.0, "a": "\\u00e9", "c": 1e2}'
    assert signatures.minify(raw) == b'{"b":1.0,"a":"\\u00e9","c":1e2}'  # key order, escapes, numbers kept


def test_minify_of_empty_and_odd_bodies():
    assert signatures.minify(b"") == b""
    assert signatures.minify(b" \n ") == b""
    assert signatures.minify(b'{"open": "no end  ') == b'{"open":"no end  '


# -- HMAC-SHA512 on a real request -------------------------------------------------------------


def test_pretty_printed_body_with_spaces_inside_strings(bank, bills):
    """The bank signs the minified body, then sends it pretty-printed."""
    bank.inquiry(ref=BODY["paymentRequestId"])
    pretty = json.dumps(BODY, indent=2).encode()
    res = bank.post(PAYMENT, raw=pretty, minified=compact(BODY))
    assert res.json["responseCode"] == "2002500", res.json
    assert res.json["virtualAccountData"]["paymentRequestId"] == BODY["paymentRequestId"]


def test_signature_over_a_reserialised_body_is_refused(bank, bills):
    """Key order matters: the body is never parsed and serialised again to check it."""
    body = compact({**bank.va(), "inquiryRequestId": "r-1"})
    reordered = compact(dict(reversed(list(json.loads(body).items()))))
    res = bank.post(INQUIRY, raw=body, minified=reordered)
    assert res.json["responseCode"] == "4012400"


def test_signature_in_hex_is_accepted(bank, bills):
    body = compact({**bank.va(), "inquiryRequestId": "r-1"})
    ts = wib_timestamp()
    digest = hashlib.sha256(body).hexdigest()
    message = f"POST:{INQUIRY}:{bank.token}:{digest}:{ts}".encode()
    signature = hmac.new(bank.secret.encode(), message, hashlib.sha512).hexdigest()
    res = bank.post(INQUIRY, raw=body, timestamp=ts, **{"X-SIGNATURE": signature})
    assert res.json["responseCode"] == "2002400", res.json
    res = bank.post(INQUIRY, raw=body, timestamp=ts, **{"X-SIGNATURE": signature.upper()})
    assert res.json["responseCode"] == "2002400", res.json


def test_known_vector():
    """A fixed vector, computed once with Python's hmac and hashlib (not this code)."""
    secret = "0123456789abcdef0123456789abcdef"
    body = b'{ "customerNo" : "12 34" }'
    message = signatures.request_string(
        "post", "/snap/v1.0/transfer-va/inquiry", "tok", body, "2026-11-30T09:15:00+07:00"
    )
    minified_digest = hashlib.sha256(b'{"customerNo":"12 34"}').hexdigest()
    assert message == (
        f"POST:/snap/v1.0/transfer-va/inquiry:tok:{minified_digest}:2026-11-30T09:15:00+07:00".encode()
    )
    expected = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha512).digest()).decode()
    assert signatures.verify_hmac(secret, message, expected)
    assert not signatures.verify_hmac(secret + "x", message, expected)
    assert (
        hmac_signature(
            secret,
            "POST",
            "/snap/v1.0/transfer-va/inquiry",
            "tok",
            b'{"customerNo":"12 34"}',
            "2026-11-30T09:15:00+07:00",
        )
        == expected
    )


# -- SHA256withRSA on a real request -----------------------------------------------------------


def test_rsa_signature_base64_and_hex(bank, rsa_keys):
    ts = wib_timestamp()
    raw = bank.key.sign(f"{bank.client_id}|{ts}".encode(), padding.PKCS1v15(), hashes.SHA256())
    for encoded in (base64.b64encode(raw).decode(), raw.hex()):
        res = bank.request_token(timestamp=ts, **{"X-SIGNATURE": encoded})
        assert res.json["responseCode"] == "2007300", res.json
    pss = bank.key.sign(
        f"{bank.client_id}|{ts}".encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    res = bank.request_token(timestamp=ts, **{"X-SIGNATURE": base64.b64encode(pss).decode()})
    assert res.json["responseCode"] == "4017300"  # PKCS#1 v1.5 only


def test_parse_timestamp():
    assert signatures.parse_timestamp("2026-11-30T09:15:00+07:00").utcoffset().total_seconds() == 7 * 3600
    assert signatures.parse_timestamp("2026-11-30T09:15:00.123+07:00").microsecond == 123000
    assert signatures.parse_timestamp("2026-11-30T02:15:00Z").hour == 2
    for bad in (
        "2026-11-30T09:15:00",
        "2026-11-30 09:15:00+07:00",
        "2026-11-30T09:15:00+0700",
        "2026-02-30T09:15:00+07:00",
        "2026-11-30T09:15:00+07:00\n",
        "١٠٢٦-11-30T09:15:00+07:00",
    ):
        assert signatures.parse_timestamp(bad) is None, bad


def test_a_caller_carries_no_secret_and_verify_opens_it_in_the_core(app, bank):
    """The client's secret is opened by ``snap_clients.verify`` only: the ``Caller`` record
    has no field (nor smuggled attribute) holding it."""
    import dataclasses

    from pdam.core import snap_clients
    from pdam.web import runtime

    token = bank.token
    with app.app_context(), runtime.transaction() as conn:
        found = snap_clients.caller(conn, token, runtime.now(), 0)
        assert found is not None
        assert [f.name for f in dataclasses.fields(found)] == [
            "client_id", "partner_code", "service_id", "active", "rate_wait", "sandbox", "address_ok"
        ]  # fmt: skip
        assert not hasattr(found, "_sealed") and not hasattr(found, "client_secret")
        seen = []
        assert snap_clients.verify(conn, runtime.sealer(), found.client_id, lambda s: seen.append(s) or True)
        assert seen == [bank.secret]
        assert not snap_clients.verify(conn, runtime.sealer(), "nobody", lambda s: True)
