"""What every edge's OpenAPI document shares: the error body and ``X-Request-Id``."""

from __future__ import annotations

from apispec import APISpec
from marshmallow import Schema, fields

from ..core import ids
from . import request_log


class ErrorBody(Schema):
    """Every error, in every route (pdam/web/errors.py ``error_body``)."""

    error = fields.Integer(required=True, metadata={"description": "the HTTP status code", "example": 404})
    message = fields.String(
        required=True,
        metadata={"description": "the status text or a specific message", "example": "Not Found"},
    )
    errors = fields.Dict(
        keys=fields.String(),
        metadata={"description": '400 only: the reasons per field (`{"field": ["reason", ...]}`)'},
    )


#: The ``X-Request-Id`` of every answer (request_log.py), a component of the document.
REQUEST_ID_HEADER = {
    "description": "The request's id: the caller's sane `X-Request-Id` or a new one; "
    "it is in the request's log line.",
    "required": True,
    "schema": {"type": "string", "pattern": ids.ecma(request_log.SANE_ID)},
}
#: The ``X-Request-Id`` a caller may send, a component of the document.
REQUEST_ID_PARAMETER = {
    "required": False,
    "description": "your id for this request (1-128 of `A-Za-z0-9._:-`); "
    "anything else is replaced by a new one",
    "schema": {"type": "string"},
}


def add_to(spec: APISpec) -> None:
    """Register the shared components: header and parameter ``X-Request-Id``, ``ErrorBody``."""
    spec.components.header("X-Request-Id", REQUEST_ID_HEADER)
    spec.components.parameter("X-Request-Id", "header", REQUEST_ID_PARAMETER)
    spec.components.schema("ErrorBody", schema=ErrorBody)
