"""Operator commands: bills import, partners, the token round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

HEADER = "cid,nama,alamat,golongan,bill_id,periode,meter_awal,meter_akhir,pakai,air,administrasi,ppn_administrasi,denda,angsuran\n"
GOOD = HEADER + (
    "010101010101,Semar Badranaya,Jl. Perjuangan No. 102,10R - Rumah Tangga 10,1234202005,202005,496,501,10,50000,8000,800,30000,0\n"
    "010101010101,Semar Badranaya,Jl. Perjuangan No. 102,10R - Rumah Tangga 10,1234202006,202006,501,515,14,70000,8000,800,0,0\n"
    "0101020304,Petruk,\"Gg. Kenanga, No. 3\",20N - Niaga Kecil,0304202007,202007,77,99,22,110000,8000,800,0,0\n"
)


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(args=list(args))

    return invoke


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bills.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def bills(run_sql):
    return run_sql("select customer_id, period, water, late_fee, total, paid_by from bill order by 1, 2")


def test_import_good_file(cli, tmp_path, run_sql):
    res = cli("bills", "import", write(tmp_path, GOOD))
    assert res.exit_code == 0, res.output
    assert "imported 3 bills of 2 customers (3 new, 0 updated)" in res.output
    assert bills(run_sql) == [
        ("010101010101", "202005", 50000, 30000, 88800, None),
        ("010101010101", "202006", 70000, 0, 78800, None),
        ("0101020304", "202007", 110000, 0, 118800, None),
    ]
    assert run_sql("select address from customer where id = '0101020304'") == [("Gg. Kenanga, No. 3",)]


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("01x1,A,,,b9,202001,0,0,0,1,0,0,0,0", "line 5: cid must be 1..20 digits"),
        ("0101,A,,,b9,202013,0,0,0,1,0,0,0,0", "line 5: periode must be YYYYMM"),
        ("0101,A,,,b9,202001,0,0,0,-5,0,0,0,0", "line 5: air must be a whole non-negative number"),
        ("0101,A,,,b9,202001,0,0,0,1.5,0,0,0,0", "line 5: air must be a whole non-negative number"),
        ("0101,A,,,b9,202001,0,0,0", "line 5: expected 14 columns"),
        ("010101010101,A,,,b9,202005,0,0,0,1,0,0,0,0", "line 5: bill for cid 010101010101 periode 202005 already on line 2"),
    ],
)
def test_bad_line_imports_nothing(cli, tmp_path, run_sql, bad_line, message):
    res = cli("bills", "import", write(tmp_path, GOOD + bad_line + "\n"))
    assert res.exit_code == 1
    assert message in res.output
    assert "nothing imported" in res.output
    assert bills(run_sql) == []


def test_missing_column(cli, tmp_path):
    res = cli("bills", "import", write(tmp_path, "cid,nama\n1,A\n"))
    assert res.exit_code == 1
    assert "line 1: missing columns: alamat" in res.output


def test_reimport_updates_unpaid_bills(cli, tmp_path, run_sql):
    assert cli("bills", "import", write(tmp_path, GOOD)).exit_code == 0
    changed = GOOD.replace(",30000,0\n", ",45000,0\n")
    res = cli("bills", "import", write(tmp_path, changed))
    assert res.exit_code == 0, res.output
    assert "(0 new, 3 updated)" in res.output
    assert bills(run_sql)[0][3:5] == (45000, 103800)


def test_reimport_refuses_to_touch_a_paid_bill(cli, tmp_path, run_sql):
    assert cli("bills", "import", write(tmp_path, GOOD)).exit_code == 0
    run_sql("update bill set paid_by = '002011230001', paid_at = now() where period = '202005'")
    changed = GOOD.replace(",30000,0\n", ",45000,0\n").replace("110000", "120000")
    res = cli("bills", "import", write(tmp_path, changed))
    assert res.exit_code == 1
    assert "line 2: bill 1234202005" in res.output and "already paid by 002011230001" in res.output
    after = bills(run_sql)
    assert after[0][3] == 30000 and after[2][2] == 110000  # nothing imported, not even the unpaid bill


def test_bill_id_of_another_bill_is_refused(cli, tmp_path, run_sql):
    assert cli("bills", "import", write(tmp_path, GOOD)).exit_code == 0
    res = cli("bills", "import", write(tmp_path, HEADER + "0101,A,,,1234202005,202001,0,0,0,1,0,0,0,0\n"))
    assert res.exit_code == 1
    assert "line 2: bill_id 1234202005 belongs to cid 010101010101" in res.output


def test_partner_commands(cli):
    assert cli("partner", "add", "00", "BANK1").exit_code == 0
    dup = cli("partner", "add", "00", "BANK1")
    assert dup.exit_code == 1 and "already exists" in dup.output
    bad = cli("partner", "add", "7", "X")
    assert bad.exit_code == 1 and "two digits" in bad.output
    listing = cli("partner", "list")
    assert "00" in listing.output and "BANK1" in listing.output and "yes" in listing.output
    assert cli("partner", "deactivate", "00").exit_code == 0
    assert "no" in cli("partner", "list").output.splitlines()[1]
    missing = cli("partner", "deactivate", "55")
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_partner_secret(cli):
    cli("partner", "add", "00", "BANK1")
    first = cli("partner", "secret", "00").output.strip()
    assert len(first) == 64
    assert cli("partner", "secret", "00").output.strip() == first
    rotated = cli("partner", "secret", "00", "--rotate").output.strip()
    assert rotated != first and cli("partner", "secret", "00").output.strip() == rotated


def test_token_round_trip(make_app, tmp_path):
    keydir = tmp_path / "keys"
    app = make_app(PDAM_JWT_PUBLIC_KEY=None, PDAM_JWT_PUBLIC_KEY_FILE=str(keydir / "public.pem"),
                   JWT_PRIVATE_KEY_FILE=str(keydir / "private.pem"))
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


def test_demo_seed_is_idempotent(cli, run_sql):
    first = cli("demo", "seed", "--port", "5055")
    assert first.exit_code == 0, first.output
    assert "demo data created" in first.output
    assert "curl -s -H \"Authorization: Bearer ey" in first.output and ":5055/tagihan/" in first.output
    second = cli("demo", "seed")
    assert second.exit_code == 0 and "demo data already there" in second.output
    assert run_sql("select count(*) from bill") == [(4,)]
