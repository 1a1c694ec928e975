"""Contract 15.1 and 6: callback URLs that would leak are refused at payment time with a
400 that says why (pdam/peti/callbacks.py ``refusal``, on infra's ``url_refusal``: the same
rule the delivery applies). Nothing is recorded for a refused payment."""

from __future__ import annotations

import asyncio

import pytest

from pdam.infra import http
from tests.factories import CID

BILLS = (
    f"{CID},Nala Gareng,Jl. Merdeka 7,10R,a201901,201901,0,10,10,106233,8000,800,0,0\n"
    f"{CID},Nala Gareng,Jl. Merdeka 7,10R,a201902,201902,10,20,10,106233,8000,800,0,0\n"
)


@pytest.fixture
def bills(seed_bills):
    seed_bills(BILLS)


def refused(pay, partner_headers, inquire, run_sql, url, token=None, app=None):
    _, inq = inquire(CID, partner_headers)
    res = pay.response(partner_headers, inq=inq, x_async=url, x_async_token=token, app=app)
    assert res.status_code == 400, res.json
    assert res.json["error"] == 400
    assert run_sql("select count(*) from payment") == [(0,)]
    return res.json["message"]


@pytest.mark.parametrize(
    "url",
    [
        "https://user:s3cret@hooks.example/cb",
        "http://user:s3cret@127.0.0.1:9/cb",
        "https://token@hooks.example/cb",
        "https://a@b@hooks.example/cb",
    ],
)
def test_credentials_in_the_url_are_refused_and_not_echoed(
    pay, partner_headers, bills, inquire, run_sql, url
):
    message = refused(pay, partner_headers, inquire, run_sql, url, token="Bearer t")
    assert message.startswith("X-Async: ") and "is not called: credentials in the URL" in message
    assert "s3cret" not in message and "token@" not in message and "a@b@" not in message
    assert (
        message.startswith(f"X-Async: {url.split(':')[0]}://127.0.0.1:9/cb ")
        or "hooks.example/cb is not" in message
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.1.1/cb",
        "https://[fe80::1]/cb",
        "https://[fe80::1%25eth0]/cb",
        "https://[::ffff:169.254.169.254]/cb",
    ],
)
def test_link_local_is_refused_even_with_private_networks_allowed(
    pay, partner_headers, bills, inquire, run_sql, app, url
):
    assert app.config["WEBHOOK_ALLOW_PRIVATE_NETWORKS"] is True
    message = refused(pay, partner_headers, inquire, run_sql, url, token="Bearer t")
    assert "is not called:" in message and "is a link-local address" in message


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1:9/cb", "127.0.0.1 is a loopback address"),
        ("https://localhost:9/cb", "is a loopback address"),
        ("https://2130706433/cb", "127.0.0.1 is a loopback address"),
        ("https://0x7f.1/cb", "127.0.0.1 is a loopback address"),
        ("https://10.1.2.3/cb", "10.1.2.3 is a private address"),
        ("https://[::1]/cb", "::1 is a loopback address"),
        ("https://[fd00::1]/cb", "fd00::1 is a unique-local address"),
        ("https://100.64.0.1/cb", "100.64.0.1 is not a public address"),
        ("https://0.0.0.0/cb", "0.0.0.0 is the unspecified address"),
    ],
)
def test_a_literal_address_refused_in_production_is_a_400(
    pay, partner_headers, bills, inquire, run_sql, make_app, url, reason
):
    """Issue 31 item 7: the payment is refused with the reason the delivery would give."""
    production = make_app(WEBHOOK_ALLOW_PRIVATE_NETWORKS=False)
    message = refused(pay, partner_headers, inquire, run_sql, url, token="Bearer t", app=production)
    assert message == f"X-Async: {url} is not called: {reason}" or reason in message
    # One rule: the delivery refuses the same URL for the same reason, before connecting.
    outcome = asyncio.run(http.send(url, b"{}", {}, timeout=1, allow_private=False))
    assert outcome.result == "refused" and reason in outcome.error


@pytest.mark.parametrize(
    "url", ["http://hooks.example/cb", "http://93.184.216.34/cb", "http://[2606:4700::1]/cb"]
)
def test_http_to_a_public_host_without_token_is_refused(pay, partner_headers, bills, inquire, run_sql, url):
    message = refused(pay, partner_headers, inquire, run_sql, url)
    assert message == (
        f"X-Async: {url} is not called: an http:// URL to a public host needs X-Async-Token (without "
        "it the callback carries this request's Authorization, your token, in clear); use https:// "
        "or give X-Async-Token"
    )


def test_http_with_token_https_without_and_loopback_in_tests_are_accepted(
    pay, partner_headers, bills, inquire, run_sql
):
    pay(
        partner_headers,
        per=[201901],
        pid="p-http-token",
        x_async="http://hooks.example/cb",
        x_async_token="T",
    )
    pay(partner_headers, per=[201902], pid="p-https", x_async="https://hooks.example/cb")
    assert run_sql("select pid, callback_url from payment order by pid") == [
        ("p-http-token", "http://hooks.example/cb"),
        ("p-https", "https://hooks.example/cb"),
    ]


def test_http_to_loopback_without_token_is_accepted_where_private_networks_are(
    pay, partner_headers, bills, inquire, run_sql
):
    """Tests' receivers: a literal non-public address is no public host (the token would not
    cross a network); in production such an address is refused anyway."""
    pay(partner_headers, per=[201901], pid="p-loop", x_async="http://127.0.0.1:9/cb")
    assert run_sql("select callback_url from payment") == [("http://127.0.0.1:9/cb",)]


def test_url_refusal_is_the_one_rule():
    assert http.url_refusal("https://hooks.example/cb", allow_private=False) is None
    assert http.url_refusal("https://u:p@hooks.example/cb", allow_private=True).startswith("credentials")
    assert http.url_refusal("http://127.0.0.1/", allow_private=True) is None
    assert http.url_refusal("http://127.0.0.1/", allow_private=False) == "127.0.0.1 is a loopback address"
    assert http.url_refusal("https://cafe.de/", allow_private=False) is None  # a name, not hex
    assert http.url_refusal("ftp://x.example/", allow_private=True) == "only absolute http(s) URLs are called"


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]:9/cb", "https://u:p@127.0.0.1:9/cb"]
)
def test_the_delivery_refuses_the_same_urls_with_private_networks_allowed(url, connect_spy):
    """A URL stored before these checks (or a resend) is refused at delivery too, before any
    connection, where tests allow private networks."""
    outcome = asyncio.run(http.send(url, b"{}", {}, timeout=1, allow_private=True))
    assert outcome.result == "refused" and outcome.error.startswith("refused: ")
    assert connect_spy.seen == []
