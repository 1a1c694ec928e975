"""``/health`` (the service and its database) and ``/health/live`` (the process)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from marshmallow import Schema, fields

from ..core import errors
from ..infra.settings import VERSION
from . import runtime
from .apidoc import doc, error, ok
from .errors import RETRY_AFTER

bp = Blueprint("health", __name__)


class Health(Schema):
    """``GET /health``."""

    status = fields.Constant("ok", required=True)
    database = fields.Constant("ok", required=True, metadata={"description": "The database answers."})
    commit = fields.Constant("ok", required=True, metadata={"description": "The database can commit."})
    version = fields.String(required=True)


class Liveness(Schema):
    status = fields.Constant("ok", required=True)


@bp.get("/health")
@doc(
    summary="Service and database health",
    description=(
        "Answers 200 when the service and its database answer and the database can commit; "
        "503 (with `Retry-After`) when it does not answer, or answers but cannot commit (a "
        "standby, or a primary whose commits wait for a synchronous standby that is gone): "
        '`database` and `commit` say which (`"ok"` or `"unavailable"`), `reason` why. Answered '
        "within a second whatever the database does, from a check that runs on a connection of "
        "its own. "
        "No token needed."
    ),
    responses={
        200: ok("Healthy.", Health),
        503: error(503, "The database does not answer, or cannot commit."),
    },
    tag="health",
    public=True,
)
def get_health():
    """The database's state as the probe last saw it (``pdam/infra/probe.py``); a database
    that cannot even be reached for the first use raises a driver error (answered 503)."""
    rt = runtime.get()
    runtime.database()  # the keys open its secrets (a wrong key: 500, never a 200)
    state = rt.probe().state()
    if state.ok:
        return {"status": "ok", "database": "ok", "commit": "ok", "version": VERSION}
    response = jsonify(
        {
            "error": 503,
            "message": errors.Unavailable.__doc__,
            "reason": state.reason,
            "database": "ok" if state.answers else "unavailable",
            "commit": "ok" if state.commits else "unavailable",
            "version": VERSION,
        }
    )
    response.status_code = 503
    response.headers["Retry-After"] = RETRY_AFTER
    return response


@bp.get("/health/live")
@doc(
    summary="Liveness",
    description="The process answers; no dependency is checked (load balancers).",
    responses={200: ok("Alive.", Liveness)},
    tag="health",
    public=True,
)
def get_liveness():
    """The process answers; no dependency is checked (load balancers, benchmarks)."""
    return {"status": "ok"}
