"""The SNAP routes in /openapi.json: their own tag and security scheme, exact schemas and
response codes, the same routes as the code."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from pdam import openapi_document
from tests.factories import assert_properties_typed

SNAP = "/snap/"
PATHS = {
    "/snap/v1.0/access-token/b2b": "73",
    "/snap/v1.0/transfer-va/inquiry": "24",
    "/snap/v1.0/transfer-va/payment": "25",
    "/snap/v1.0/transfer-va/status": "26",
}


@pytest.fixture
def doc(client):
    res = client.get("/openapi.json")
    assert res.status_code == 200
    return res.json


def test_document_is_valid_and_covers_both_edges(doc):
    validate(doc)
    assert "/tagihan/{cid}" in doc["paths"]
    assert {p for p in doc["paths"] if p.startswith(SNAP)} == set(PATHS)
    assert doc == openapi_document()  # what create_app serves is the composed document


def test_every_snap_route_is_documented_and_nothing_else(app, doc):
    code = {
        (r.rule, m.lower())
        for r in app.url_map.iter_rules()
        if r.rule.startswith(SNAP)
        for m in r.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(p, m) for p, ops in doc["paths"].items() if p.startswith(SNAP) for m in ops}
    assert code == documented == {(p, "post") for p in PATHS}


def test_tag_and_security_scheme(doc):
    assert "snap" in {t["name"] for t in doc["tags"]}
    assert doc["components"]["securitySchemes"]["snapAccessToken"]["type"] == "http"
    assert doc["components"]["securitySchemes"]["snapAccessToken"]["scheme"] == "bearer"
    assert doc["components"]["securitySchemes"]["bearerAuth"]["bearerFormat"] == "JWT"  # PeTi's stays
    for path in PATHS:
        op = doc["paths"][path]["post"]
        assert op["tags"] == ["snap"]
        expected = [] if path.endswith("b2b") else [{"snapAccessToken": []}]
        assert op["security"] == expected, path


def test_headers_are_documented(doc):
    def headers(path):
        return {p["name"] for p in doc["paths"][path]["post"]["parameters"] if "name" in p}

    assert headers("/snap/v1.0/access-token/b2b") == {"X-TIMESTAMP", "X-CLIENT-KEY", "X-SIGNATURE"}
    for path in list(PATHS)[1:]:
        assert headers(path) == {"X-TIMESTAMP", "X-SIGNATURE", "X-PARTNER-ID", "X-EXTERNAL-ID", "CHANNEL-ID"}
        for response in doc["paths"][path]["post"]["responses"].values():
            assert "X-Request-Id" in response["headers"]
    # The standard's mandatory response headers: X-TIMESTAMP on every answer, and the
    # token answer's X-CLIENT-KEY.
    for path in PATHS:
        for status, response in doc["paths"][path]["post"]["responses"].items():
            assert response["headers"]["X-TIMESTAMP"]["required"] is True, (path, status)
            token_ok = path.endswith("b2b") and status == "200"
            assert ("X-CLIENT-KEY" in response["headers"]) == token_ok, (path, status)


def _codes(response) -> list[str]:
    return response["content"]["application/json"]["schema"]["allOf"][1]["properties"]["responseCode"]["enum"]


def test_error_responses_name_their_exact_codes(doc):
    for path, service in PATHS.items():
        responses = doc["paths"][path]["post"]["responses"]
        for status, response in responses.items():
            if status == "200":
                continue
            codes = _codes(response)
            assert codes and all(c.startswith(status + service) for c in codes), (path, status, codes)
    inquiry = doc["paths"]["/snap/v1.0/transfer-va/inquiry"]["post"]["responses"]
    assert _codes(inquiry["404"]) == ["4042412", "4042413", "4042414", "4042418"]
    payment = doc["paths"]["/snap/v1.0/transfer-va/payment"]["post"]["responses"]
    assert _codes(payment["404"]) == ["4042512", "4042513", "4042514", "4042518", "4042519"]
    token = doc["paths"]["/snap/v1.0/access-token/b2b"]["post"]["responses"]
    assert set(token) == {"200", "400", "401", "413", "429", "500"}
    assert set(payment) == {"200", "400", "401", "404", "409", "413", "429", "500"}


def test_schemas_come_from_the_route_schemas(doc):
    from pdam.snap import schemas

    components = doc["components"]["schemas"]
    assert set(components["SnapPaymentRequest"]["properties"]) == {
        f.data_key or n for n, f in schemas.PaymentRequest().fields.items()
    }
    assert set(components["SnapPaymentRequest"]["required"]) == {
        "partnerServiceId",
        "customerNo",
        "virtualAccountNo",
        "paymentRequestId",
        "paidAmount",
    }
    # Well-formed amounts: cents other than .00 are a documented 404xx13, not a format error.
    assert components["SnapMoney"]["properties"]["value"]["pattern"] == r"^(0|[1-9][0-9]{0,14})\.[0-9]{2}$"
    assert components["SnapInquiryResponse"]["required"] == [
        "responseCode",
        "responseMessage",
        "virtualAccountData",
    ]
    assert set(components["SnapInquiryData"]["properties"]) == set(schemas.InquiryData().fields)


def test_every_property_has_a_type(doc):
    for name, schema in doc["components"]["schemas"].items():
        if name.startswith("Snap"):
            assert_properties_typed(schema, name)


def test_real_answers_match_the_document(bank, bills, doc):
    """Spot check, the fuzz suite does it at scale: a success of each route validates."""
    import jsonschema

    def schema_of(path, status):
        ref = doc["paths"][path]["post"]["responses"][status]["content"]["application/json"]["schema"]
        return {**ref, "components": doc["components"]}

    def check(path, res):
        resolver_doc = {"components": doc["components"], **schema_of(path, str(res.status_code))}
        jsonschema.validate(res.json, resolver_doc)

    check("/snap/v1.0/access-token/b2b", bank.request_token())
    check("/snap/v1.0/transfer-va/inquiry", bank.inquiry())
    check("/snap/v1.0/transfer-va/payment", bank.pay())
    check("/snap/v1.0/transfer-va/status", bank.status())
    check("/snap/v1.0/transfer-va/payment", bank.pay(amount="1.00", ref="x"))
    assert re.fullmatch(r"[0-9]{7}", bank.status(ref="none").json["responseCode"])
