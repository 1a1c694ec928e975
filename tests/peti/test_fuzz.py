"""Contract fuzzing: Schemathesis-generated requests against the app and /openapi.json.

Every operation of the document gets at least ``MIN_CASES`` generated cases,
valid and invalid ones, sent with a valid partner token to an app whose
database holds customers, bills and payments in every state (tests/world.py).
About half of the valid cases are steered to real data (a seeded customer, a
fresh inquiry's token and periods, a known payment's ``nob``/``pid``/``pat``),
so successful answers are exercised too, not only 404s. Every response goes
through all of Schemathesis' checks: no 5xx; status code, content type,
headers and body as documented; valid data accepted and invalid data
rejected; the token not ignored; other methods refused with 405. Then
Schemathesis' coverage phase adds its deterministic boundary cases (missing,
empty, too long, wrong-typed parameters and bodies) under the same checks.

The database lives for the whole module (one app, one database) so the run
stays short; ``FUZZ_RANDOM=1`` draws new examples instead of the fixed ones.
"""

from __future__ import annotations

import collections
import datetime as dt

import pytest
import schemathesis
from hypothesis import strategies as st

from pdam.core.payments import WIB
from pdam.peti import openapi
from tests import world as world_module
from tests.factories import fuzz_cases, fuzz_coverage, issue, only_failed

# One process runs the whole module under `make test` (pytest-xdist, --dist loadgroup):
# test_valid_requests_also_succeeded reads what test_operation recorded in this process.
pytestmark = pytest.mark.xdist_group("peti-fuzz")

MIN_CASES = 100
DOCUMENT = openapi.build()
OPERATIONS = [(path, method) for path, ops in DOCUMENT["paths"].items() for method in ops]
CONFIG = {
    "generation": {
        # The token is ours (a real one), not a generated Authorization header.
        "with-security-parameters": False,
    },
    "checks": {
        # 410: the inquiry exists but the payment does not match it - a state, not a schema, rule.
        "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "410"]},
    },
}


@pytest.fixture(scope="module")
def fuzz(module_app, keys):
    """One migrated database and app for the whole module, populated by tests/world.py."""
    app = module_app
    world = world_module.build(app, keys["ES256"]["private"], pool=400)
    # Callbacks of A to resend (10 events: at most 10 resends of one an hour), and A's sandbox
    # token for POST /sandbox/reset (a live token has no sandbox: 404).
    client, events = app.test_client(), []
    for n in range(10):
        cid = world.fresh_customer()
        shown = client.get(f"/tagihan/{cid}", headers=world.headers[world_module.A])
        bills = shown.json["tagihan"]
        body = {"inq": shown.headers["X-Cross-Site"], "pid": f"fuzz-hook-{n}", "mer": "1",
                "per": [int(b["periode"]) for b in bills], "amo": sum(b["biaya"]["jumlah"] for b in bills)}  # fmt: skip
        hooked = {**world.headers[world_module.A], "X-Async": "http://127.0.0.1:9/hook"}
        assert client.post(f"/tagihan/{cid}", json=body, headers=hooked).status_code == 202
    events += [row[0] for row in world.run_sql("select event_id::text from webhook_delivery")]
    world.events = events
    world.sandbox_headers = {
        "Authorization": f"Bearer {issue(app, keys['ES256']['private'], world_module.A, sandbox=True)}"
    }
    schema = schemathesis.openapi.from_wsgi(
        "/openapi.json", app, config=schemathesis.Config.from_dict(CONFIG)
    )
    statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    return app, world, schema, statuses


# -- steering valid cases to real data ----------------------------------------------------


def _valid_period(value):
    """Periods the document can only describe in prose: an integer's last two digits are 01-12."""
    if isinstance(value, int):
        return value - value % 100 + value % 12 + 1
    return value


def _repair(case) -> None:
    """Make a valid case satisfy the one rule JSON Schema cannot express (stated in the
    document): an integer period's month is 01-12 (scripts/schemathesis_hooks.py does the same
    for the CLI run). No period twice and one type per list are the document's own rules."""
    label = (case.operation.method.lower(), case.operation.path)
    if label == ("post", "/tagihan/{cid}") and isinstance(case.body, dict):
        periods, unique = [_valid_period(p) for p in case.body["per"]], []
        for p in periods:  # the new months may repeat a period
            if p not in unique:
                unique.append(p)
        case.body["per"] = unique


