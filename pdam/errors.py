"""One exception tree and one JSON error handler for the whole service.

Each exception's docstring is its default message. No stack trace, SQL or
driver text ever reaches a client.
"""

from __future__ import annotations

import logging

import sqlalchemy.exc
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class PdamError(Exception):
    """Internal Server Error"""

    status = 500

    def __init__(self, message: str | None = None, errors: dict | None = None, headers=None):
        self.message = message or (self.__doc__ or "").strip()
        self.errors = errors
        self.headers = headers or {}
        super().__init__(self.message)


class BadRequest(PdamError):
    """Bad Request"""

    status = 400


class Unauthorized(PdamError):
    """Unauthorized"""

    status = 401


class Forbidden(PdamError):
    """Forbidden"""

    status = 403


class NotFound(PdamError):
    """Not Found"""

    status = 404


class Conflict(PdamError):
    """Conflict"""

    status = 409


class Gone(PdamError):
    """Gone"""

    status = 410


class ServiceUnavailable(PdamError):
    """Service temporarily unavailable, please retry"""

    status = 503

    def __init__(self, message: str | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.headers.setdefault("Retry-After", "5")


#: Driver/pool failures that pass: answered 503 so the partner retries.
UNAVAILABLE = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """A failure that can pass: connection lost, pool exhausted, deadlock, lock timeout..."""
    if isinstance(exc, UNAVAILABLE):
        return True
    import procrastinate.exceptions
    import psycopg

    return isinstance(exc, (psycopg.OperationalError, procrastinate.exceptions.ConnectorException))


def error_body(status: int, message: str, errors: dict | None = None) -> dict:
    body = {"error": status, "message": message}
    if errors:
        body["errors"] = errors
    return body


def handle(exc: BaseException):
    headers: dict = {}
    errors = None
    if isinstance(exc, PdamError):
        status, message, errors, headers = exc.status, exc.message, exc.errors, exc.headers
    elif isinstance(exc, HTTPException):
        status = exc.code or 500
        default = type(exc).description
        message = exc.description if exc.description and exc.description != default else exc.name
        headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after")}
    elif is_transient(exc):
        log.warning("dependency unavailable: %s", type(exc).__name__)
        status, message = 503, ServiceUnavailable.__doc__
        headers = {"Retry-After": "5"}
    else:
        log.exception("unhandled error")
        status, message = 500, "Internal Server Error"
    response = jsonify(error_body(status, message, errors))
    response.status_code = status
    for key, value in headers.items():
        response.headers[key] = value
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(Exception, handle)
