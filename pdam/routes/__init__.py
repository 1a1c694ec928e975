"""Blueprints: one per resource, thin views (parse -> one call -> dump)."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from . import audit, docs, health, status, tagihan

    app.register_blueprint(health.bp)
    app.register_blueprint(tagihan.bp)
    app.register_blueprint(status.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(docs.bp)
