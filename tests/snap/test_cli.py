"""``flask --app wsgi snap register|secret|list`` (contract 12.1)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.factories import SEALER
from tests.fixtures.certificates import self_signed

from .conftest import Bank, public_pem, register


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


@pytest.fixture
def pem(tmp_path, rsa_keys):
    path = tmp_path / "bank.pem"
    path.write_bytes(public_pem(rsa_keys[0]))
    return path


def test_register_prints_the_secret_alone_on_the_last_line(app, add_partner, pem, run_sql):
    add_partner("00", "BANK1")
    res = run(
        app,
        "snap",
        "register",
        "00",
        "--client-id",
        "bank-one",
        "--public-key",
        str(pem),
        "--service-id",
        "12345",
    )
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].startswith("partner 00: SNAP client bank-one registered, partnerServiceId '   12345'")
    secret = lines[-1]
    assert len(secret) == 64 and secret.isalnum()
    ((client_id, partner, service_id, stored),) = run_sql(
        "select client_id, partner_code, service_id, client_secret from snap_client"
    )
    assert (client_id, partner, service_id) == ("bank-one", "00", "12345")
    assert secret not in stored and SEALER.open(stored) == secret  # stored sealed
    assert run(app, "snap", "secret", "00").output.strip() == secret


def test_secret_rotation(app, make_bank, bills):
    bank = make_bank()
    old = bank.secret
    res = run(app, "snap", "secret", "00", "--rotate")
    new = res.output.strip()
    assert res.exit_code == 0 and new != old and len(new) == 64
    assert run(app, "snap", "secret", "00").output.strip() == new
    assert bank.inquiry(ref="a").json["responseCode"] == "4012400"  # signed with the old secret
    bank.secret = new
    assert bank.inquiry(ref="b").json["responseCode"] == "2002400"


def test_list(app, make_bank):
    make_bank("00", "bank-one", "12345")
    make_bank("96", "bank-two", "678")
    assert run(app, "partner", "deactivate", "96").exit_code == 0
    lines = run(app, "snap", "list").output.strip().splitlines()
    assert lines[0].split() == ["client", "id", "partner", "service", "id", "created"]
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    assert lines[1].split()[:4] == ["bank-one", "00", "BANK00", "12345"] and today in lines[1]
    assert lines[2].split()[:5] == ["bank-two", "96", "BANK96", "(off)", "678"]


def test_a_partner_holds_peti_tokens_and_snap_credentials(app, bank, bills, issue_token, client):
    peti = {"Authorization": f"Bearer {issue_token('00')}"}
    assert client.get("/tagihan/010101010101", headers=peti).status_code == 200
    assert bank.inquiry().json["responseCode"] == "2002400"


def test_register_accepts_pkcs1_and_certificates(app, add_partner, tmp_path, rsa_keys):
    add_partner("00", "BANK1")
    add_partner("01", "BANK2")
    key = rsa_keys[0]
    pkcs1 = tmp_path / "pkcs1.pem"
    pkcs1.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    )
    assert (
        run(
            app, "snap", "register", "00", "--client-id", "a", "--public-key", str(pkcs1), "--service-id", "1"
        ).exit_code
        == 0
    )
    cert = self_signed(rsa_keys[1], "bank")
    crt = tmp_path / "bank.crt"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    res = run(
        app, "snap", "register", "01", "--client-id", "b", "--public-key", str(crt), "--service-id", "2"
    )
    assert res.exit_code == 0, res.output
    secret = res.output.strip().splitlines()[-1]
    assert Bank(app, "b", rsa_keys[1], secret, "01").request_token().json["responseCode"] == "2007300"


def test_register_errors(app, add_partner, pem, tmp_path):
    add_partner("00", "BANK1")
    add_partner("01", "BANK2")
    ec_pem = tmp_path / "ec.pem"
    ec_pem.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    small = tmp_path / "small.pem"
    small.write_bytes(public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")

    def register(code="00", client_id="bank-one", key=pem, service_id="12345"):
        return run(
            app,
            "snap",
            "register",
            code,
            "--client-id",
            client_id,
            "--public-key",
            str(key),
            "--service-id",
            service_id,
        )

    cases = [
        (register(code="42"), "partner 42 does not exist"),
        (register(key=ec_pem), "must be an RSA public key"),
        (register(key=small), "at least 2048"),
        (register(key=junk), "not a PEM public key or certificate"),
        (register(service_id="123456789"), "1..8 letters or digits"),
        (register(service_id="12 3"), "1..8 letters or digits"),
        (register(client_id="bank one"), "client id must be"),
    ]
    for res, message in cases:
        assert res.exit_code == 1 and message in res.output, res.output
    assert register().exit_code == 0
    again = register(client_id="other")
    assert again.exit_code == 1 and "partner 00 already has SNAP client bank-one" in again.output
    taken = register(code="01")
    assert taken.exit_code == 1 and "client id bank-one is already registered" in taken.output


def test_secret_of_a_partner_without_credentials(app, add_partner):
    add_partner("00", "BANK1")
    res = run(app, "snap", "secret", "00")
    assert res.exit_code == 1 and "partner 00 has no SNAP credentials" in res.output
    assert run(app, "snap", "secret", "00", "--rotate").exit_code == 1


def test_commands_run_on_the_services_clock(app, clock, add_partner, rsa_keys, run_sql, tmp_path):
    """``CLOCK`` (here the test clock, at H) is every command's time, not the machine's."""
    import jwt

    add_partner("00", "BANK1")
    register(app, rsa_keys[0], tmp_path=tmp_path)  # the real `snap register`
    assert run_sql("select created_at from snap_client") == [(clock.at,)]
    assert f"{clock.at.astimezone(dt.UTC):%Y-%m-%d %H:%M}" in run(app, "snap", "list").output
    token = run(app, "token", "issue", "00", "--days", "1").output.strip().splitlines()[-1]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iat"] == int(clock.at.timestamp())
    assert "valid" in run(app, "token", "list", "00").output  # checked against H, not today
