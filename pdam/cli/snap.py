"""``snap``: SNAP credentials of partners (banks), contract section 12.1; the rules are
the core's (``pdam/core/snap_clients.py``). The client secret is handed to the bank over
a secure channel."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from ..core import snap_clients
from ..web import runtime
from .common import reports_errors, run_in_transaction
from .partner import allow_command

group = AppGroup("snap", help="SNAP credentials of partners (banks' virtual accounts).")


@group.command("register")
@click.argument("code")
@click.option("--client-id", required=True, help="The bank's client id (its X-CLIENT-KEY / X-PARTNER-ID).")
@click.option(
    "--public-key",
    "public_key_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="PEM file of the bank's RSA public key (or its certificate).",
)
@click.option(
    "--service-id", required=True, help="Our company code at that bank (partnerServiceId, up to 8)."
)
@click.option("--sandbox", is_flag=True, help="A sandbox client: the partner's sandbox only, no money moves.")
@reports_errors
def snap_register(code, client_id, public_key_file, service_id, sandbox):
    """Give partner CODE SNAP credentials; print the client secret alone on the last line."""
    pem = snap_clients.public_key_pem(public_key_file.read_bytes())
    value = run_in_transaction(
        snap_clients.register, runtime.sealer(), code, client_id, pem, service_id, runtime.now(), sandbox
    )
    click.echo(
        f"partner {code}: {'sandbox ' if sandbox else ''}SNAP client {client_id} registered, partnerServiceId {service_id.rjust(8)!r};"
        " client secret (give it to the bank over a secure channel):"
    )
    click.echo(value)


@group.command("secret")
@click.argument("code")
@click.option("--rotate", is_flag=True, help="Replace the client secret with a new one.")
@click.option("--sandbox", is_flag=True, help="The partner's sandbox client.")
@reports_errors
def snap_secret(code, rotate, sandbox):
    """Print (or replace) the client secret of partner CODE."""
    click.echo(run_in_transaction(snap_clients.secret, runtime.sealer(), code, rotate, sandbox))


allow_command(group, "CLIENT_ID", "SNAP client", snap_clients.allow)


@group.command("list")
@reports_errors
def snap_list():
    """List SNAP clients."""
    rows = run_in_transaction(snap_clients.all_clients)
    click.echo(f"{'client id':24}  {'partner':12}  {'service id':10}  created")
    for r in rows:
        partner = f"{r.partner_code} {r.partner_name}" + ("" if r.active else " (off)")
        click.echo(
            f"{r.client_id:24}  {partner:12}  {r.service_id:10}  {r.created_at:%Y-%m-%d %H:%M}"
            + ("  sandbox" if r.sandbox else "")
        )
