"""``bills``: the billing ledger."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from ..core import billing
from ..web import runtime
from .common import reports_errors

group = AppGroup("bills", help="The billing ledger.")


@group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@reports_errors
def bills_import(file):
    """Load customers and unpaid bills from a CSV file, all or nothing."""
    with file.open("rb") as fh:
        total = billing.count_lines(fh)
    with file.open(newline="", encoding="utf-8-sig") as fh:
        with click.progressbar(length=total, label="checking", file=sys.stderr) as bar:
            rows = billing.parse_csv(fh, progress=bar.update)
    with runtime.ledger_transaction() as conn:
        with click.progressbar(length=len(rows), label="sending ", file=sys.stderr) as bar:
            billing.stage_rows(conn, rows, progress=bar.update)
        click.echo(f"applying {len(rows)} bills to the ledger (one transaction) ...", err=True)
        result = billing.apply_staged(conn, len(rows))
    click.echo(
        f"imported {result.bills} bills of {result.customers} customers"
        f" ({result.inserted} new, {result.updated} updated)"
    )
