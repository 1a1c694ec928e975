"""One JSON error handler for the whole service: ``{"error": <status>, "message": ...}``.

The core's exceptions say what went wrong; this says which HTTP status that
is. No stack trace, SQL or driver text ever reaches a client. (An edge with
another error format, such as SNAP, answers its own routes itself.)
"""

from __future__ import annotations

import logging
import math

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from ..core import errors
from ..infra.db import is_transient

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


def answer(exc: BaseException) -> tuple[int, str, dict | None, dict]:
    """``(status, message, errors, headers)`` for any exception."""
    if isinstance(exc, errors.PdamError):
        status = status_of(exc)
        if status == 500:
            log.error("unhandled domain error: %s", exc)
            return 500, "Internal Server Error", None, {}
        if isinstance(exc, TooManyRequests):
            return status, exc.message, exc.errors, {"Retry-After": str(exc.retry_after)}
        return status, exc.message, exc.errors, {"Retry-After": RETRY_AFTER} if status == 503 else {}
    if isinstance(exc, HTTPException):
        default = type(exc).description
        message = exc.description if exc.description and exc.description != default else exc.name
        headers = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after")}
        return exc.code or 500, message, None, headers
    if is_transient(exc):
        log.warning("dependency unavailable: %s", type(exc).__name__)
        return 503, errors.Unavailable.__doc__, None, {"Retry-After": RETRY_AFTER}
    log.exception("unhandled error")
    return 500, "Internal Server Error", None, {}


def handle(exc: BaseException):
    status, message, details, headers = answer(exc)
    response = jsonify(error_body(status, message, details))
    response.status_code = status
    response.headers.update(headers)
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(Exception, handle)
