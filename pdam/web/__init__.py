"""What every edge shares: the request's runtime, JSON errors (and the edges' own formats
by URL prefix), request bodies, the ``Text`` field, the rate-limit check, request logs,
health, /metrics, ``@doc`` for the API document, and /openapi.json and /docs."""

from __future__ import annotations

from flask import Flask

from . import errors, health, metrics, request_log, runtime


def init_app(app: Flask) -> None:
    errors.init_app(app)
    request_log.init_app(app)
    runtime.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
