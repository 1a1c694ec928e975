"""What every edge shares: the request's runtime, JSON errors (and the edges' own formats
by URL prefix), request bodies, the ``Text`` field, the rate-limit check, request logs,
partner tokens on flask-jwt-extended (``partner_tokens``), health, /metrics, ``@doc`` for the API document, and /openapi.json and /docs.

Importing the package loads no Flask (the job server renders PeTi's callbacks with schemas
that use ``web.fields``); ``init_app`` imports the modules that need it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    from . import errors, health, metrics, partner_tokens, request_log, runtime

    errors.init_app(app)
    partner_tokens.init_app(app)
    request_log.init_app(app)
    runtime.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
