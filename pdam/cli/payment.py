"""``payment`` and ``webhook``: operators' repairs of payments and their callbacks."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..core import callbacks, posting, webhooks
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
@click.option(
    "--event",
    "event_id",
    default=None,
    help="The X-Event-Id of the callback to send (default: the payment's last one).",
)
@reports_errors
def webhook_resend(nob, event_id):
    """Send a payment's last callback (or its event EVENT_ID) again (same event, body and X-Event-Id)."""
    if event_id is not None and callbacks.event_id_of(event_id) is None:
        raise click.BadParameter(f"{event_id!r} is not an event id (a UUID)", param_hint="--event")
    sent = run_in_transaction(webhooks.resend, nob, runtime.now(), event_id)
    which = "last callback" if event_id is None else "callback"
    click.echo(
        f"payment {nob}: {which} ({sent.event}, delivery {sent.resend_of}) queued again"
        f" as delivery {sent.delivery_id}: a new delivery of the same event,"
        f" same body and X-Event-Id {sent.event_id}"
    )
