"""``/health`` (the service and its database) and ``/health/live`` (the process)."""

from __future__ import annotations

from flask import Blueprint
from marshmallow import Schema, fields

from ..infra import port
from ..infra.port import Plan
from ..infra.settings import VERSION
from ..infra.sql import queries
from . import runtime
from .apidoc import doc, error, ok

bp = Blueprint("health", __name__)
Q = queries("health")


class Health(Schema):
    """``GET /health``."""

    status = fields.Constant("ok", required=True)
    database = fields.Constant("ok", required=True)
    version = fields.String(required=True)


class Liveness(Schema):
    status = fields.Constant("ok", required=True)


@port.plan
def ping(db: port.Db) -> Plan[int]:
    """One round trip to the database (through the port, as every statement)."""
    return (yield port.scalar(Q["ping"]))


@bp.get("/health")
@doc(
    summary="Service and database health",
    description="Answers 200 when the service and its database answer; no token needed.",
    responses={200: ok("Healthy.", Health), 503: error(503, "The database does not answer.")},
    tag="health",
    public=True,
)
def get_health():
    """A database that does not answer raises a driver error (answered 503)."""
    conn = runtime.connection()
    ping(conn)
    conn.rollback()
    return {"status": "ok", "database": "ok", "version": VERSION}


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
