"""The OpenAPI document: valid OpenAPI 3, the same routes as the code, nothing left vague."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from pdam.peti import openapi
from tests.factories import assert_properties_typed, typed

SNAP = "/snap/"  # the SNAP edge's paths: checked by tests/snap/test_openapi.py
IGNORED_METHODS = {"HEAD", "OPTIONS"}
#: Error codes of the contract's table; each documented error response must use the error body.
ERROR_CODES = {400, 401, 403, 404, 409, 410, 413, 429, 503}


@pytest.fixture
def doc(client):
    res = client.get("/openapi.json")
    assert res.status_code == 200
    assert res.mimetype == "application/json"
    return res.json


def openapi_path(rule: str) -> str:
    """``/tagihan/<cid>`` -> ``/tagihan/{cid}``; ``<path:filename>`` -> ``{filename}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def routes(app) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in rule.methods - IGNORED_METHODS:
            out.add((openapi_path(rule.rule), method.lower()))
    return out


def documented(doc) -> set[tuple[str, str]]:
    return {(path, method) for path, ops in doc["paths"].items() for method in ops if method != "parameters"}


def test_document_is_valid_openapi_3(doc):
    assert doc["openapi"].startswith("3.")
    validate(doc)  # raises on any violation of the OpenAPI 3 schema


#: Routes that are not the partners' to call, left out of their document (and so of /docs).
NOT_FOR_PARTNERS = {("/metrics", "get")}


def test_every_route_is_documented_and_nothing_else(app, doc):
    code, docs = routes(app), documented(doc)
    assert code - docs == NOT_FOR_PARTNERS, "routes missing from /openapi.json"
    assert docs - code == set(), "documented operations that do not exist"


def test_the_partner_routes_are_there(doc):
    # A floor, so the comparison above cannot pass on an empty app.
    assert {
        ("/tagihan/{cid}", "get"),
        ("/tagihan/{cid}", "post"),
        ("/status/{cid}", "get"),
        ("/health", "get"),
        ("/openapi.json", "get"),
        ("/docs", "get"),
    } <= documented(doc)


def test_path_parameters_match_the_rules(doc):
    for path, ops in doc["paths"].items():
        names = set(re.findall(r"{([^}]+)}", path))
        for method, op in ops.items():
            params = {p["name"] for p in resolve_params(doc, op) if p["in"] == "path"}
            assert params == names, (method, path)


def resolve_params(doc, op):
    out = []
    for p in op.get("parameters", []):
        if "$ref" in p:
            p = doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
        out.append(p)
    return out


def test_bearer_security_and_public_routes(doc):
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert doc["security"] == [{"bearerAuth": []}]
    public = {(p, m) for p, ops in doc["paths"].items() for m, op in ops.items() if op.get("security") == []}
    assert {p for p, _ in public} == {
        "/health",
        "/health/live",
        "/openapi.json",
        "/docs",
        "/docs/{filename}",
        "/snap/v1.0/access-token/b2b",  # signed by the bank's key instead (tests/snap/test_openapi.py)
    }
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if (path, method) in public or path.startswith(SNAP):
                continue
            assert "401" in op["responses"], (method, path)
            if "security" not in op:  # a partner route (bearerAuth): deactivation and the rate limit
                assert "403" in op["responses"], (method, path)
                assert "429" in op["responses"] and "Retry-After" in op["responses"]["429"]["headers"]
    assert set(doc["components"]["securitySchemes"]) - {"bearerAuth"} <= {"snapAccessToken"}


def test_metrics_is_not_in_the_partners_document(app, client, doc):
    """Prometheus' route exists but is no partner's: neither /openapi.json nor /docs lists it."""
    assert "/metrics" in {rule.rule for rule in app.url_map.iter_rules()}
    assert "/metrics" not in doc["paths"]
    assert "metrics" not in client.get("/openapi.json").get_data(as_text=True).lower()


def test_error_responses_use_the_error_body(doc):
    body = doc["components"]["schemas"]["ErrorBody"]
    assert set(body["properties"]) == {"error", "message", "errors"}
    assert body["required"] == ["error", "message"]
    for path, ops in doc["paths"].items():
        if path.startswith(SNAP):  # SNAP's own error body (tests/snap/test_openapi.py)
            continue
        for method, op in ops.items():
            for code, response in op["responses"].items():
                if int(code) in ERROR_CODES and not (path == "/status/{cid}" and code == "409"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, code)


