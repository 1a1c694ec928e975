"""Request logs: one JSON line per request, and the ``X-Request-Id`` header.

Each request gets an id: a sane incoming ``X-Request-Id`` (1 to 128 of
``A-Z a-z 0-9 . _ : -``) is kept, anything else is replaced by a new random
one. The id goes back in the response's ``X-Request-Id`` header (error
responses included) and into the log context, so every line logged during
the request carries it (and ``partner`` once the token is verified). The
request's own line, on the ``pdam.request`` logger:

    {"time": "...", "level": "INFO", "logger": "pdam.request", "message": "request",
     "request_id": "6f1c...", "partner": "00", "method": "POST", "route": "/tagihan/<cid>",
     "status": 202, "duration_ms": 12.4}

``route`` is the URL rule (the path template), never the raw path, so ids,
query strings (``pat``, ``pid``) and tokens never reach the log; nor do
headers or bodies. ``partner`` is there once the partner is authenticated (never on a 401). ``duration_ms`` runs until
the response starts (a streamed CSV report keeps streaming after it).

It is WSGI middleware around the Flask app (``app.wsgi_app``), as ProxyFix is: every
route pays for it, so it does its work where it is cheapest. The line and the HTTP
metrics are written when the response starts (in ``start_response``, still inside the
request: the matched rule is on werkzeug's request object in the environ), with no Flask
hook and no context-local look-up.
"""

from __future__ import annotations

import logging
import random
import re
import time

from flask import Flask

from ..infra import logs
from . import metrics

log = logging.getLogger("pdam.request")

HEADER = "X-Request-Id"
SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_id() -> str:
    """A random request id (32 hex digits). Not a secret: ``random`` is enough, and it
    makes no system call."""
    return f"{random.getrandbits(128):032x}"


def identify(partner_code: str) -> None:
    """The request is the partner's: its lines say so from now on."""
    logs.bind(partner=partner_code)


class RequestLog:
    """The request's id, its log line and its HTTP metrics, around ``wsgi_app``."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if SANE_ID.fullmatch(incoming) else new_id()
        started = time.perf_counter()
        token = logs.bind(request_id=request_id)

        def start(status: str, headers: list, exc_info=None):
            headers.append((HEADER, request_id))
            seconds = time.perf_counter() - started
            request = environ.get("werkzeug.request")  # Flask's request, made for this environ
            rule = request.url_rule if request is not None else None
            route = rule.rule if rule is not None else None
            code = int(status[:3])
            method = environ["REQUEST_METHOD"]
            # A sandbox credential's answer (contract 14.1): logged as such, and left out of
            # the live metrics.
            sandbox = ("X-Sandbox", "true") in headers
            extra = {
                "method": method,
                "route": route,
                "status": code,
                "duration_ms": round(seconds * 1000, 1),
            }
            log.info("request", extra={**extra, "sandbox": True} if sandbox else extra)
            if not sandbox:
                metrics.observe(route, method, code, seconds)
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            logs.unbind(token)


def init_app(app: Flask) -> None:
    app.wsgi_app = RequestLog(app.wsgi_app)
