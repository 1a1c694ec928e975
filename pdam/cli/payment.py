"""``payment`` and ``webhook``: operators' repairs of payments and their callbacks."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..core import posting, webhooks
from ..web import runtime
from .common import reports_errors, run_in_transaction

payment_group = AppGroup("payment", help="Payments.")
webhook_group = AppGroup("webhook", help="Webhook callbacks.")


@payment_group.command("requeue")
@click.argument("nob")
@reports_errors
def payment_requeue(nob):
    """Re-queue a payment stuck in posting."""
    job_id = run_in_transaction(posting.requeue, nob)
    click.echo(f"payment {nob} queued for posting (job {job_id})")


@webhook_group.command("resend")
@click.argument("nob")
@reports_errors
def webhook_resend(nob):
    """Send a payment's last callback again (same event, body and X-Event-Id)."""
    sent = run_in_transaction(webhooks.resend, nob, runtime.now())
    click.echo(
        f"payment {nob}: last callback ({sent.event}, delivery {sent.resend_of}) queued again"
        f" as delivery {sent.delivery_id} (job {sent.job_id}): a new delivery of the same event,"
        f" same body and X-Event-Id {sent.event_id}"
    )
