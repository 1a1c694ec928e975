"""One JSON error handler for the whole service: ``{"error": <status>, "message": ...}``.

The core's exceptions say what went wrong; this says which HTTP status that
is. No stack trace, SQL or driver text ever reaches a client. An edge with
another error format (SNAP) answers its own routes with a handler on its blueprint, and
registers it here for the unmatched URLs under its prefix (``register_format``).
"""

from __future__ import annotations

import logging
import math

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from ..core import callbacks, errors
from ..infra.port import is_transient

log = logging.getLogger(__name__)


class Unauthorized(errors.PdamError):
    """Unauthorized"""


class TooManyRequests(errors.PdamError):
    """Too Many Requests"""

    def __init__(self, wait_seconds: float):
        self.retry_after = max(1, math.ceil(wait_seconds))
        super().__init__(f"over the rate limit of this partner; retry in {self.retry_after} s")


STATUS = {
    errors.Invalid: 400,
    Unauthorized: 401,
    errors.NotAllowed: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Mismatch: 410,
    TooManyRequests: 429,
    callbacks.TooManyResends: 429,
    errors.Unavailable: 503,
}
RETRY_AFTER = "5"


def status_of(exc: errors.PdamError) -> int:
    return next((STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS), 500)


def error_body(status: int, message: str, errors: dict | None = None) -> dict:
    body = {"error": status, "message": message}
    if errors:
        body["errors"] = errors
    return body


def http_headers(exc: HTTPException) -> dict:
    """The headers of an HTTP error that go to the client (``Allow`` of a 405, ``Retry-After``)."""
    return {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after")}


def unexpected(exc: BaseException) -> int:
    """The status of an exception that is neither the core's nor an HTTP error, logged:
    503 when a dependency (the database) is unreachable, else 500."""
    if is_transient(exc):
        log.warning("dependency unavailable: %s", type(exc).__name__)
        return 503
    log.exception("unhandled error")
    return 500


def answer(exc: BaseException) -> tuple[int, str, dict | None, dict]:
    """``(status, message, errors, headers)`` for any exception."""
    if isinstance(exc, errors.PdamError):
        status = status_of(exc)
        if status == 500:
            log.error("unhandled domain error: %s", exc)
            return 500, "Internal Server Error", None, {}
        if status == 429:  # the rate limit, or a limit of the core's (resends of one callback)
            return status, exc.message, exc.errors, {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        return status, exc.message, exc.errors, {"Retry-After": RETRY_AFTER} if status == 503 else {}
    if isinstance(exc, HTTPException):
        default = type(exc).description
        message = exc.description if exc.description and exc.description != default else exc.name
        return exc.code or 500, message, None, http_headers(exc)
    if unexpected(exc) == 503:
        return 503, errors.Unavailable.__doc__, None, {"Retry-After": RETRY_AFTER}
    return 500, "Internal Server Error", None, {}


def handle(exc: BaseException):
    """The app's error handler: the ``{"error", "message"}`` body, or the format an edge
    registered for the URL's prefix when no route matched (``register_format``)."""
    if request.url_rule is None:
        for prefix, edge_handler in current_app.extensions[FORMATS].items():
            if request.path.startswith(prefix):
                return edge_handler(exc)
    status, message, details, headers = answer(exc)
    response = jsonify(error_body(status, message, details))
    response.status_code = status
    response.headers.update(headers)
    return response


FORMATS = "pdam.error_formats"


def register_format(app: Flask, prefix: str, edge_handler) -> None:
    """An edge whose errors have a body of their own answers URLs under ``prefix`` that
    match no route (404, 405) with ``edge_handler``; errors of its routes go to the handler
    it registers on its blueprint. Every other URL keeps this module's body."""
    app.extensions[FORMATS][prefix] = edge_handler


def init_app(app: Flask) -> None:
    app.extensions[FORMATS] = {}
    app.register_error_handler(Exception, handle)
