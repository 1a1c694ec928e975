"""Security drills over every route: partner isolation, bad tokens, mass assignment,
oversized bodies, and a stopped database.

The protected routes come from /openapi.json, so a new route fails these drills until it
is added to ``protected_requests`` (and is then drilled like the others).

The drills that only read share one world for the module (``world``); those that write
(a payment made, a token revoked or recorded, a reversal by the control request) build
their own (``own_world``).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time

import pytest

from pdam.core import tokens
from pdam.core.payments import WIB
from pdam.peti import openapi
from pdam.web import runtime
from tests import world as world_module
from tests.factories import claims, hs256_with_public_key, record_jti, sign, unsigned_token, wait_for
from tests.world import A, B

DOCUMENT = openapi.build()
#: The partner-token (bearerAuth) operations; /metrics has a token of its own (tests/web/test_metrics.py).
PROTECTED = sorted(
    (path, method)
    for path, ops in DOCUMENT["paths"].items()
    for method, op in ops.items()
    if "security" not in op
)
PUBLIC = sorted(
    (path, method)
    for path, ops in DOCUMENT["paths"].items()
    for method, op in ops.items()
    if op.get("security") == []
)


@pytest.fixture(scope="module")
def world(module_app, keys):
    """The module's world, for the drills that only read."""
    return world_module.build(module_app, keys["ES256"]["private"], pool=5)


@pytest.fixture
def own_world(app, keys):
    """A world of the test's own (on the test's ``app``), for the drills that write."""
    return world_module.build(app, keys["ES256"]["private"], pool=5)


def today() -> str:
    return dt.datetime.now(WIB).date().isoformat()


def protected_requests(w: world_module.World, partner: str = A) -> dict[tuple[str, str], dict]:
    """One real request per protected operation, with identifiers of ``partner``'s own data
    (so with ``partner``'s token each would succeed)."""
    accepted = w.payments[(partner, "accepted")]
    cid = w.fresh_customer()
    return {
        ("/tagihan/{cid}", "get"): {"method": "GET", "path": f"/tagihan/{cid}"},
        ("/tagihan/{cid}", "post"): {
            "method": "POST",
            "path": f"/tagihan/{cid}",
            "json": {"inq": "0" * 32, "pid": "drill-1", "amo": 49600, "mer": "1", "per": [202001]},
        },
        ("/tagihan/{cid}", "delete"): {
            "method": "DELETE",
            "path": f"/tagihan/{accepted.cid}",
            "query_string": {"pid": accepted.pid, "pat": accepted.pat},
        },
        ("/status/{cid}", "get"): {
            "method": "GET",
            "path": f"/status/{accepted.cid}",
            "query_string": {"nob": accepted.nob},
        },
        ("/audit", "get"): {"method": "GET", "path": "/audit", "query_string": {"tgl": today()}},
        # With a live token: 404 (no sandbox); tests/peti/test_sandbox.py drills it with sandbox tokens.
        ("/sandbox/reset", "post"): {"method": "POST", "path": "/sandbox/reset"},
        ("/callbacks", "get"): {"method": "GET", "path": "/callbacks"},
        # The world's payments have no callbacks: an unknown event (404); its owner's own and
        # another's: tests/peti/test_callbacks_log.py, tests/peti/test_sandbox_isolation.py.
        ("/callbacks/{event_id}/resend", "post"): {
            "method": "POST",
            "path": "/callbacks/00000000-0000-4000-8000-000000000000/resend",
        },
    }


def send(client, spec: dict, headers: dict | None = None):
    spec = dict(spec)
    return client.open(spec.pop("path"), headers=headers or {}, **spec)


def test_every_protected_operation_is_drilled(world):
    assert sorted(protected_requests(world)) == PROTECTED


# -- 1. partner A with partner B's identifiers ---------------------------------------------


def b_identifiers(w) -> list[str]:
    return [v for p in w.own(B) for v in (p.nob, p.pid, p.pat, p.inq)] + [w.inquiries[B][1]]


def assert_404_without_b_data(res, w):
    assert res.status_code == 404, (res.status_code, res.json)
    assert set(res.json) == {"error", "message"}
    text = res.get_data(as_text=True)
    for value in b_identifiers(w):
        assert value not in text


