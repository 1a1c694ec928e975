"""Blueprints: one per resource, thin views (parse -> one call -> dump)."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from . import health, status, tagihan

    app.register_blueprint(health.bp)
    app.register_blueprint(tagihan.bp)
    app.register_blueprint(status.bp)
