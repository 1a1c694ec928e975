"""``partner``: partners (mitra)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..core import partners
from ..web import runtime
from .common import reports_errors, run_in_transaction

group = AppGroup("partner", help="Partners (mitra).")


@group.command("add")
@click.argument("code")
@click.argument("name")
@reports_errors
def partner_add(code, name):
    """Add partner CODE (two digits) named NAME."""
    run_in_transaction(partners.add, code, name, runtime.sealer())
    click.echo(f"partner {code} {name} added")


@group.command("deactivate")
@click.argument("code")
@reports_errors
def partner_deactivate(code):
    """Deactivate a partner: all its tokens get 403."""
    run_in_transaction(partners.set_active, code, False)
    click.echo(f"partner {code} deactivated")


@group.command("activate")
@click.argument("code")
@reports_errors
def partner_activate(code):
    """Re-activate a partner."""
    run_in_transaction(partners.set_active, code, True)
    click.echo(f"partner {code} activated")


@group.command("list")
@reports_errors
def partner_list():
    """List partners."""
    rows = run_in_transaction(partners.all_partners)
    click.echo(f"{'code':4}  {'name':20}  {'active':6}  {'tokens':6}  created")
    for r in rows:
        click.echo(
            f"{r.code:4}  {r.name:20}  {'yes' if r.active else 'no':6}  {r.live_tokens:6}"
            f"  {r.created_at:%Y-%m-%d %H:%M}"
            + (f"  allowed from {' '.join(r.allowed_addresses)}" if r.allowed_addresses else "")
        )


def allow_command(group_: AppGroup, name: str, what: str, apply):
    """``<group> allow KEY CIDR... | --any``: the addresses a credential may be used from."""

    @group_.command(
        "allow", help=f"Set the addresses {what} {name} may be used from: networks (CIDR) or --any."
    )
    @click.argument("key", metavar=name)
    @click.argument("networks", nargs=-1, metavar="CIDR...")
    @click.option("--any", "any_address", is_flag=True, help="Any address (the default).")
    @reports_errors
    def allow(key, networks, any_address):
        if any_address == bool(networks):
            raise click.UsageError("give CIDR... or --any")
        allowed = run_in_transaction(apply, key, None if any_address else list(networks))
        click.echo(
            f"{what} {key}: "
            + (f"allowed from {' '.join(allowed)}" if allowed else "allowed from any address")
        )

    return allow


allow_command(group, "CODE", "partner", partners.allow)


@group.command("secret")
@click.argument("code")
@click.option("--rotate", is_flag=True, help="Replace the secret with a new one.")
@reports_errors
def partner_secret(code, rotate):
    """Print (or replace) the partner's webhook signing secret."""
    click.echo(run_in_transaction(partners.secret, code, runtime.sealer(), rotate))
