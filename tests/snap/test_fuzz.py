"""Contract fuzzing of the SNAP routes: Schemathesis cases against /openapi.json and the app.

Like the PeTi suite (its fuzz module), every SNAP operation gets at least ``MIN_CASES``
generated cases, valid and invalid, then Schemathesis' coverage-phase cases, and every
response goes through all of Schemathesis' checks (no 5xx; status, content type, headers
and body as documented; valid data accepted, invalid data rejected; the access token not
ignored; other methods 405).

SNAP requests are signed, so each case is signed here, for the body Schemathesis sends
(``json.dumps`` of the case's body: the minified form is its compact serialisation), with
a fresh ``X-EXTERNAL-ID``. A case whose headers were generated invalid keeps them (they
are what it tests); every other case gets valid headers, so its body reaches the checks
behind them. About half of the valid cases are steered to real data (this client's VA, a
customer with bills, a live inquiry's id and total, a known payment), so successes are
exercised too.
"""

from __future__ import annotations

import collections
import io
import itertools
import json
import os
import re

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.core.parameters import ParameterLocation

from pdam import create_app, openapi_document
from tests.conftest import CSV_HEADER, ISSUER, url_for_database
from tests.factories import SEALER, fuzz_cases, fuzz_coverage, only_failed

from .conftest import Bank, compact, hmac_signature, register, rsa_signature, wib_timestamp

# One process runs the whole module under `make test` (pytest-xdist, --dist loadgroup):
# test_valid_requests_also_succeeded reads what test_operation recorded in this process.
pytestmark = pytest.mark.xdist_group("snap-fuzz")

MIN_CASES = 100
DOCUMENT = openapi_document()
OPERATIONS = [
    (path, method) for path, ops in DOCUMENT["paths"].items() if path.startswith("/snap/") for method in ops
]
PSID = "   12345"
CONFIG = {
    "generation": {"with-security-parameters": False},
    "checks": {
        # 404: a valid body naming data that does not exist (or no longer: a paid bill, an expired
        # inquiry), 409: an X-EXTERNAL-ID of this day reused - states, not schema rules.
        "positive_data_acceptance": {"expected-statuses": ["2xx", "404", "409"]},
        "negative_data_rejection": {"expected-statuses": ["400", "401", "404", "409", "413"]},
    },
}
_external = itertools.count(1)


class World:
    """One partner with SNAP credentials; customers with bills; live inquiries; payments."""

    def __init__(self, app, key, secret):
        self.bank = Bank(app, "fuzz-bank", key, secret, "00")
        self.customers = [f"77{i:08d}" for i in range(600)]
        self.paid: list[tuple[str, str]] = []  # (cid, paymentRequestId)
        self.refs = itertools.count(1)

    def fresh(self) -> str:
        return self.customers.pop()

    def inquire(self, cid: str) -> tuple[str, dict]:
        ref = f"fz-{next(self.refs)}"
        res = self.bank.inquiry(cid=cid, ref=ref)
        assert res.status_code == 200, res.json
        return ref, res.json["virtualAccountData"]


@pytest.fixture(scope="module")
def fuzz(server_url, template_db, keys, rsa_keys, tmp_path_factory):
    import psycopg

    from pdam.core import billing, partners
    from pdam.web import runtime

    name = f"pdam_snapfuzz_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}" template "{template_db}"')
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url_for_database(server_url, name),
            "BILLING_DATABASE_URL": None,
            "PDAM_JWT_ALGORITHM": "ES256",
            "PDAM_JWT_PUBLIC_KEY": keys["ES256"]["public"],
            "JWT_ISSUER": ISSUER,
            "DB_POOL_SIZE": 4,
            "PARTNER_RATE_LIMIT": 0,  # a fuzz run is a flood by design
        }
    )
    with app.app_context(), runtime.transaction() as conn:
        partners.add(conn, "00", "FUZZBANK", SEALER)
    secret = register(app, rsa_keys[0], "00", "fuzz-bank", "12345", tmp_path_factory.mktemp("fuzzkey"))
    world = World(app, rsa_keys[0], secret)
    lines = "".join(
        f"{cid},Pelanggan {cid},Jl. Uji,10R,b{cid}{p},{p},0,10,10,40000,8000,800,0,0\n"
        for cid in world.customers
        for p in ("202001", "202002")
    )
    with app.app_context(), runtime.ledger_transaction() as conn:
        billing.import_rows(conn, billing.parse_csv(io.StringIO(CSV_HEADER + lines)))
    for _ in range(3):  # payments to ask the status of
        cid = world.fresh()
        ref, data = world.inquire(cid)
        assert world.bank.pay(cid=cid, ref=ref, amount=data["totalAmount"]["value"]).status_code == 200
        world.paid.append((cid, ref))
    schema = schemathesis.openapi.from_wsgi(
        "/openapi.json", app, config=schemathesis.Config.from_dict(CONFIG)
    )
    statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    yield app, world, schema, statuses
    app.extensions["pdam.runtime"].dispose()
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


