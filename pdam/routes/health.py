from __future__ import annotations

from flask import Blueprint

from .. import db, health

bp = Blueprint("health", __name__)


@bp.get("/health")
def get_health():
    return health.check(db.connection())


@bp.get("/health/live")
def get_liveness():
    """The process answers; no dependency is checked (load balancers, benchmarks)."""
    return {"status": "ok"}
