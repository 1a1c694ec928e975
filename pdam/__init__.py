"""PDAM bill-payment service: one payment core, the PeTi and SNAP edges, operator commands.

The edges (and so Flask) are imported by ``create_app`` and ``openapi_document``, not by
importing the package: the job server imports the core without loading the web framework.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

#: The modules with which the edges register what the core asks of them (the callback
#: protocols of ``pdam.core.events``). The web app imports them with its routes; the job
#: server, which imports no edge itself, loads them when it starts (``load_edges``). An
#: edge with callbacks adds its module here.
EDGES = ("pdam.peti.callbacks",)


def load_edges() -> None:
    """Import the ``EDGES`` modules (their registrations run once, on first import)."""
    for name in EDGES:
        importlib.import_module(name)


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