@pytest.mark.parametrize("state", ["accepted", "created"])
@pytest.mark.parametrize("key", ["nob", "pid", "pid+pat", "pid+inq"])
def test_status_of_another_partners_payment_is_404(world, state, key):
    client = world.client()
    theirs = world.payments[(B, state)]
    query = {
        "nob": {"nob": theirs.nob},
        "pid": {"pid": theirs.pid},
        "pid+pat": {"pid": theirs.pid, "pat": theirs.pat},
        "pid+inq": {"pid": theirs.pid, "inq": theirs.inq},
    }[key]
    res = client.get(f"/status/{theirs.cid}", query_string=query, headers=world.headers[A])
    assert_404_without_b_data(res, world)
    # The same request with B's own token finds it: the 404 is isolation, not a bad request.
    assert client.get(f"/status/{theirs.cid}", query_string=query, headers=world.headers[B]).status_code in (
        201,
        202,
    )


def test_reversal_of_another_partners_payment_is_404_and_changes_nothing(world):
    client = world.client()
    theirs = world.payments[(B, "accepted")]
    res = client.delete(
        f"/tagihan/{theirs.cid}",
        query_string={"pid": theirs.pid, "pat": theirs.pat},
        headers=world.headers[A],
    )
    assert_404_without_b_data(res, world)
    assert world.run_sql("select status, reversed_at from payment where nob = %s", (theirs.nob,)) == [
        ("accepted", None)
    ]
    assert world.run_sql("select count(*) from bill where paid_by = %s", (theirs.nob,)) == [(3,)]


def test_payment_with_another_partners_inquiry_is_404_and_leaves_it_usable(client, own_world, run_sql):
    cid, inq = own_world.inquiries[B]
    res = client.get(f"/tagihan/{cid}", headers=own_world.headers[B])  # what B was shown
    amo = sum(b["biaya"]["jumlah"] for b in res.json["tagihan"])
    body = {"inq": inq, "pid": "a-steals", "amo": amo, "mer": "1", "per": [202001, 202002, 202003]}
    res = client.post(f"/tagihan/{cid}", json=body, headers=own_world.headers[A])
    assert_404_without_b_data(res, own_world)
    assert run_sql("select count(*) from payment where inquiry_token = %s", (inq,)) == [(0,)]
    ok = client.post(f"/tagihan/{cid}", json={**body, "pid": "b-own"}, headers=own_world.headers[B])
    assert ok.status_code == 202, ok.json


def test_payment_with_another_partners_pid_is_a_new_payment_not_theirs(client, own_world):
    """pids are per partner: B's pid neither conflicts (409) nor replays B's answer for A."""
    theirs = own_world.payments[(B, "accepted")]
    cid = own_world.fresh_customer()
    inq = client.get(f"/tagihan/{cid}", headers=own_world.headers[A])
    bills = inq.json["tagihan"]
    body = {
        "inq": inq.headers["X-Cross-Site"],
        "pid": theirs.pid,
        "mer": "1",
        "per": [int(bills[0]["periode"])],
        "amo": bills[0]["biaya"]["jumlah"],
    }
    res = client.post(f"/tagihan/{cid}", json=body, headers=own_world.headers[A])
    assert res.status_code == 202, res.json
    assert "Idempotent-Replayed" not in res.headers
    data = res.json["data"]
    assert data["pop"] == A and data["nob"].startswith(A)
    assert {data["nob"], data["pat"], data["inq"]}.isdisjoint({theirs.nob, theirs.pat, theirs.inq})


def test_audit_shows_only_the_callers_rows(world):
    client = world.client()
    mine = client.get("/audit", query_string={"tgl": today(), "limit": 0}, headers=world.headers[A])
    assert mine.status_code == 200
    assert {r["nob"] for r in mine.json["data"]} >= {world.payments[(A, "accepted")].nob}
    text = mine.get_data(as_text=True)
    for value in b_identifiers(world):
        assert value not in text
    csv = client.get("/audit", query_string={"tgl": today(), "format": "csv"}, headers=world.headers[A])
    assert csv.status_code == 200
    assert world.payments[(B, "accepted")].nob not in csv.get_data(as_text=True)


def test_a_customer_number_does_not_open_another_partners_payment(world):
    """A's own nob with B's customer, and B's nob with A's customer: both 404."""
    client = world.client()
    mine, theirs = world.payments[(A, "accepted")], world.payments[(B, "accepted")]
    for cid, nob in ((theirs.cid, mine.nob), (mine.cid, theirs.nob)):
        res = client.get(f"/status/{cid}", query_string={"nob": nob}, headers=world.headers[A])
        assert_404_without_b_data(res, world)


# -- 2. every bad token against every protected route ----------------------------------------