def _steer(case, data, world, client) -> None:
    method, path = case.operation.method.lower(), case.operation.path
    if not data.draw(st.booleans(), label="steer"):
        return
    own = world.own(world_module.A)
    if (method, path) == ("get", "/tagihan/{cid}"):
        case.path_parameters["cid"] = data.draw(st.sampled_from([*world.customers, world.paid_up]))
    elif (method, path) == ("post", "/tagihan/{cid}") and isinstance(case.body, dict):
        known = data.draw(st.sampled_from([None, *own]), label="replay")
        if known is not None and data.draw(st.booleans()):
            case.path_parameters["cid"], case.body["pid"] = known.cid, known.pid
            case.body["inq"] = known.inq
            return
        cid = world.fresh_customer()
        res = client.get(f"/tagihan/{cid}", headers=world.headers[world_module.A])
        assert res.status_code == 200, res.json
        bills = {int(b["periode"]): b["biaya"]["jumlah"] for b in res.json["tagihan"]}
        per = data.draw(st.lists(st.sampled_from(sorted(bills)), min_size=1, unique=True), label="per")
        case.path_parameters["cid"] = cid
        case.body.update(
            inq=res.headers["X-Cross-Site"],
            per=per if data.draw(st.booleans(), label="numbers") else [str(p) for p in per],
            amo=sum(bills[p] for p in per) if data.draw(st.booleans()) else case.body["amo"],
        )
    elif (method, path) == ("delete", "/tagihan/{cid}"):
        known = data.draw(st.sampled_from(own))
        case.path_parameters["cid"] = known.cid
        case.query = {**(case.query or {}), "pid": known.pid, "pat": known.pat}
    elif (method, path) == ("get", "/status/{cid}"):
        known = data.draw(st.sampled_from(own))
        case.path_parameters["cid"] = known.cid
        key = data.draw(st.sampled_from(["nob", "pid", "pat", "inq"]))
        case.query = (
            {"nob": known.nob}
            if key == "nob"
            else {"pid": known.pid, **({key: getattr(known, key)} if key != "pid" else {})}
        )
    elif (method, path) == ("get", "/docs/{filename}"):
        from pdam.web.docs import ASSETS

        case.path_parameters["filename"] = data.draw(st.sampled_from(sorted(ASSETS)))
    elif (method, path) == ("post", "/callbacks/{event_id}/resend"):
        case.path_parameters["event_id"] = data.draw(st.sampled_from(world.events))
    elif (method, path) == ("get", "/callbacks") and data.draw(st.booleans(), label="whole log"):
        case.query = {}
    elif (method, path) == ("get", "/audit"):
        today = dt.datetime.now(WIB).date()
        case.query = {
            **(case.query or {}),
            "tgl": data.draw(st.sampled_from([today.isoformat(), today.strftime("%Y%m%d")])),
        }


# -- the run ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_operation(fuzz, path, method):
    app, world, schema, statuses = fuzz
    label = f"{method.upper()} {path}"
    client = app.test_client()

    def steer(case, data):
        _repair(case)
        _steer(case, data, world, client)

    headers = world.sandbox_headers if path == "/sandbox/reset" else world.headers[world_module.A]
    count = fuzz_cases(schema[path][method], MIN_CASES, steer, lambda case: headers, statuses[label])
    assert count >= MIN_CASES, f"{label}: only {count} cases"
    assert statuses[label], label
    print(label, dict(statuses[label]))  # shown with -s: what the run exercised


# -- the coverage phase: Schemathesis' deterministic boundary cases ---------------------------


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_coverage_phase(fuzz, path, method):
    _, world, schema, _ = fuzz
    headers = world.sandbox_headers if path == "/sandbox/reset" else world.headers[world_module.A]
    count = fuzz_coverage(schema[path][method], _repair, lambda case: headers)
    assert count > 0
    print(method.upper(), path, "coverage cases:", count)


def test_valid_requests_also_succeeded(fuzz):
    """The steering works: every operation also answered 2xx (runs after test_operation)."""
    _, _, _, statuses = fuzz
    if not statuses:
        pytest.skip("run together with test_operation")
    assert only_failed(statuses) == set(), dict(statuses)


# -- 500s found by sending what the generators draw rarely (NUL, lone surrogates, control
#    characters): fixed, and kept as plain regression tests ------------------------------------

UNSTORABLE = ["a\x00b", "\ud800", "x\udfff"]


@pytest.mark.parametrize("text", UNSTORABLE)
@pytest.mark.parametrize("field", ["pid", "mer"])
def test_text_postgresql_cannot_store_is_400_not_500(partner_headers, seed_bills, pay, field, text):
    """NUL (and a lone surrogate from a JSON escape) used to reach PostgreSQL: 500."""
    seed_bills.simple("5550001", ["202001"])
    res = pay.response(partner_headers, "5550001", [202001], **{"pid": "p-1", "mer": "1", field: text})
    assert res.status_code == 400, res.json
    assert field in res.json["errors"]


@pytest.mark.parametrize(
    "url", ["/status/5550001?pid=a%00b", "/tagihan/5550001?pid=a%00b&pat=AAAAAAAAAAAAAAAAAAAA"]
)
def test_nul_in_query_pid_is_400(client, partner_headers, url):
    method = client.delete if url.startswith("/tagihan") else client.get
    res = method(url, headers=partner_headers)
    assert res.status_code == 400, res.json
    assert "pid" in res.json["errors"]


@pytest.mark.parametrize(
    "header",
    [
        {"X-Async": "http://x.test/a\x00b"},
        {"X-Async": "http://x.test/", "X-Async-Token": "a\x00b"},
        {"X-Async": "http://x.test/", "X-Async-Token": "a\x1fb"},
    ],
)
def test_control_characters_in_callback_headers_are_400(partner_headers, seed_bills, pay, header):
    seed_bills.simple("5550001", ["202001"])
    res = pay.response(partner_headers, "5550001", [202001], "p-1", mer="1", extra_headers=header)
    assert res.status_code == 400, res.json
    assert "control characters" in res.json["message"]


def test_spaces_and_tabs_around_callback_headers_are_not_part_of_them(partner_headers, seed_bills, pay):
    """HTTP servers drop them (RFC 9110 5.5), so the document allows them (found by the CLI run
    of schemathesis.toml against gunicorn: a trailing tab was schema-invalid but accepted)."""
    seed_bills.simple("5550001", ["202001"])
    header = {"X-Async": "http://x.test/cb", "X-Async-Token": "\ttok en \t"}
    res = pay.response(partner_headers, "5550001", [202001], "p-1", mer="1", extra_headers=header)
    assert res.status_code == 202, res.json
