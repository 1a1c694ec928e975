"""Allowed addresses of a SNAP client (contract 14.3): ``snap allow``, refused with ASPI's
code for an unauthorized client, pinned from ASPI's table; the address as
tests/web/test_addresses.py tells it."""

from __future__ import annotations

from snapapi import exceptions as aspi

from pdam.snap import auth as snap_auth

from .conftest import expect

OFFICE, ELSEWHERE = "10.1.2.3", "203.0.113.7"


#: ASPI's response code table, its 401 row (written here from the standard, not from the
#: code under test): "401xx00 Unauthorized. [reason]: General unauthorized error (No
#: Interface Def, API is Invalid, Oauth Failed, Verify Client Secret Fail, Client Forbidden
#: Access API, Unknown Client, Key not Found)".
ASPI_401XX00_REASONS = (
    "No Interface Def",
    "API is Invalid",
    "Oauth Failed",
    "Verify Client Secret Fail",
    "Client Forbidden Access API",
    "Unknown Client",
    "Key not Found",
)


def test_the_snap_code_is_aspis_unauthorized_client():
    assert snap_auth.FORBIDDEN_ADDRESS in ASPI_401XX00_REASONS
    # The snapapi package (a bank's SNAP server library) files it under the same code.
    assert (aspi.AccessError.status_code, aspi.AccessError.case_code) == (401, "00")


def test_snap_allow_on_the_token_and_transactional_routes(cli, app, bank, bills, run_sql):
    assert bank.token  # taken from any address (the default)
    res = cli("snap", "allow", "bank-one", "10.0.0.0/8")
    assert res.exit_code == 0, res.output
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = ELSEWHERE
    forbidden = "Unauthorized. [Client Forbidden Access API]"
    expect(bank.request_token(client=elsewhere), "4017300", forbidden)
    expect(bank.post("/snap/v1.0/transfer-va/inquiry", {**bank.va(), "inquiryRequestId": "i"}, client=elsewhere),
           "4012400", forbidden)  # fmt: skip
    spoofed = bank.request_token(client=elsewhere, **{"X-Forwarded-For": "10.9.9.9"})
    expect(spoofed, "4017300", forbidden)
    office = app.test_client()
    office.environ_base["REMOTE_ADDR"] = OFFICE
    assert bank.request_token(client=office).status_code == 200
    assert bank.inquiry(ref="ok", headers={"client": office}).status_code == 200
    assert cli("snap", "allow", "bank-one", "--any").exit_code == 0
    assert bank.request_token(client=elsewhere).status_code == 200
