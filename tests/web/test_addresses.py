"""Allowed addresses (contract 14.3): ``partner allow`` / ``snap allow``, checked before the
rest of a credential's checks, refused as PeTi 403 ``address not allowed`` and SNAP's
401xx00 ``Unauthorized. [Client Forbidden Access API]``, logged with the address; the
client's address is the socket's or a trusted proxy's ``X-Forwarded-For`` entry only
(``FORWARDED_ALLOW_IPS``, the same under the Procfile's gunicorn)."""

from __future__ import annotations

import logging

import pytest
import urllib3

from pdam.web.addresses import client_address, trusted_proxies
from tests.factories import ISSUER, issue
from tests.fixtures.network import served

OFFICE, ELSEWHERE = "10.1.2.3", "203.0.113.7"
LOCAL = trusted_proxies("127.0.0.1,::1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "expected"),
    [
        (ELSEWHERE, None, LOCAL, ELSEWHERE),  # the socket's peer
        (ELSEWHERE, OFFICE, LOCAL, ELSEWHERE),  # a spoofed header from an untrusted peer: ignored
        ("127.0.0.1", OFFICE, LOCAL, OFFICE),  # the entry the trusted proxy added
        ("127.0.0.1", f"{OFFICE}, {ELSEWHERE}", LOCAL, ELSEWHERE),  # the client's own entry is left
        ("127.0.0.1", f"{ELSEWHERE}, 127.0.0.1", LOCAL, ELSEWHERE),  # two trusted hops skipped
        ("127.0.0.1", "not-an-address", LOCAL, None),
        ("127.0.0.1", None, LOCAL, "127.0.0.1"),
        (ELSEWHERE, OFFICE, trusted_proxies("*"), OFFICE),
        (ELSEWHERE, OFFICE, trusted_proxies("203.0.113.0/24"), OFFICE),
        ("::ffff:203.0.113.7", None, LOCAL, ELSEWHERE),
        ("2001:db8::1", None, LOCAL, "2001:db8::1"),
        ("", None, LOCAL, None),
    ],
)
def test_the_client_address(peer, forwarded, proxies, expected):
    environ = {"REMOTE_ADDR": peer, **({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {})}
    assert client_address(environ, proxies) == expected


def get(client, headers, peer: str, forwarded: str | None = None):
    extra = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.get("/audit", headers={**headers, **extra}, environ_base={"REMOTE_ADDR": peer})


def test_partner_allow_and_any(cli, client, partner_headers, run_sql, caplog):
    assert get(client, partner_headers, ELSEWHERE).status_code == 200  # default: any address
    res = cli("partner", "allow", "00", "10.0.0.0/8", "192.0.2.1")
    assert res.exit_code == 0 and "allowed from 10.0.0.0/8 192.0.2.1/32" in res.output, res.output
    assert get(client, partner_headers, OFFICE).status_code == 200
    assert get(client, partner_headers, "192.0.2.1").status_code == 200
    assert cli("partner", "list").output.splitlines()[1].endswith("  allowed from 10.0.0.0/8 192.0.2.1/32")
    run_sql("delete from rate_bucket")
    with caplog.at_level(logging.WARNING, logger="pdam.peti.auth"):
        refused = get(client, partner_headers, ELSEWHERE)
    assert refused.status_code == 403
    assert refused.json == {"error": 403, "message": "address not allowed"}
    (record,) = [r for r in caplog.records if r.getMessage() == "address not allowed"]
    assert (record.address, record.partner) == (ELSEWHERE, "00")
    assert run_sql("select count(*) from rate_bucket") == [(0,)]  # no rate token taken
    # A spoofed header from an untrusted peer changes nothing; a trusted proxy's entry counts.
    assert get(client, partner_headers, ELSEWHERE, forwarded=OFFICE).status_code == 403
    assert get(client, partner_headers, "127.0.0.1", forwarded=OFFICE).status_code == 200
    assert get(client, partner_headers, "127.0.0.1", forwarded=f"{OFFICE}, {ELSEWHERE}").status_code == 403
    assert cli("partner", "allow", "00", "--any").exit_code == 0
    assert get(client, partner_headers, ELSEWHERE).status_code == 200
    assert "allowed from" not in cli("partner", "list").output


def test_the_address_is_checked_before_revocation_and_the_rest(cli, app, client, partner_headers, run_sql):
    cli("partner", "allow", "00", "10.0.0.0/8")
    run_sql("update api_token set revoked_at = now(), revoke_reason = 'test'")
    assert get(client, partner_headers, ELSEWHERE).json == {"error": 403, "message": "address not allowed"}
    assert get(client, partner_headers, OFFICE).status_code == 401


def test_a_sandbox_token_is_not_bound_to_the_live_addresses(cli, app, keys, client, partner_headers):
    cli("partner", "allow", "00", "10.0.0.0/8")
    sandbox = {"Authorization": f"Bearer {issue(app, keys['ES256']['private'], '00', sandbox=True)}"}
    assert get(client, sandbox, ELSEWHERE).status_code == 200
    assert get(client, partner_headers, ELSEWHERE).status_code == 403


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("partner", "allow", "00"), "give CIDR... or --any"),
        (("partner", "allow", "00", "10.0.0.0/8", "--any"), "give CIDR... or --any"),
        (("partner", "allow", "00", "10.0.0.1/8"), "is not an address or network"),
        (("partner", "allow", "00", "nowhere"), "is not an address or network"),
        (("partner", "allow", "42", "10.0.0.0/8"), "partner 42 does not exist"),
        (("snap", "allow", "no-such-client", "10.0.0.0/8"), "no SNAP client no-such-client"),
    ],
)
def test_allow_refuses_bad_input(cli, partner_headers, args, message):
    res = cli(*args)
    assert res.exit_code != 0 and message in res.output, res.output


def test_under_gunicorn_only_a_trusted_proxy_sets_the_address(database_url, app_config, tmp_path, cli):
    """The Procfile's gunicorn: with FORWARDED_ALLOW_IPS naming another host, our
    X-Forwarded-For is a spoofed header and changes nothing; naming us, it is the client."""
    cli("partner", "add", "00", "BANK1")
    cli("partner", "allow", "00", "10.0.0.0/8")
    token = cli("token", "issue", "00").output.strip()
    env = {
        "DATABASE_URL": database_url,
        "JWT_PUBLIC_KEY": app_config["PDAM_JWT_PUBLIC_KEY"],
        "JWT_ISSUER": ISSUER,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
    }
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": OFFICE, "Connection": "close"}
    for trusted, status in (("192.0.2.1", 403), ("127.0.0.1", 200)):
        with served({**env, "FORWARDED_ALLOW_IPS": trusted}, workers=1) as url:
            res = urllib3.request("GET", f"{url}/audit", headers=headers, timeout=5, retries=False)
            assert res.status == status, (trusted, res.data)
