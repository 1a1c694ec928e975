"""PDAM bill-payment service: the PeTi partner interface."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from flask import Flask

__version__ = "0.1.0"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings from the environment, overridden by ``config``."""
    from . import auth, cli, db, errors, logs, queue
    from . import config as config_module
    from .routes import register_blueprints

    app = Flask(__name__, instance_relative_config=False)
    app.config.update(config_module.load())
    app.config.update(config or {})
    app.json.sort_keys = False
    app.json.compact = True
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Procrastinate's per-call INFO lines ("Adding tasks...", "Deferred 1 job") on every
    # command and payment: noise, and a log write on the hot path.
    for noisy in ("procrastinate.blueprints", "procrastinate.jobs"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    errors.init_app(app)
    logs.init_app(app)
    db.init_app(app)
    queue.init_app(app)
    auth.init_app(app)
    register_blueprints(app)
    cli.init_app(app)
    return app
