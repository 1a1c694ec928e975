"""The PeTi edge: partners' JWT, ``/tagihan``, ``/status``, ``/audit``, callbacks."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    # Imported here: the job server imports ``callbacks`` (PeTi's events) without Flask.
    from . import audit, auth, bills, deliveries, sandbox, status

    auth.init_app(app)
    for blueprint in (bills.bp, status.bp, audit.bp, deliveries.bp, sandbox.bp):
        app.register_blueprint(blueprint)
