"""``demo seed``: a demo partner, customers with bills, a token and a curl line."""

from __future__ import annotations

import io

import click
from flask import current_app
from flask.cli import AppGroup

from ..core import billing, errors, partners
from ..web import runtime
from .common import reports_errors
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


@group.command("seed")
@click.option("--port", default=None, type=int, help="Port in the printed curl line.")
@reports_errors
def demo_seed(port):
    """Seed a demo partner, token and customers; print a ready-to-paste curl command."""
    created = seed()
    click.echo("demo data created" if created else "demo data already there")
    code = DEMO_PARTNER[0]
    token = issue_token(code)
    port = port or current_app.config["PORT"]
    click.echo(f"demo token (partner {code}):\n{token}\n")
    click.echo("try:")
    click.echo(f'curl -s -H "Authorization: Bearer {token}" http://127.0.0.1:{port}/tagihan/010101010101')
