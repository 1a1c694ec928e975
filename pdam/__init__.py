"""PDAM bill-payment service: one payment core, the PeTi and SNAP edges, operator commands.

The edges (and so Flask) are imported by ``create_app`` and ``openapi_document``, not by
importing the package: the job server imports the core without loading the web framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def openapi_document() -> dict:
    """The API document of both edges: the PeTi routes with the SNAP routes added."""
    from .peti import openapi as peti_openapi
    from .snap import openapi as snap_openapi

    return snap_openapi.add_to(peti_openapi.build())


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings from the environment, overridden by ``config``.

    Nothing is started here: the database (embedded or not) is reached on first
    use, and logging is set up by the process that serves (gunicorn.conf.py).
    """
    from flask import Flask

    from . import cli, peti, snap, web
    from .infra import settings
    from .web import docs

    app = Flask(__name__, instance_relative_config=False)
    app.config.update(settings.load())
    app.config.update(config or {})
    app.json.sort_keys = False
    app.json.compact = True
    web.init_app(app)
    peti.init_app(app)
    snap.init_app(app)
    docs.init_app(app, openapi_document)
    cli.init_app(app)
    return app
