"""scripts/snap_bank.py plays the bank against a live gunicorn (two worker processes, so the
token and X-EXTERNAL-ID answers are shared through PostgreSQL) and a real job server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ISSUER
from tests.fixtures.network import served

from .conftest import BILLS, CID

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def gunicorn(database_url, app_config, tmp_path):
    env = {
        "DATABASE_URL": database_url,
        "JWT_PUBLIC_KEY": app_config["PDAM_JWT_PUBLIC_KEY"],
        "JWT_ISSUER": ISSUER,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    with served(env, workers=2, log_path=tmp_path / "gunicorn.log") as url:
        yield url


def test_the_bank_script_walks_token_inquiry_payment_status(
    app, add_partner, seed_bills, gunicorn, start_worker, tmp_path, run_sql
):
    script = ROOT / "scripts" / "snap_bank.py"
    keys = tmp_path / "bank"
    keygen = subprocess.run(
        [sys.executable, str(script), "--keygen", str(keys)], capture_output=True, text=True
    )
    assert keygen.returncode == 0, keygen.stderr
    add_partner("00", "DEMO")
    seed_bills(BILLS)
    res = app.test_cli_runner().invoke(
        args=[
            "snap",
            "register",
            "00",
            "--client-id",
            "demo-bank",
            "--public-key",
            str(keys / "public.pem"),
            "--service-id",
            "12345",
        ]
    )
    assert res.exit_code == 0, res.output
    secret = res.output.strip().splitlines()[-1]
    start_worker()
    run = subprocess.run(
        [
            sys.executable,
            str(script),
            "--url",
            gunicorn,
            "--client-id",
            "demo-bank",
            "--private-key",
            str(keys / "private.pem"),
            "--secret",
            secret,
            "--service-id",
            "12345",
            "--customer",
            CID,
            "--pretty",
            "--wait",
            "15",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    for code in ("2007300", "2002400", "2002500", "2002600"):
        assert f'"responseCode":"{code}"' in out, code
    assert '"status":"accepted"' in out
    assert run_sql("select count(*), min(status) from payment") == [(1, "accepted")]
    # inquiry, payment, its retry and the status request(s): one X-EXTERNAL-ID each.
    assert run_sql("select count(*) from snap_external_id") == [(3 + out.count("== 5."),)]
