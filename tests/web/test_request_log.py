"""Request logs (pdam/web/request_log.py): one JSON line per request, X-Request-Id, no secrets."""

from __future__ import annotations

import importlib
import json
import logging

import pytest
import urllib3

from pdam.infra import logs
from tests.factories import CID, body
from tests.fixtures.network import served

LOGGER = "pdam.request"
#: What every line has, besides the record's own fields.
STANDARD = {"time", "level", "logger", "message"}


def as_the_service_logs(caplog) -> None:
    """Make ``caplog.text`` the lines the processes write: the JSON formatter and the
    context filter of ``pdam.infra.logs.DICT_CONFIG``, applied as each record is logged."""
    spec = dict(logs.DICT_CONFIG["formatters"]["json"])
    module, _, name = spec.pop("()").rpartition(".")
    caplog.handler.setFormatter(getattr(importlib.import_module(module), name)(**spec))
    for name in logs.DICT_CONFIG["handlers"]["stderr"]["filters"]:
        caplog.handler.addFilter(logs.DICT_CONFIG["filters"][name]["()"]())


def json_lines(caplog) -> list[dict]:
    return [json.loads(line) for line in caplog.text.splitlines()]


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    as_the_service_logs(caplog)

    def read() -> list[dict]:
        return [line for line in json_lines(caplog) if line["logger"] == LOGGER]

    return read


def test_one_line_per_request_with_the_route_template(client, partner_headers, seed_bills, lines):
    seed_bills.simple(CID, ["202001"])
    res = client.get(f"/tagihan/{CID}", headers=partner_headers)
    assert res.status_code == 200
    [line] = lines()
    assert set(line) == STANDARD | {"request_id", "method", "route", "status", "duration_ms", "partner"}
    assert line["logger"] == LOGGER and line["level"] == "INFO" and line["message"] == "request"
    assert line["method"] == "GET"
    assert line["route"] == "/tagihan/<cid>"  # the rule, never the customer number
    assert line["status"] == 200
    assert line["partner"] == "00"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["request_id"] == res.headers["X-Request-Id"]


