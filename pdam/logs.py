"""Structured request logs: one JSON line per request, and the ``X-Request-Id`` header.

Each request gets an id: a sane incoming ``X-Request-Id`` (1 to 128 of
``A-Z a-z 0-9 . _ : -``) is kept, anything else is replaced by a new random
one. The id goes back in the response's ``X-Request-Id`` header (error
responses included) and into the request's log line on the ``pdam.request``
logger:

    {"request_id": "6f1c...", "method": "POST", "route": "/tagihan/<cid>", "status": 202,
     "duration_ms": 12.4, "partner": "00"}

``route`` is the URL rule (the path template), never the raw path, so ids,
query strings (``pat``, ``pid``) and tokens never reach the log; nor do
headers or bodies. ``partner`` is the partner code of an authenticated request
(absent otherwise, and on a 401). ``duration_ms`` runs until the response
starts (a streamed CSV report keeps streaming after it).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

log = logging.getLogger("pdam.request")

HEADER = "X-Request-Id"
SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id() -> str | None:
    """The current request's id (None outside a request)."""
    return g.get("pdam_request_id")


def _start() -> None:
    incoming = request.headers.get(HEADER, "")
    g.pdam_request_id = incoming if SANE_ID.match(incoming) else uuid.uuid4().hex
    g.pdam_request_started = time.perf_counter()


def _record(response: Response) -> dict:
    started = g.get("pdam_request_started")
    rule = request.url_rule
    record = {
        "request_id": g.get("pdam_request_id"),
        "method": request.method,
        "route": rule.rule if rule is not None else None,
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
    }
    partner = g.get("pdam_partner")
    if partner is not None and response.status_code != 401:
        record["partner"] = partner.code
    return record


def _finish(response: Response) -> Response:
    if "pdam_request_id" not in g:  # a failure before our before_request ran
        _start()
    response.headers[HEADER] = g.pdam_request_id
    log.info(json.dumps(_record(response), separators=(",", ":")))
    return response


def init_app(app: Flask) -> None:
    # First in line, so the id exists before any other hook can fail.
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
