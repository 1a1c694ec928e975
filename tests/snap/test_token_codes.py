"""Contract 12.2-12.4, the token route (service 73): each of its response codes produced by
a real request, with the exact responseCode/responseMessage and the HTTP status equal to
the code's first three digits; and SNAP's answers to URLs under /snap/ that match no route.
The transactional routes' codes are in tests/snap/test_codes.py."""

from __future__ import annotations

import datetime as dt

import pytest

from .conftest import (
    INQUIRY,
    TOKEN_PATH,
    compact,
    expect,
    rsa_signature,
    wib_timestamp,
)

# -- the token route (service 73) ---------------------------------------------------------------


def test_token_success(bank):
    res = bank.request_token()
    body = expect(res, "2007300", "Successful")
    assert set(body) == {"responseCode", "responseMessage", "accessToken", "tokenType", "expiresIn"}
    assert body["tokenType"] == "Bearer" and body["expiresIn"] == "900"
    assert len(body["accessToken"]) >= 32


@pytest.mark.parametrize(
    ("headers", "body", "code", "message"),
    [
        ({"X-CLIENT-KEY": None}, None, "4007302", "Invalid Mandatory Field [X-CLIENT-KEY]"),
        ({"X-CLIENT-KEY": ""}, None, "4007302", "Invalid Mandatory Field [X-CLIENT-KEY]"),
        ({"X-TIMESTAMP": None}, None, "4007302", "Invalid Mandatory Field [X-TIMESTAMP]"),
        ({"X-SIGNATURE": None}, None, "4007302", "Invalid Mandatory Field [X-SIGNATURE]"),
        ({"timestamp": "30-11-2026 09:15"}, None, "4007301", "Invalid Field Format [X-TIMESTAMP]"),
        ({"timestamp": "2026-11-30T09:15:00"}, None, "4007301", "Invalid Field Format [X-TIMESTAMP]"),
        ({"timestamp": "2026-13-30T09:15:00+07:00"}, None, "4007301", "Invalid Field Format [X-TIMESTAMP]"),
        ({}, b"grantType=client_credentials", "4007300", "Bad Request"),
        ({}, b'["client_credentials"]', "4007300", "Bad Request"),
        ({}, b"{}", "4007302", "Invalid Mandatory Field [grantType]"),
        ({}, b'{"grantType": "password"}', "4007301", "Invalid Field Format [grantType]"),
        ({"X-CLIENT-KEY": "nobody"}, None, "4017300", "Unauthorized. [Unknown client]"),
        ({"X-CLIENT-KEY": "bank one"}, None, "4017300", "Unauthorized. [Unknown client]"),
        ({"X-CLIENT-KEY": "a\x00b"}, None, "4017300", "Unauthorized. [Unknown client]"),
        ({"X-CLIENT-KEY": "x" * 65}, None, "4017300", "Unauthorized. [Unknown client]"),
        ({"X-SIGNATURE": "AAAA"}, None, "4017300", "Unauthorized. [Signature]"),
    ],
)
def test_token_errors(bank, headers, body, code, message):
    expect(bank.request_token(body=body, **headers), code, message)


def test_token_signature_of_another_key_or_timestamp(bank, rsa_keys):
    ts = wib_timestamp()
    other_key = rsa_signature(rsa_keys[1], bank.client_id, ts)
    expect(
        bank.request_token(timestamp=ts, **{"X-SIGNATURE": other_key}), "4017300", "Unauthorized. [Signature]"
    )
    earlier = wib_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    stale = rsa_signature(bank.key, bank.client_id, earlier)
    expect(bank.request_token(timestamp=ts, **{"X-SIGNATURE": stale}), "4017300", "Unauthorized. [Signature]")


@pytest.mark.parametrize("offset", [-301, 301])
def test_token_timestamp_outside_the_window(bank, offset):
    ts = wib_timestamp(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset))
    expect(bank.request_token(timestamp=ts), "4017300", "Unauthorized. [X-TIMESTAMP]")


def test_token_timestamp_window_is_configurable(make_app, make_bank):
    app = make_app(SNAP_TIMESTAMP_SKEW_SECONDS=30)
    bank = make_bank(app_=app)
    ts = wib_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=60))
    expect(bank.request_token(timestamp=ts), "4017300", "Unauthorized. [X-TIMESTAMP]")
    ts = wib_timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=20))
    expect(bank.request_token(timestamp=ts), "2007300", "Successful")


def test_token_timestamp_in_utc_and_with_milliseconds(bank):
    now = dt.datetime.now(dt.UTC)
    for ts in (
        now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        now.isoformat(timespec="milliseconds"),
        wib_timestamp(now)[:19] + "+07:00",
    ):
        expect(bank.request_token(timestamp=ts), "2007300", "Successful")


def test_token_of_a_deactivated_partner(app, bank):
    assert app.test_cli_runner().invoke(args=["partner", "deactivate", "00"]).exit_code == 0
    expect(bank.request_token(), "4017300", "Unauthorized. [Unknown client]")


def test_token_body_too_large(bank):
    body = compact({"grantType": "client_credentials", "additionalInfo": {"x": "y" * 20000}})
    expect(bank.request_token(body=body), "4137300", "Request Entity Too Large")


def test_wrong_method_and_unknown_snap_route(client):
    res = client.get(TOKEN_PATH)
    expect(res, "4057300", "Method Not Allowed")
    assert set(res.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
    expect(client.get(INQUIRY), "4052400", "Method Not Allowed")
    expect(client.post("/snap/v1.0/transfer-va/delete"), "4040000", "Not Found")
    # Outside /snap/ the service's own error body stays.
    assert client.get("/nowhere").json == {"error": 404, "message": "Not Found"}


def test_snap_error_handler_is_its_blueprints_only(app):
    """SNAP's format is registered on its blueprint (and for unmatched /snap/ URLs), never
    as the app-wide handler: the order edges are set up in changes nothing."""
    from pdam.snap import views
    from pdam.web import errors as web_errors

    assert app.error_handler_spec[None][None][Exception] is web_errors.handle
    assert app.error_handler_spec["snap"][None][Exception] is views.handle