def test_contract_status_codes_per_route(doc):
    def codes(path, method):
        return set(doc["paths"][path][method]["responses"])

    assert codes("/tagihan/{cid}", "get") == {"200", "400", "401", "403", "404", "429", "503"}
    assert codes("/tagihan/{cid}", "post") == {
        "202",
        "400",
        "401",
        "403",
        "404",
        "409",
        "410",
        "413",
        "429",
        "503",
    }
    assert codes("/status/{cid}", "get") == {
        "201",
        "202",
        "206",
        "409",
        "400",
        "401",
        "403",
        "404",
        "429",
        "503",
    }
    assert codes("/health", "get") == {"200", "503"}
    if ("/tagihan/{cid}", "delete") in documented(doc):
        assert codes("/tagihan/{cid}", "delete") == {"200", "400", "401", "403", "404", "409", "429", "503"}
    if ("/audit", "get") in documented(doc):
        assert codes("/audit", "get") == {"200", "400", "401", "403", "429", "503"}


def test_headers_are_documented(doc):
    inquiry = doc["paths"]["/tagihan/{cid}"]["get"]["responses"]["200"]["headers"]
    assert {"X-Cross-Site", "X-Message", "X-Request-Id"} <= set(inquiry)
    pay = doc["paths"]["/tagihan/{cid}"]["post"]
    assert {"X-Advice-Url", "Idempotent-Replayed"} <= set(pay["responses"]["202"]["headers"])
    assert {p["name"] for p in pay["parameters"] if "name" in p} >= {"X-Async", "X-Async-Token", "cid"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for code, response in op["responses"].items():
                assert "X-Request-Id" in response["headers"], (method, path, code)


def test_webhook_callback_is_described(doc):
    callback = doc["paths"]["/tagihan/{cid}"]["post"]["callbacks"]["paymentEvents"]
    op = callback["{$request.header.X-Async}"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CallbackEvent"
    }
    event = doc["components"]["schemas"]["CallbackEvent"]
    assert set(event["properties"]["status"]["enum"]) == {
        "created",
        "accepted",
        "changed",
        "rejected",
        "reversed",
    }
    assert set(event["properties"]["data"]["properties"]) == {"cid", "pid", "pat", "mer", "inq", "pts", "nob"}
    assert {p["name"] for p in op["parameters"]} == {"X-Signature", "X-Event-Id"}


def test_request_and_response_bodies_come_from_the_route_schemas(doc):
    from pdam.peti import schemas

    components = doc["components"]["schemas"]
    assert set(components["PaymentRequest"]["properties"]) == set(schemas.PaymentRequest().fields)
    assert set(components["PaymentRequest"]["required"]) == {"inq", "amo", "per", "mer", "pid"}
    assert set(components["PaymentAccepted"]["properties"]) == set(schemas.PaymentAccepted().fields)
    assert set(components["Meta"]["properties"]) == set(schemas.Meta().fields)
    assert set(components["InquiryResponse"]["properties"]) == {"pelanggan", "tagihan"}
    # Unknown body fields are ignored, not refused: the document must allow them.
    assert components["PaymentRequest"].get("additionalProperties", True) is not False


def test_every_property_has_a_type(doc):
    """A ``fields.Function`` without a type in its metadata (or a dumped schema) would come out as ``{}``."""
    for name, schema in doc["components"]["schemas"].items():
        assert_properties_typed(schema, name)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for p in resolve_params(doc, op):
                assert typed(p["schema"]), (method, path, p["name"])


def test_document_is_built_once_per_app(app, client):
    first = client.get("/openapi.json").json
    assert app.extensions["pdam.openapi"] is not None
    assert client.get("/openapi.json").json == first


def test_build_is_deterministic():
    assert openapi.build() == openapi.build()


# -- exact: what the document allows, the service accepts (schemathesis.toml, issue #15) -------


def test_compact_date_pattern_matches_exactly_the_real_days():
    import datetime as dt

    pattern = re.compile(openapi.COMPACT_DATE_PATTERN)
    years = [0, 1, 4, 100, 400, 1900, 2000, 2023, 2024, 2100, 2400, 9996, 9999]
    for year in years:
        for month in range(0, 14):
            for day in range(0, 33):
                text = f"{year:04d}{month:02d}{day:02d}"
                try:
                    dt.date(year, month, day)
                    real = True
                except ValueError:
                    real = False
                assert bool(pattern.match(text)) is real, text


def test_status_query_allows_exactly_the_contract_lookups():
    from jsonschema import Draft4Validator

    (param,) = [
        p
        for p in openapi.build()["paths"]["/status/{cid}"]["get"]["parameters"]
        if isinstance(p, dict) and p.get("in") == "query"
    ]
    assert (param["style"], param["explode"], param["required"]) == ("form", True, True)
    ok = Draft4Validator(param["schema"]).is_valid
    nob, pid, pat, inq = "002008270001", "p-1", "A" * 20, "a" * 32
    for query in (
        {"nob": nob},
        {"pid": pid},
        {"pid": pid, "pat": pat},
        {"pid": pid, "inq": inq},
        {"nob": nob, "pid": pid, "pat": pat},
        {"pid": pid, "other": "x"},
    ):
        assert ok(query), query
    for query in (
        {},
        {"pat": pat},
        {"inq": inq},
        {"nob": nob, "pat": pat},
        {"nob": nob, "inq": inq},
        {"other": "x"},
    ):
        assert not ok(query), query


def test_periods_are_one_type_without_repeats():
    from jsonschema import Draft4Validator

    per = openapi.build()["components"]["schemas"]["PaymentRequest"]["properties"]["per"]
    ok = Draft4Validator(per).is_valid
    assert ok([202001, 202002]) and ok(["202001", "202002"])
    for bad in ([], [202001, 202001], ["202001", "202001"], [202001, "202002"], ["202013"], [99999]):
        assert not ok(bad), bad


def test_links_walk_inquiry_payment_status_reversal(doc):
    paths = doc["paths"]

    def target(link):
        path, method = link["operationRef"].removeprefix("#/paths/").rsplit("/", 1)
        return path.replace("~1", "/"), method

    inquiry = paths["/tagihan/{cid}"]["get"]["responses"]["200"]["links"]
    assert target(inquiry["pay"]) == ("/tagihan/{cid}", "post")
    assert inquiry["pay"]["requestBody"]["inq"] == "$response.header.X-Cross-Site"
    payment = paths["/tagihan/{cid}"]["post"]["responses"]["202"]["links"]
    assert target(payment["status"]) == ("/status/{cid}", "get")
    assert target(payment["reverse"]) == ("/tagihan/{cid}", "delete")
    for code in ("201", "202", "206", "409"):
        status_link = paths["/status/{cid}"]["get"]["responses"][code]["links"]["reverse"]
        assert target(status_link) == ("/tagihan/{cid}", "delete")
        assert status_link["parameters"]["query.pat"] == "$response.body#/data/pat"


def test_each_view_declares_what_it_reads_once(app):
    """``@cid_path`` and ``@arguments`` validate and document: the operation's parameters and
    request body come from them (after ``X-Request-Id``), not from a second naming in ``@doc``."""
    from pdam.peti import apidoc, schemas
    from pdam.web.apidoc import ATTRIBUTE

    def op(endpoint):
        return getattr(app.view_functions[endpoint], ATTRIBUTE)

    pay = op("tagihan.pay")
    assert pay["requestBody"]["content"]["application/json"]["schema"] is schemas.PaymentRequest
    assert pay["parameters"][:2] == ["X-Request-Id", apidoc.CID]
    assert [p["name"] for p in pay["parameters"][2:]] == ["X-Async", "X-Async-Token"]
    assert op("status.get_status")["parameters"] == [
        "X-Request-Id",
        apidoc.CID,
        {"in": "query", "schema": schemas.StatusQuery},
    ]
    assert op("audit.get_audit")["parameters"] == [
        "X-Request-Id",
        {"in": "query", "schema": schemas.AuditQuery},
    ]
    assert op("tagihan.get_bills")["parameters"] == ["X-Request-Id", apidoc.CID]


def test_the_checks_run_in_order_token_cid_then_body(client, partner_headers):
    res = client.post("/tagihan/12x", json={"amo": "not a number"}, headers=partner_headers)
    assert res.status_code == 400 and res.json["message"] == "cid must be digits only"
    assert client.post("/tagihan/12x", json={}).status_code == 401
    res = client.post("/tagihan/123", json={"amo": "not a number"}, headers=partner_headers)
    assert res.status_code == 400 and "amo" in res.json["errors"]
    res = client.get("/status/12x?pat=1", headers=partner_headers)
    assert res.status_code == 400 and res.json["message"] == "cid must be digits only"
