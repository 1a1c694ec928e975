"""Contract section 2: every error is the JSON body, whatever raised it."""

from __future__ import annotations

import pytest
from werkzeug import exceptions as wz

ALL_HTTP_ERRORS = sorted(
    {cls for cls in wz.default_exceptions.values() if cls.code and cls.code >= 400},
    key=lambda c: c.code,
)


@pytest.fixture
def raising_app(make_app):
    app = make_app()

    @app.get("/_raise/<int:code>")
    def _raise(code):
        raise wz.default_exceptions[code]()

    @app.get("/_boom")
    def _boom():
        raise RuntimeError("secret detail: password=hunter2 at /srv/app.py line 3")

    return app


@pytest.mark.parametrize("cls", ALL_HTTP_ERRORS, ids=lambda c: str(c.code))
def test_every_werkzeug_error_is_json(raising_app, cls):
    res = raising_app.test_client().get(f"/_raise/{cls.code}")
    assert res.status_code == cls.code
    assert res.is_json
    assert res.json == {"error": cls.code, "message": cls().name}


def test_unknown_route(client):
    res = client.get("/nope")
    assert res.status_code == 404
    assert res.json == {"error": 404, "message": "Not Found"}


def test_method_not_allowed_keeps_allow_header(client):
    res = client.put("/health")
    assert res.status_code == 405
    assert res.json == {"error": 405, "message": "Method Not Allowed"}
    assert "GET" in res.headers["Allow"]


def test_body_too_large(client, partner_headers):
    res = client.post(
        "/tagihan/010101010101",
        data=b"{" + b" " * 20000 + b"}",
        headers={**partner_headers, "Content-Type": "application/json"},
    )
    assert res.status_code == 413
    assert res.json == {"error": 413, "message": "Request Entity Too Large"}


def test_unexpected_exception_is_500_without_details(raising_app):
    app = raising_app
    app.testing = False
    app.config["PROPAGATE_EXCEPTIONS"] = False
    res = app.test_client().get("/_boom")
    assert res.status_code == 500
    assert res.json == {"error": 500, "message": "Internal Server Error"}
    assert b"hunter2" not in res.data and b"Traceback" not in res.data


def test_database_down_is_fast_503(make_app, database_url):
    import time

    from sqlalchemy.engine import make_url

    # A server that refuses connections: nothing listens on this port.
    down = make_url("postgresql://postgres@127.0.0.1:1/pdam").render_as_string(hide_password=False)
    app = make_app(DATABASE_URL=down)
    client = app.test_client()
    started = time.monotonic()
    res = client.get("/health")
    assert res.status_code == 503
    assert res.json == {"error": 503, "message": "Service temporarily unavailable, please retry"}
    assert res.headers["Retry-After"]
    res = client.get("/tagihan/010101010101", headers={"Authorization": "Bearer a.b.c"})
    assert res.status_code in (401, 503)
    assert time.monotonic() - started < 5
