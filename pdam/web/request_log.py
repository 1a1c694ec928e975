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
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from ..infra import logs
from . import metrics

log = logging.getLogger("pdam.request")

HEADER = "X-Request-Id"
SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id() -> str | None:
    """The current request's id (None outside a request)."""
    return g.get("pdam_request_id")


def identify(partner_code: str) -> None:
    """The request is the partner's: its lines say so from now on."""
    logs.bind(partner=partner_code)


def _start() -> None:
    incoming = request.headers.get(HEADER, "")
    g.pdam_request_id = incoming if SANE_ID.fullmatch(incoming) else uuid.uuid4().hex
    g.pdam_request_started = time.perf_counter()
    g.pdam_log_token = logs.bind(request_id=g.pdam_request_id)


def _finish(response: Response) -> Response:
    if "pdam_request_id" not in g:  # a failure before our before_request ran
        _start()
    response.headers[HEADER] = g.pdam_request_id
    started = g.get("pdam_request_started")
    rule = request.url_rule
    record = {
        "method": request.method,
        "route": rule.rule if rule is not None else None,
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
    }
    log.info("request", extra=record)
    metrics.observe(record["route"], request.method, response.status_code, time.perf_counter() - started)
    return response


def _end(exc: BaseException | None) -> None:
    token = g.pop("pdam_log_token", None)
    if token is not None:
        logs.unbind(token)


def init_app(app: Flask) -> None:
    # First in line, so the id exists before any other hook can fail.
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
    app.teardown_request(_end)