def bad_token(kind: str, app, keys, run_sql, world) -> dict:
    """The Authorization header of one bad-token case of tests/peti/test_auth.py."""

    def known(c: dict) -> dict:
        return record_jti(run_sql, c)

    if kind == "missing":
        return {}
    if kind == "malformed":
        return {"Authorization": "Bearer a.b.c"}
    if kind == "not-bearer":
        return {"Authorization": "Basic Zm9vOmJhcg=="}
    if kind == "bad-signature":
        token = sign(keys, known(claims()), key=keys["other"]["private"])
    elif kind == "alg-none":
        token = unsigned_token(known(claims()))
    elif kind == "hs256-public-key":
        token = hs256_with_public_key(known(claims()), keys["ES256"]["public"])
    elif kind == "algorithm-not-configured":
        token = sign(keys, known(claims()), alg="RS256")
    elif kind == "expired":
        token = sign(keys, known(claims(exp=int(time.time()) - 1)))
    elif kind == "nbf-future":
        token = sign(keys, known(claims(nbf=int(time.time()) + 600)))
    elif kind == "wrong-issuer":
        token = sign(keys, known(claims(iss="somebody-else")))
    elif kind == "no-jti":
        token = sign(keys, claims(jti=None))
    elif kind == "revoked":
        token = world.tokens[A]
        with app.app_context(), runtime.transaction() as conn:
            tokens.revoke(conn, token, "drill", dt.datetime.now(dt.UTC))
    else:  # pragma: no cover
        raise AssertionError(kind)
    return {"Authorization": f"Bearer {token}"}


BAD_TOKENS = [
    "missing",
    "malformed",
    "not-bearer",
    "bad-signature",
    "alg-none",
    "hs256-public-key",
    "algorithm-not-configured",
    "expired",
    "nbf-future",
    "wrong-issuer",
    "no-jti",
    "revoked",
]


@pytest.mark.parametrize("kind", BAD_TOKENS)
def test_bad_token_is_401_on_every_protected_route(app, client, keys, run_sql, own_world, kind):
    requests = protected_requests(own_world)
    # Control: the good token passes authentication on every route.
    for label, spec in requests.items():
        assert send(client, spec, own_world.headers[A]).status_code not in (401, 403), label
    headers = bad_token(kind, app, keys, run_sql, own_world)
    mine = [v for p in own_world.own(A) for v in (p.nob, p.pat, p.inq)]
    for label, spec in protected_requests(own_world).items():
        res = send(client, spec, headers)
        assert res.status_code == 401, (kind, label, res.json)
        assert set(res.json) == {"error", "message"} and res.json["error"] == 401
        assert res.headers["X-Request-Id"]
        assert not any(v in res.get_data(as_text=True) for v in mine)


@pytest.mark.parametrize("label", PUBLIC)
def test_public_routes_need_no_token(client, label):
    path = label[0].replace("{filename}", "swagger-ui.css")
    with client.get(path) as res:
        assert res.status_code == 200, label


# -- 3. mass assignment -------------------------------------------------------------------------

SERVER_FIELDS = {
    "nob": "009912310001",
    "status": "accepted",
    "pop": "96",
    "rev": 1,
    "pat": "F" * 20,
    "pts": 1,
    "code": 202,
    "partner_code": "96",
    "accepted_at": "2000-01-01T00:00:00Z",
    "paid_total": 1,
    "reversed_at": "2000-01-01T00:00:00Z",
    "meta": {"jumlah_tagihan": 1},
    "data": {"nob": "009912310001"},
}


def test_mass_assignment_in_the_payment_body_changes_nothing(client, own_world, run_sql):
    cid = own_world.fresh_customer()
    inq = client.get(f"/tagihan/{cid}", headers=own_world.headers[A])
    bill = inq.json["tagihan"][0]
    body = {
        "inq": inq.headers["X-Cross-Site"],
        "pid": "mass-1",
        "mer": "1",
        "per": [int(bill["periode"])],
        "amo": bill["biaya"]["jumlah"],
        **SERVER_FIELDS,
    }
    res = client.post(f"/tagihan/{cid}", json=body, headers=own_world.headers[A])
    assert res.status_code == 202, res.json
    data, meta = res.json["data"], res.json["meta"]
    assert data["pop"] == A and data["nob"] != SERVER_FIELDS["nob"] and data["nob"].startswith(A)
    assert data["pat"] != SERVER_FIELDS["pat"] and data["pts"] > 1
    assert res.json["status"] == "accepted"  # the 202 word; the payment itself is still in progress:
    assert meta["jumlah_tagihan"] is None
    row = run_sql(
        "select partner_code, status, reversed_at, paid_total, nob from payment where pid = 'mass-1'"
    )
    assert row == [(A, "created", None, None, data["nob"])]
    status = client.get(f"/status/{cid}", query_string={"nob": data["nob"]}, headers=own_world.headers[A])
    assert status.status_code == 201 and status.json["data"]["rev"] == 0