def test_request_ids_are_generated_and_unique(client, lines):
    ids = {client.get("/health/live").headers["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5
    assert all(len(i) == 32 for i in ids)
    assert {line["request_id"] for line in lines()} == ids


@pytest.mark.parametrize("incoming", ["abc-123", "trace:1.2_3", "x" * 128])
def test_a_sane_incoming_request_id_is_kept(client, lines, incoming):
    res = client.get("/health/live", headers={"X-Request-Id": incoming})
    assert res.headers["X-Request-Id"] == incoming
    assert lines()[-1]["request_id"] == incoming


@pytest.mark.parametrize("incoming", ["", "x" * 129, "has space", "new\\nline", 'a"b', "<script>", "ü"])
def test_an_odd_incoming_request_id_is_replaced(client, lines, incoming):
    res = client.get("/health/live", headers={"X-Request-Id": incoming})
    assert res.headers["X-Request-Id"] != incoming
    assert len(res.headers["X-Request-Id"]) == 32
    assert lines()[-1]["request_id"] == res.headers["X-Request-Id"]


def test_no_partner_when_not_authenticated(client, lines):
    assert client.get("/tagihan/123").status_code == 401
    [line] = lines()
    assert "partner" not in line
    assert line["status"] == 401
    assert line["route"] == "/tagihan/<cid>"


def test_unknown_route_is_logged_without_a_rule(client, lines):
    res = client.get("/nope/123456")
    assert res.status_code == 404
    [line] = lines()
    assert line["route"] is None and line["status"] == 404
    assert res.headers["X-Request-Id"] == line["request_id"]


def test_error_responses_carry_the_request_id(make_app, partner_headers, lines):
    app = make_app(MAX_CONTENT_LENGTH=100)

    @app.get("/boom")
    def boom():  # an unexpected error: the one JSON handler answers 500
        raise RuntimeError("kaboom")

    client = app.test_client()
    cases = [
        client.get("/nope"),  # 404, no route
        client.put(f"/tagihan/{CID}"),  # 405
        client.get(f"/tagihan/{CID}"),  # 401 (refused by the token check)
        client.get("/tagihan/12ab", headers=partner_headers),  # 400
        client.post(
            f"/tagihan/{CID}", data="x" * 1000, headers=partner_headers, content_type="application/json"
        ),  # 413
        client.get("/boom", headers={"X-Request-Id": "req-500"}),  # 500
    ]
    assert [r.status_code for r in cases] == [404, 405, 401, 400, 413, 500]
    for res in cases:
        assert res.json["error"] == res.status_code
        assert res.headers["X-Request-Id"]
    assert cases[-1].headers["X-Request-Id"] == "req-500"
    logged = lines()
    assert [line["status"] for line in logged] == [404, 405, 401, 400, 413, 500]
    assert [line["request_id"] for line in logged] == [r.headers["X-Request-Id"] for r in cases]


def test_no_token_body_or_ids_in_any_log(client, partner_headers, seed_bills, inquire, caplog):
    caplog.set_level(logging.DEBUG)
    as_the_service_logs(caplog)
    seed_bills.simple(CID, ["202001"])
    inq, token = inquire(CID, partner_headers)
    amo = inq["tagihan"][0]["biaya"]["jumlah"]
    pay = client.post(
        f"/tagihan/{CID}",
        json=body(token, pid="secret-pid-777", amo=amo, per=[202001]),
        headers=partner_headers,
    )
    assert pay.status_code == 202, pay.json
    data = pay.json["data"]
    client.get(f"/status/{CID}?pid=secret-pid-777&pat={data['pat']}", headers=partner_headers)
    client.get(f"/tagihan/{CID}", headers={"Authorization": partner_headers["Authorization"] + "x"})  # 401
    text = caplog.text
    assert caplog.records
    jwt = partner_headers["Authorization"].split()[1]
    for secret in (jwt, *jwt.split("."), token, data["pat"], "secret-pid-777", CID):
        assert secret not in text, secret
    logged = {line.get("route"): line for line in json_lines(caplog) if line.get("logger") == LOGGER}
    # The receipt number is no secret: it is the context that ties a request to its payment.
    assert logged["/status/<cid>"]["nob"] == data["nob"]


def test_an_unexpected_database_error_logs_no_token(
    client, partner_headers, seed_bills, inquire, run_sql, caplog
):
    """The 500's traceback names the failed statement; its parameters (the payment row keeps the
    request's Authorization for the callbacks) must not be in it."""
    caplog.set_level(logging.DEBUG)
    as_the_service_logs(caplog)
    seed_bills.simple(CID, ["202001"])
    inq, token = inquire(CID, partner_headers)
    run_sql(
        "create function refuse() returns trigger language plpgsql as $$"
        " begin raise exception 'refused by a test trigger'; end $$;"
        " create trigger refuse before insert on payment for each row execute function refuse()"
    )
    res = client.post(
        f"/tagihan/{CID}",
        json=body(token, pid="p-500", amo=inq["tagihan"][0]["biaya"]["jumlah"], per=[202001]),
        headers={**partner_headers, "X-Async": "http://127.0.0.1:9/hook", "X-Async-Token": "cb-secret"},
    )
    assert res.status_code == 500
    assert res.json == {"error": 500, "message": "Internal Server Error"}
    assert "refused by a test trigger" in caplog.text  # the error is logged...
    jwt = partner_headers["Authorization"].split()[1]
    for secret in (jwt, "cb-secret", token, "p-500"):  # ...without the statement's parameters
        assert secret not in caplog.text, secret


def test_gunicorn_writes_one_json_line_per_request_and_no_raw_path(database_url, app_config, tmp_path):
    """Under the Procfile's gunicorn: the app's line is the only one a request writes;
    gunicorn's access line (the raw path and query string: a status query holds the
    payment's pat) is never written."""
    env = {
        "DATABASE_URL": database_url,
        "JWT_PUBLIC_KEY": app_config["PDAM_JWT_PUBLIC_KEY"],
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
    }
    stderr = tmp_path / "gunicorn.log"
    pat = "A1B2C3D4E5F6A7B8C9D0"
    with served(env, workers=1, log_path=stderr) as url:
        res = urllib3.request(
            "GET", f"{url}/status/{CID}?pid=evid-secret-1&pat={pat}", timeout=5, retries=False
        )
        assert res.status == 401
    text = stderr.read_text()
    assert pat not in text and "evid-secret-1" not in text and CID not in text
    lines = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    assert not [line for line in lines if line["logger"] == "gunicorn.access"]
    requests = [line for line in lines if line["logger"] == LOGGER]
    assert [line["route"] for line in requests][-1] == "/status/<cid>"
    assert requests[-1]["status"] == 401
