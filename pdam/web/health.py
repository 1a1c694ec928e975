"""``/health`` (the service and its database) and ``/health/live`` (the process)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint

from ..infra.settings import VERSION
from . import runtime

bp = Blueprint("health", __name__)


@bp.get("/health")
def get_health():
    """A database that does not answer raises a driver error (answered 503)."""
    conn = runtime.connection()
    conn.execute(sa.text("select 1"))
    conn.rollback()
    return {"status": "ok", "database": "ok", "version": VERSION}


@bp.get("/health/live")
def get_liveness():
    """The process answers; no dependency is checked (load balancers, benchmarks)."""
    return {"status": "ok"}
