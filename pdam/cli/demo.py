"""``demo seed``: a demo partner, customers with bills, a token and a curl line;
``demo reset``: the demo partner's payments gone and its bills unpaid again."""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from ..core import billing, demo, errors, partners, tokens
from ..web import runtime
from .common import reports_errors, run_in_transaction
from .token import issue_token

group = AppGroup("demo", help="Demo data.")

DEMO_PARTNER = ("00", "DEMO")
DEMO_BILLS = """cid,nama,alamat,golongan,bill_id,periode,meter_awal,meter_akhir,pakai,air,administrasi,ppn_administrasi,denda,angsuran
010101010101,Semar Badranaya,Jl. Perjuangan No. 102,10R - Rumah Tangga 10,1234202005,202005,496,501,10,50000,8000,800,30000,0
010101010101,Semar Badranaya,Jl. Perjuangan No. 102,10R - Rumah Tangga 10,1234202006,202006,501,515,14,70000,8000,800,10000,0
010101002004,Nala Gareng,Jl. Merdeka No. 7,10R - Rumah Tangga 10,2004202007,202007,120,138,18,90000,8000,800,0,0
0101020304,Petruk Kanthong Bolong,Gg. Kenanga No. 3,20N - Niaga Kecil,0304202007,202007,77,99,22,110000,8000,800,0,0
"""


def seed() -> bool:
    """Create the demo partner and bills once; return whether anything was created."""
    with runtime.transaction() as conn:
        try:
            partners.add(conn, *DEMO_PARTNER, runtime.sealer())
        except errors.Conflict:
            return False
    rows = billing.parse_csv(io.StringIO(DEMO_BILLS))
    with runtime.ledger_transaction() as conn:
        billing.import_rows(conn, rows)
    return True


def kept_token(path: Path, code: str) -> str | None:
    """The token kept at ``path`` if it is partner ``code``'s, not revoked, and valid a day more."""
    try:
        token = path.read_text().strip()
        jti = tokens.jti_of(token)
    except (OSError, errors.PdamError):
        return None
    soon = runtime.now() + dt.timedelta(days=1)
    for t in run_in_transaction(tokens.list_tokens, code):
        if t.jti == jti and t.revoked_at is None and t.expires_at > soon:
            return token
    return None


def keep_token(path: Path, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")


@group.command("seed")
@click.option("--port", default=None, type=int, help="Port in the printed curl line.")
@click.option(
    "--token-file",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the demo token here, and print the one kept there again while it is valid.",
)
@reports_errors
def demo_seed(port, token_file):
    """Seed a demo partner, token and customers; print a ready-to-paste curl command."""
    created = seed()
    click.echo("demo data created" if created else "demo data already there")
    code = DEMO_PARTNER[0]
    token = kept_token(token_file, code) if token_file and not created else None
    if token:
        click.echo(f"demo token (partner {code}, kept in {token_file}):\n{token}\n")
    else:
        token = issue_token(code)
        if token_file:
            keep_token(token_file, token)
        click.echo(f"demo token (partner {code}):\n{token}\n")
    port = port or current_app.config["PORT"]
    click.echo("try:")
    click.echo(f'curl -s -H "Authorization: Bearer {token}" http://127.0.0.1:{port}/tagihan/010101010101')


@group.command("reset")
@reports_errors
def demo_reset():
    """Delete the demo partner's payments and inquiries; make the demo bills unpaid again."""
    code, name = DEMO_PARTNER
    nobs = run_in_transaction(demo.paid_receipts, code, name)
    with runtime.ledger_transaction() as conn:
        bills = demo.unpay_bills(conn, nobs)
    payments = run_in_transaction(demo.delete_payments, code)
    click.echo(f"demo data reset: {payments} payments of partner {code} deleted, {bills} bills unpaid again")