def test_mass_assignment_in_query_strings_changes_nothing(world):
    client = world.client()
    mine = world.payments[(A, "created")]
    extra = {"status": "accepted", "rev": "1", "pop": B, "partner": B, "code": "202"}
    res = client.get(f"/status/{mine.cid}", query_string={"nob": mine.nob, **extra}, headers=world.headers[A])
    assert res.status_code == 201 and res.json["status"] == "created" and res.json["data"]["pop"] == A
    # A reversal of a payment in progress stays refused whatever the query says.
    res = client.delete(
        f"/tagihan/{mine.cid}",
        query_string={"pid": mine.pid, "pat": mine.pat, **extra},
        headers=world.headers[A],
    )
    assert res.status_code == 409
    assert world.run_sql("select status, reversed_at from payment where nob = %s", (mine.nob,)) == [
        ("created", None)
    ]


# -- 4. oversized and pathological bodies -------------------------------------------------------


def test_oversized_body_is_413(world):
    client = world.client()
    limit = world.app.config["MAX_CONTENT_LENGTH"]
    body = json.dumps({"inq": "0" * 32, "pid": "x" * (limit + 1)})
    res = client.post(
        "/tagihan/5550001", data=body, content_type="application/json", headers=world.headers[A]
    )
    assert res.status_code == 413
    assert res.json == {"error": 413, "message": "Request Entity Too Large"}


def test_oversized_chunked_body_is_413(world):
    """No Content-Length (chunked, as gunicorn passes it): the limit holds while reading."""
    client = world.client()
    body = b'{"pid": "' + b"x" * (world.app.config["MAX_CONTENT_LENGTH"] + 1) + b'"}'
    res = client.post(
        "/tagihan/5550001",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={**world.headers[A], "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert res.status_code == 413, res.json


@pytest.mark.parametrize("depth", [1100, 8000])
def test_deeply_nested_json_is_400(world, depth):
    """Nesting beyond the parser's recursion limit used to raise RecursionError: a 500."""
    client = world.client()
    res = client.post(
        "/tagihan/5550001",
        data="[" * depth + "]" * depth,
        content_type="application/json",
        headers=world.headers[A],
    )
    assert res.status_code == 400, res.json


# -- 5. the database stopped: every route answers 503 JSON, fast; then recovers ------------------


def test_every_route_is_503_with_the_database_stopped(make_app, private_server, private_database, keys):
    app = make_app(DATABASE_URL=private_database, DB_CONNECT_TIMEOUT=1)
    w = world_module.build(app, keys["ES256"]["private"], pool=5)
    client = app.test_client()
    requests = protected_requests(w)
    requests[("/health", "get")] = {"method": "GET", "path": "/health"}
    before = {label: send(client, spec, w.headers[A]).status_code for label, spec in requests.items()}
    assert all(code < 500 for code in before.values()), before

    down = {**protected_requests(w), ("/health", "get"): requests[("/health", "get")]}
    private_server.stop()
    try:
        for label, spec in down.items():
            started = time.monotonic()
            res = send(client, spec, w.headers[A])
            assert res.status_code == 503, (label, res.status_code, res.json)
            body = res.json
            if label == ("/health", "get"):  # says why too (contract 15): the database does not answer
                assert (body.pop("database"), body.pop("commit")) == ("unavailable", "unavailable")
                assert body.pop("reason") and body.pop("version")
            assert body == {"error": 503, "message": "Service temporarily unavailable, please retry"}, label
            assert res.headers["Retry-After"] and res.headers["X-Request-Id"]
            assert time.monotonic() - started < 5, label
        for path, _ in PUBLIC:  # what needs no database keeps working
            if path == "/health":  # the database check itself: 503 above
                continue
            with client.get(path.replace("{filename}", "swagger-ui.css")) as res:
                assert res.status_code == 200, path
    finally:
        private_server.start()
    # Back by itself (the pool drops the dead connections), without a restart of the app.
    wait_for(lambda: client.get("/health").status_code == 200, timeout=20)
    status = send(client, protected_requests(w)[("/status/{cid}", "get")], w.headers[A])
    assert status.status_code == 202, status.json