# -- valid cases: the rules JSON Schema cannot say, and steering to real data -------------------

TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T")


def _repair(case) -> None:
    body = case.body
    if not isinstance(body, dict):
        return
    if "partnerServiceId" in body and "customerNo" in body:
        body["virtualAccountNo"] = body["partnerServiceId"] + body["customerNo"]
    for name in ("trxDateInit", "trxDateTime"):
        if isinstance(body.get(name), str):  # the pattern allows a month 13 or a day 32
            body[name] = "2026-11-30T09:15:00+07:00"


def _steer(case, data, world: World) -> None:
    body, path = case.body, case.operation.path
    if not isinstance(body, dict) or path.endswith("b2b") or not data.draw(st.booleans(), label="steer"):
        return
    va = {"partnerServiceId": PSID}
    if path.endswith("inquiry"):
        cid = data.draw(st.sampled_from(world.customers[:50] + ["999999", world.paid[0][0]]), label="cid")
        body.update(va, customerNo=cid, virtualAccountNo=PSID + cid)
    elif path.endswith("payment"):
        cid = world.fresh()
        ref, shown = world.inquire(cid)
        body.update(va, customerNo=cid, virtualAccountNo=PSID + cid, paymentRequestId=ref)
        if data.draw(st.booleans(), label="exact amount"):
            body["paidAmount"] = shown["totalAmount"]
    else:
        cid, ref = data.draw(st.sampled_from(world.paid), label="payment")
        body.update(va, customerNo=cid, virtualAccountNo=PSID + cid)
        # Either id names the payment (its paymentRequestId is the inquiryRequestId).
        names = data.draw(
            st.sampled_from(
                [("paymentRequestId",), ("inquiryRequestId",), ("inquiryRequestId", "paymentRequestId")]
            ),
            label="ids",
        )
        body.pop("inquiryRequestId", None)
        body.pop("paymentRequestId", None)
        body.update(dict.fromkeys(names, ref))


def _sent_body(case) -> bytes:
    """The body bytes Schemathesis will send for ``case`` (its own serialisation: werkzeug's
    ``json.dumps`` for JSON, the bytes themselves for a raw body)."""
    from schemathesis.transport.wsgi import WSGI_TRANSPORT

    kwargs = WSGI_TRANSPORT.serialize_case(case)
    if "json" in kwargs:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data", b"")
    return data.encode() if isinstance(data, str) else bytes(data or b"")


def _minified(raw: bytes) -> bytes:
    """The minified form, computed independently: the compact serialisation of what ``json.dumps``
    wrote (same key order and escapes, no whitespace); a body that is not JSON as it is."""
    try:
        return compact(json.loads(raw))
    except ValueError:
        return raw


def _headers(case, world: World) -> dict:
    """Valid signed headers for what the case will send; a case whose headers are the
    invalid part keeps its own."""
    bank = world.bank
    minified = _minified(_sent_body(case))
    negative_headers = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
    ts = wib_timestamp()
    if case.operation.path.endswith("b2b"):
        valid = {
            "X-TIMESTAMP": ts,
            "X-CLIENT-KEY": bank.client_id,
            "X-SIGNATURE": rsa_signature(bank.key, bank.client_id, ts),
        }
    else:
        valid = {
            "X-TIMESTAMP": ts,
            "X-PARTNER-ID": bank.client_id,
            "X-EXTERNAL-ID": f"fz{next(_external)}",
            "CHANNEL-ID": "95221",
            "X-SIGNATURE": hmac_signature(bank.secret, "POST", case.operation.path, bank.token, minified, ts),
        }
    auth = {} if case.operation.path.endswith("b2b") else {"Authorization": f"Bearer {bank.token}"}
    if negative_headers:
        return auth  # the generated (invalid) SNAP headers stay as they are
    case.headers = {**(case.headers or {}), **valid}
    return auth


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_operation(fuzz, path, method):
    app, world, schema, statuses = fuzz
    label = f"{method.upper()} {path}"

    def steer(case, data):
        _repair(case)
        _steer(case, data, world)

    count = fuzz_cases(
        schema[path][method], MIN_CASES, steer, lambda case: _headers(case, world), statuses[label]
    )
    assert count >= MIN_CASES, f"{label}: only {count} cases"
    print(label, dict(statuses[label]))


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_coverage_phase(fuzz, path, method):
    _, world, schema, _ = fuzz
    count = fuzz_coverage(schema[path][method], _repair, lambda case: _headers(case, world))
    assert count > 0
    print(method.upper(), path, "coverage cases:", count)


def test_valid_requests_also_succeeded(fuzz):
    _, _, _, statuses = fuzz
    if not statuses:
        pytest.skip("run together with test_operation")
    assert only_failed(statuses) == set(), dict(statuses)
