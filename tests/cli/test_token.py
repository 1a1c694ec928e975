"""``token`` commands (pdam/cli/token.py): keys, the issue/list/revoke round trip."""

from __future__ import annotations


def test_token_round_trip(make_app, tmp_path):
    keydir = tmp_path / "keys"
    app = make_app(
        PDAM_JWT_PUBLIC_KEY=None,
        PDAM_JWT_PUBLIC_KEY_FILE=str(keydir / "public.pem"),
        JWT_PRIVATE_KEY_FILE=str(keydir / "private.pem"),
    )
    runner = app.test_cli_runner()
    res = runner.invoke(args=["token", "keygen", str(keydir)])
    assert res.exit_code == 0, res.output
    assert (keydir / "private.pem").stat().st_mode & 0o777 == 0o600
    again = runner.invoke(args=["token", "keygen", str(keydir)])
    assert again.exit_code == 1 and "exists" in again.output
    runner.invoke(args=["partner", "add", "00", "BANK1"])
    token = runner.invoke(args=["token", "issue", "00", "--days", "2"]).output.strip()
    # The web app reads the public key at start: a new app (as after a restart).
    web = make_app(PDAM_JWT_PUBLIC_KEY=None, PDAM_JWT_PUBLIC_KEY_FILE=str(keydir / "public.pem"))
    client = web.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/tagihan/0101", headers=headers).status_code == 404  # authenticated
    listing = runner.invoke(args=["token", "list", "00"]).output
    assert "valid" in listing
    res = runner.invoke(args=["token", "revoke", token, "--reason", "leaked"])
    assert res.exit_code == 0, res.output
    assert client.get("/tagihan/0101", headers=headers).status_code == 401
    assert "revoked" in runner.invoke(args=["token", "list"]).output
    missing = runner.invoke(args=["token", "revoke", "f" * 32, "--reason", "x"])
    assert missing.exit_code == 1 and "no token" in missing.output


def test_token_until_date(cli, run_sql):
    cli("partner", "add", "00", "BANK1")
    res = cli("token", "issue", "00", "--until", "2099-12-31")
    assert res.exit_code == 0, res.output
    assert run_sql("select to_char(expires_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') from api_token") == [
        ("2100-01-01 00:00",)
    ]
    both = cli("token", "issue", "00", "--days", "3", "--until", "2099-12-31")
    assert both.exit_code == 2


def test_token_for_deactivated_partner_is_refused(cli):
    cli("partner", "add", "00", "BANK1")
    cli("partner", "deactivate", "00")
    res = cli("token", "issue", "00")
    assert res.exit_code == 1 and "deactivated" in res.output


def test_an_issued_token_carries_the_contracts_claims(cli, app, keys, clock):
    """``token issue`` signs with flask-jwt-extended's ``create_access_token``: the contract's
    claims (section 1) from the service's clock and the database, the configured issuer, no
    ``nbf`` or ``csrf``; ``type`` and ``fresh`` are the library's own (4.7 writes them into
    every token it makes, and no option turns them off)."""
    import datetime as dt

    import jwt

    cli("partner", "add", "00", "BANK1")
    token = cli("token", "issue", "00", "--days", "2").output.strip()
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "typ": "JWT"}
    claims = jwt.decode(
        token,
        keys["ES256"]["public"],
        algorithms=["ES256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    issued = int(clock.at.timestamp())
    assert claims == {
        "name": "BANK1",
        "sub": "00",
        "iat": issued,
        "exp": issued + 2 * 86400,
        "iss": app.config["JWT_ISSUER"],
        "jti": claims["jti"],
        "type": "access",
        "fresh": False,
    }
    assert len(claims["jti"]) == 32 and int(claims["jti"], 16) >= 0
    listing = cli("token", "list", "00").output
    assert claims["jti"] in listing and f"issued {clock.at.astimezone(dt.UTC):%Y-%m-%d}" in listing
