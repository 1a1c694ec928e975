"""Operator commands: ``flask --app wsgi <group> <command>``, one module per group.

The names are part of the product; scripts depend on them. Every command
exits non-zero with a one-line reason on error.
"""

from __future__ import annotations

from flask import Flask

from . import bills, db, demo, partner, payment, sealed, snap, token

GROUPS = (
    db.group, partner.group, token.group, bills.group,
    payment.payment_group, payment.webhook_group, demo.group, snap.group, sealed.group,
)  # fmt: skip


def init_app(app: Flask) -> None:
    for group in GROUPS:
        app.cli.add_command(group)
