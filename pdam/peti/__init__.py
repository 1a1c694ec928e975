"""The PeTi edge: partners' JWT, ``/tagihan``, ``/status``, ``/audit``, callbacks."""

from __future__ import annotations

from flask import Flask

from . import audit, auth, bills, status


def init_app(app: Flask) -> None:
    auth.init_app(app)
    for blueprint in (bills.bp, status.bp, audit.bp):
        app.register_blueprint(blueprint)
