"""Contract section 6: webhook callbacks (X-Async) - order, content, retries, SSRF guard."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from jobs import webhooks as webhook_jobs
from pdam.core import errors, payments, webhooks
from pdam.infra import http
from pdam.infra.settings import VERSION
from pdam.peti import callbacks
from pdam.web import runtime
from tests.conftest import wait_for
from tests.test_payment import CID, body

HOOK = "/hook"
DATA_KEYS = ["cid", "pid", "pat", "mer", "inq", "pts", "nob"]
META_KEYS = [
    "jumlah_tagihan", "jumlah_bayar", "jumlah_masalah", "lembar_tagihan", "lembar_bayar",
    "lembar_masalah", "periode_tagihan", "periode_bayar", "periode_masalah",
]  # fmt: skip


# -- fixtures and helpers -------------------------------------------------------------


@pytest.fixture
def bill(seed_bills):
    """The contract's webhook example: one bill of 41,500 for 201903."""
    seed_bills(f"{CID},Nala Gareng,Jl. Merdeka 7,10R,b201903,201903,0,10,10,32700,8000,800,0,0\n")


class Receiver:
    """A real HTTP receiver on loopback (threaded: concurrent callbacks could overlap)."""

    def __init__(self):
        self.server = HTTPServer(host="127.0.0.1", threaded=True)
        self.calls: list[dict] = []
        self.answer = lambda call: Response("ok", 200)
        self._lock = threading.Lock()
        self.server.expect_request(HOOK, method="POST").respond_with_handler(self._handle)

    def url(self, path: str = HOOK) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"

    def _handle(self, request: Request) -> Response:
        raw = request.get_data()
        call = {
            "raw": raw,
            "json": json.loads(raw),
            "headers": dict(request.headers),
            "entered": time.monotonic(),
        }
        with self._lock:
            call["n"] = sum(1 for c in self.calls if c["headers"]["X-Event-Id"] == call["headers"]["X-Event-Id"]) + 1
            self.calls.append(call)
        response = self.answer(call)
        call["left"] = time.monotonic()
        call["status"] = response.status_code
        return response


@pytest.fixture
def receiver():
    rec = Receiver()
    rec.server.start()
    yield rec
    rec.server.clear()
    if rec.server.is_running():
        rec.server.stop()


@pytest.fixture
def silent_listener():
    """A loopback port that accepts TCP connections (kernel backlog) and never answers.
    ``pending()`` counts the connections made to it (accepting them at that moment)."""
    sockets = []

    def make(host: str = "127.0.0.1", port: int = 0, family=socket.AF_INET):
        s = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        s.listen(64)
        sockets.append(s)
        return s

    def pending(s) -> int:
        s.setblocking(False)
        count = 0
        while True:
            try:
                conn, _ = s.accept()
            except BlockingIOError:
                return count
            count += 1
            sockets.append(conn)

    make.pending = pending
    yield make
    for s in sockets:
        s.close()


def pay(client, headers, inquire, url=None, token=None, cid=CID, amo=41500, per=(201903,), pid="evid-1"):
    _, inq = inquire(cid, headers)
    extra = {}
    if url is not None:
        extra["X-Async"] = url
    if token is not None:
        extra["X-Async-Token"] = token
    return client.post(f"/tagihan/{cid}", json=body(inq, amo=amo, per=list(per), pid=pid), headers={**headers, **extra})


def deliver_pending(app, run_sql) -> list[str]:
    """Run every pending delivery once in this process, as the worker's job would."""
    results = []
    rt = app.extensions["pdam.runtime"]
    for (delivery_id,) in run_sql("select id from webhook_delivery where status = 'pending' order by id"):
        try:
            results.append(webhook_jobs.deliver(rt, delivery_id))
        except (errors.Retry, errors.GiveUp) as exc:
            results.append(type(exc).__name__)
    return results


def verify_signature(secret: str, header: str, raw_body: bytes, tolerance: int = 300) -> bool:
    """What a receiver does (the README's snippet)."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(fields["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - timestamp) <= tolerance


def partner_secret(run_sql, code: str = "00") -> str:
    return run_sql("select webhook_secret from partner where code = %s", (code,))[0][0]


# -- order and content ------------------------------------------------------------------


def test_created_then_final_in_order_signed(client, partner_headers, bill, inquire, receiver, start_worker, run_sql):
    """Real worker: `created` then `accepted`, strictly in order even though the first
    receiver call is slow and the server could take both at once."""

    def answer(call):
        if call["json"]["status"] == "created":
            time.sleep(1.0)  # the posting job is done long before this answer
        return Response("ok", 200)

    receiver.answer = answer
    res = pay(client, partner_headers, inquire, receiver.url(), token="Bearer cb-token-123")
    assert res.status_code == 202, res.json
    data = res.json["data"]
    start_worker()
    wait_for(lambda: len(receiver.calls) == 2 and all("left" in c for c in receiver.calls))

    created, final = receiver.calls
    assert final["entered"] >= created["left"], "the final callback overtook the created one"
    assert created["json"] == {
        "status": "created",
        "code": 201,
        "message": "payment in progress",
        "data": {k: data[k] for k in DATA_KEYS},
        "meta": {
            "jumlah_tagihan": None, "jumlah_bayar": 41500, "jumlah_masalah": None,
            "lembar_tagihan": None, "lembar_bayar": 1, "lembar_masalah": None,
            "periode_tagihan": None, "periode_bayar": [201903], "periode_masalah": None,
        },
    }
    assert final["json"] == {
        "status": "accepted",
        "code": 202,
        "message": "payment accepted",
        "data": {k: data[k] for k in DATA_KEYS},
        "meta": {
            "jumlah_tagihan": 41500, "jumlah_bayar": 41500, "jumlah_masalah": 0,
            "lembar_tagihan": 1, "lembar_bayar": 1, "lembar_masalah": 0,
            "periode_tagihan": [201903], "periode_bayar": [201903], "periode_masalah": None,
        },
    }
    for call in (created, final):
        assert list(call["json"]) == ["status", "code", "message", "data", "meta"]
        assert list(call["json"]["data"]) == DATA_KEYS  # no pop, no rev
        assert list(call["json"]["meta"]) == META_KEYS
        headers = call["headers"]
        assert headers["Content-Type"] == "application/json;charset=utf-8"
        assert headers["User-Agent"] == f"pdam-peti/{VERSION} (webhook)"
        assert headers["Authorization"] == "Bearer cb-token-123"  # X-Async-Token wins
        assert verify_signature(partner_secret(run_sql), headers["X-Signature"], call["raw"])
        assert not verify_signature("another-secret", headers["X-Signature"], call["raw"])
    deliveries = run_sql("select event, event_id::text, status, attempts from webhook_delivery order by id")
    assert [(d[0], d[2], d[3]) for d in deliveries] == [("created", "delivered", 1), ("accepted", "delivered", 1)]
    assert [c["headers"]["X-Event-Id"] for c in receiver.calls] == [d[1] for d in deliveries]
    assert run_sql("select http_status, error from webhook_attempt order by id") == [(200, None), (200, None)]
    jobs = run_sql("select queue_name, lock, status from procrastinate_jobs where task_name = 'webhooks.deliver'")
    pay_id = run_sql("select id from payment")[0][0]
    assert jobs == [("webhooks", f"webhook-payment-{pay_id}", "succeeded")] * 2


def test_request_authorization_when_no_callback_token(client, partner_headers, bill, inquire, receiver, post_queued, app, run_sql):
    res = pay(client, partner_headers, inquire, receiver.url())
    assert res.status_code == 202
    assert post_queued() == ["accepted"]
    assert deliver_pending(app, run_sql) == ["delivered", "delivered"]
    assert [c["json"]["status"] for c in receiver.calls] == ["created", "accepted"]
    for call in receiver.calls:
        assert call["headers"]["Authorization"] == partner_headers["Authorization"]
        assert verify_signature(partner_secret(run_sql), call["headers"]["X-Signature"], call["raw"])


def test_changed_callback(client, partner_headers, seed_bills, inquire, receiver, post_queued, app, run_sql):
    seed_bills.simple(CID, ["202001"])
    res = pay(client, partner_headers, inquire, receiver.url(), amo=48800, per=(202001,))
    assert res.status_code == 202
    seed_bills.simple(CID, ["202001"], late_fee=5000)  # denda changed after the inquiry
    assert post_queued() == ["changed"]
    assert deliver_pending(app, run_sql) == ["delivered", "delivered"]
    final = receiver.calls[-1]["json"]
    assert (final["status"], final["code"], final["message"]) == ("changed", 206, "suspect data")
    assert final["meta"]["jumlah_tagihan"] == 53800 and final["meta"]["jumlah_masalah"] == -5000


def test_rejected_callback(client, partner_headers, bill, inquire, receiver, post_queued, app, run_sql):
    res = pay(client, partner_headers, inquire, receiver.url())
    assert res.status_code == 202
    run_sql("update bill set paid_by = '999999999999', paid_at = now()")  # paid at another channel
    assert post_queued() == ["rejected"]
    assert deliver_pending(app, run_sql) == ["delivered", "delivered"]
    final = receiver.calls[-1]["json"]
    assert (final["status"], final["code"], final["message"]) == ("rejected", 409, "paid before")
    assert final["meta"]["periode_masalah"] == [201903]


def test_no_x_async_no_callback(client, partner_headers, bill, inquire, post_queued, run_sql):
    assert pay(client, partner_headers, inquire).status_code == 202
    assert post_queued() == ["accepted"]
    assert run_sql("select count(*) from webhook_delivery") == [(0,)]
    assert run_sql("select count(*) from procrastinate_jobs where task_name = 'webhooks.deliver'") == [(0,)]


def test_enqueue_is_part_of_the_callers_transaction(client, partner_headers, bill, inquire, receiver, app, run_sql):
    assert pay(client, partner_headers, inquire, receiver.url()).status_code == 202
    nob = run_sql("select nob from payment")[0][0]
    with app.app_context():
        conn = runtime.connection()
        row = payments.find(conn, "00", CID, nob=nob)
        assert callbacks.enqueue(conn, row, "accepted", runtime.now()) is not None
        conn.rollback()  # the state change did not happen: neither did its callback
    assert run_sql("select event from webhook_delivery") == [("created",)]
    assert run_sql("select count(*) from procrastinate_jobs where task_name = 'webhooks.deliver'") == [(1,)]


def test_event_id_and_body_stable_across_retries(client, partner_headers, bill, inquire, receiver, app, run_sql):
    receiver.answer = lambda call: Response("busy", 503) if call["n"] == 1 else Response("ok", 200)
    assert pay(client, partner_headers, inquire, receiver.url()).status_code == 202
    assert deliver_pending(app, run_sql) == ["RetryLater"]
    assert deliver_pending(app, run_sql) == ["delivered"]
    first, second = receiver.calls
    assert first["headers"]["X-Event-Id"] == second["headers"]["X-Event-Id"]
    assert first["raw"] == second["raw"]
    assert run_sql("select http_status, error from webhook_attempt order by id") == [(503, "HTTP 503: busy"), (200, None)]


# -- retries, refusals, failures (real worker) ------------------------------------------


def test_500_three_times_then_200_is_retried_at_the_interval(client, partner_headers, bill, inquire, receiver, start_worker, run_sql):
    receiver.answer = lambda call: (
        Response("oops", 500) if call["json"]["status"] == "created" and call["n"] <= 3 else Response("ok", 200)
    )
    assert pay(client, partner_headers, inquire, receiver.url()).status_code == 202
    start_worker(WEBHOOK_RETRY_SECONDS=2)
    wait_for(lambda: run_sql("select status from webhook_delivery order by id") == [("delivered",), ("delivered",)], timeout=40)

    created = [c for c in receiver.calls if c["json"]["status"] == "created"]
    assert [c["status"] for c in created] == [500, 500, 500, 200]  # delivered once, after 3 retries
    assert len({c["headers"]["X-Event-Id"] for c in created}) == 1
    rows = run_sql(
        "select a.http_status, extract(epoch from a.attempted_at)::float8 from webhook_attempt a"
        " join webhook_delivery d on d.id = a.delivery_id where d.event = 'created' order by a.id"
    )
    assert [r[0] for r in rows] == [500, 500, 500, 200]
    gaps = [b[1] - a[1] for a, b in zip(rows, rows[1:])]
    assert all(gap >= 2.0 for gap in gaps), gaps
    assert run_sql("select event, attempts from webhook_delivery order by id") == [("created", 4), ("accepted", 1)]
    # The final callback waited for the created one.
    accepted = [c for c in receiver.calls if c["json"]["status"] == "accepted"]
    assert len(accepted) == 1 and accepted[0]["entered"] > created[-1]["entered"]


def test_404_is_refused_after_one_attempt(client, partner_headers, bill, inquire, receiver, start_worker, run_sql):
    receiver.answer = lambda call: Response("no such hook", 404)
    assert pay(client, partner_headers, inquire, receiver.url()).status_code == 202
    start_worker(WEBHOOK_RETRY_SECONDS=1)
    wait_for(lambda: run_sql(
        "select status from procrastinate_jobs where task_name = 'webhooks.deliver' order by id"
    ) == [("succeeded",), ("succeeded",)])  # finished: no retry is scheduled
    assert run_sql("select event, status, attempts, last_error from webhook_delivery order by id") == [
        ("created", "refused", 1, "HTTP 404: no such hook"),
        ("accepted", "refused", 1, "HTTP 404: no such hook"),
    ]
    assert [c["json"]["status"] for c in receiver.calls] == ["created", "accepted"]


def test_receiver_that_never_answers_times_out_and_fails_after_the_cap(
    client, partner_headers, bill, inquire, silent_listener, start_worker, run_sql
):
    listener = silent_listener()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}{HOOK}"
    assert pay(client, partner_headers, inquire, url).status_code == 202
    start_worker(WEBHOOK_TIMEOUT_SECONDS=1, WEBHOOK_RETRY_SECONDS=1, WEBHOOK_MAX_ATTEMPTS=3)
    wait_for(lambda: run_sql("select status from webhook_delivery order by id") == [("failed",), ("failed",)], timeout=60)

    # What an operator sees.
    assert run_sql("select event, status, attempts, last_error like 'timeout%' from webhook_delivery order by id") == [
        ("created", "failed", 3, True),
        ("accepted", "failed", 3, True),
    ]
    attempts = run_sql("select url, http_status, error, duration_ms from webhook_attempt order by id")
    assert len(attempts) == 6
    for a_url, status, error, duration_ms in attempts:
        assert a_url == url and status is None and error.startswith("timeout")
        assert 900 <= duration_ms < 5000
    wait_for(lambda: run_sql(
        "select status from procrastinate_jobs where task_name = 'webhooks.deliver' order by id"
    ) == [("failed",), ("failed",)])
    assert silent_listener.pending(listener) == 6


def test_deadline_ends_the_retries(make_app, client, partner_headers, bill, inquire, receiver, run_sql):
    import datetime as dt

    now = [dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.timezone.utc)]
    app = make_app(CLOCK=lambda: now[0], WEBHOOK_RETRY_SECONDS=10, WEBHOOK_DEADLINE_SECONDS=60)
    receiver.answer = lambda call: Response("down", 503)
    assert pay(client, partner_headers, inquire, receiver.url()).status_code == 202
    assert deliver_pending(app, run_sql) == ["RetryLater"]
    now[0] += dt.timedelta(seconds=45)
    assert deliver_pending(app, run_sql) == ["RetryLater"]  # a retry at +55 s is within the deadline
    now[0] += dt.timedelta(seconds=6)
    assert deliver_pending(app, run_sql) == ["DeliveryFailed"]  # the next one would be past it
    assert run_sql("select status, attempts from webhook_delivery") == [("failed", 3)]


def test_max_attempts_cap_in_process(make_app, client, partner_headers, bill, inquire, receiver, run_sql):
    app = make_app(WEBHOOK_MAX_ATTEMPTS=2)
    receiver.answer = lambda call: Response("down", 502)
    assert pay(client, partner_headers, inquire, receiver.url()).status_code == 202
    assert deliver_pending(app, run_sql) == ["RetryLater"]
    assert deliver_pending(app, run_sql) == ["DeliveryFailed"]
    assert deliver_pending(app, run_sql) == []
    assert run_sql("select status, attempts, last_error from webhook_delivery") == [("failed", 2, "HTTP 502: down")]
    assert len(receiver.calls) == 2


def test_delivery_never_blocks_payment_acceptance(
    client, partner_headers, seed_bills, inquire, silent_listener, start_worker, run_sql
):
    seed_bills.simple(CID, ["202001", "202002"])
    listener = silent_listener()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}{HOOK}"
    assert pay(client, partner_headers, inquire, url, amo=48800, per=(202001,), pid="p1").status_code == 202
    start_worker(WEBHOOK_TIMEOUT_SECONDS=30)
    doing = "select count(*) from procrastinate_jobs where task_name = 'webhooks.deliver' and status = 'doing'"
    wait_for(lambda: run_sql(doing) == [(1,)])  # the worker is stuck on the receiver

    started = time.monotonic()
    res = pay(client, partner_headers, inquire, url, amo=48800, per=(202002,), pid="p2")
    elapsed = time.monotonic() - started
    assert res.status_code == 202 and elapsed < 2.0, elapsed
    # Posting goes on too while callbacks hang.
    wait_for(lambda: run_sql("select count(*) from payment where status = 'accepted'") == [(2,)])
    assert run_sql(doing)[0][0] >= 1
    assert run_sql("select count(*) from webhook_attempt") == [(0,)]


# -- SSRF guard ----------------------------------------------------------------------------

SSRF_URLS = [
    ("http://127.0.0.1:{port}/", "127.0.0.1 is a loopback address"),
    ("http://localhost:{port}/", "is a loopback address"),
    ("http://0.0.0.0:{port}/", "0.0.0.0 is the unspecified address"),
    ("http://10.0.0.1:{port}/", "10.0.0.1 is a private address"),
    ("http://172.16.0.1:{port}/", "172.16.0.1 is a private address"),
    ("http://192.168.1.1:{port}/", "192.168.1.1 is a private address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://[::1]:{port}/", "::1 is a loopback address"),
    ("http://[fc00::1]:{port}/", "fc00::1 is a unique-local address"),
    ("http://[fe80::1]:{port}/", "fe80::1 is a link-local address"),
    ("http://[::]:{port}/", ":: is the unspecified address"),
    ("http://224.0.0.1:{port}/", "224.0.0.1 is a multicast address"),
    ("http://100.64.0.1:{port}/", "100.64.0.1 is not a public address"),
    ("http://2130706433:{port}/", "127.0.0.1 is a loopback address"),
    ("http://0x7f000001:{port}/", "127.0.0.1 is a loopback address"),
    ("http://0177.0.0.1:{port}/", "127.0.0.1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]:{port}/", "127.0.0.1 is a loopback address"),
    ("https://127.0.0.1:{port}/", "127.0.0.1 is a loopback address"),
    ("file:///etc/passwd", "only absolute http(s) URLs"),
    ("gopher://127.0.0.1:{port}/_GET%20/", "only absolute http(s) URLs"),
]


@pytest.fixture
def canary(silent_listener):
    """A listener on 127.0.0.1 (and ::1 where available) at one port: must get no connection."""
    v4 = silent_listener()
    port = v4.getsockname()[1]
    listeners = [v4]
    try:
        listeners.append(silent_listener("::1", port, socket.AF_INET6))
    except OSError:
        pass
    return port, lambda: sum(silent_listener.pending(s) for s in listeners)


@pytest.fixture
def connect_spy(monkeypatch):
    """Record every outgoing socket connect of this process; let through only the
    addresses in ``spy.allowed`` (none by default): nothing ever leaves loopback."""
    real_connect = socket.socket.connect
    seen: list = []

    def spy(sock, address):
        seen.append(address[:2])
        if address[:2] in spy.allowed:
            return real_connect(sock, address)
        raise ConnectionRefusedError("blocked by the test")

    spy.seen = seen
    spy.allowed = set()
    monkeypatch.setattr(socket.socket, "connect", spy)
    return spy


@pytest.mark.parametrize("template, reason", SSRF_URLS, ids=[u for u, _ in SSRF_URLS])
def test_ssrf_guard_refuses(make_app, client, partner_headers, bill, inquire, run_sql, canary, connect_spy, template, reason):
    port, hits = canary
    url = template.format(port=port)
    guarded = make_app(WEBHOOK_ALLOW_PRIVATE_NETWORKS=False)
    res = pay(client, partner_headers, inquire, url)
    if url.startswith("http"):
        assert res.status_code == 202, res.json
    else:  # refused at the door already; and at delivery if such a URL ever got in
        assert res.status_code == 400 and "X-Async" in res.json["message"]
        res = pay(client, partner_headers, inquire, f"http://127.0.0.1:{port}/", pid="evid-2")
        assert res.status_code == 202
        run_sql("update webhook_delivery set url = %s", (url,))
    assert deliver_pending(guarded, run_sql) == ["refused"]
    assert connect_spy.seen == []  # refused before any connection attempt
    assert hits() == 0
    ((status, attempts, error),) = run_sql("select status, attempts, last_error from webhook_delivery")
    assert (status, attempts) == ("refused", 1)
    assert error.startswith("refused: ") and reason in error
    assert run_sql("select http_status from webhook_attempt") == [(None,)]


def test_redirect_from_a_public_looking_url_is_not_followed(
    make_app, client, partner_headers, bill, inquire, receiver, run_sql, canary, connect_spy, monkeypatch
):
    """callback.example.com (resolved to the loopback redirector inside this test, the guard
    relaxed for that first hop only) answers 302 to the loopback canary: not followed."""
    port, hits = canary
    receiver.answer = lambda call: Response("", 302, headers={"Location": f"http://127.0.0.1:{port}/"})
    redirector = ("127.0.0.1", receiver.server.port)
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host, *args, **kwargs):
        return real_getaddrinfo("127.0.0.1" if host == "callback.example.com" else host, *args, **kwargs)

    first_hop = {"allowed": False}
    real_refusal = http.refusal

    def relaxed_once(ip):
        if not first_hop["allowed"] and str(ip) == "127.0.0.1":
            first_hop["allowed"] = True
            return None
        return real_refusal(ip)

    guarded = make_app(WEBHOOK_ALLOW_PRIVATE_NETWORKS=False)
    url = f"http://callback.example.com:{receiver.server.port}{HOOK}"
    assert pay(client, partner_headers, inquire, url).status_code == 202
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(http, "refusal", relaxed_once)
    connect_spy.allowed = {redirector}
    assert deliver_pending(guarded, run_sql) == ["refused"]
    assert connect_spy.seen == [redirector]
    assert hits() == 0
    assert len(receiver.calls) == 1
    assert run_sql("select http_status, error from webhook_attempt") == [
        (302, f"redirect to http://127.0.0.1:{port}/ not followed")
    ]
    assert run_sql("select status from webhook_delivery") == [("refused",)]


def test_redirect_not_followed_even_when_private_networks_are_allowed(client, partner_headers, bill, inquire, receiver, app, run_sql, canary):
    port, hits = canary
    receiver.answer = lambda call: Response("", 307, headers={"Location": f"http://127.0.0.1:{port}/"})
    assert pay(client, partner_headers, inquire, receiver.url()).status_code == 202
    assert deliver_pending(app, run_sql) == ["refused"]
    assert hits() == 0 and len(receiver.calls) == 1


def test_allowed_addresses_are_still_checked_when_private_networks_are_allowed(client, partner_headers, bill, inquire, app, run_sql, connect_spy):
    assert pay(client, partner_headers, inquire, "http://0.0.0.0:9/").status_code == 202
    assert deliver_pending(app, run_sql) == ["refused"]
    assert connect_spy.seen == []
    assert "0.0.0.0 is not a unicast address" in run_sql("select last_error from webhook_delivery")[0][0]


def test_connection_error_is_retried(client, partner_headers, bill, inquire, app, run_sql, silent_listener):
    s = silent_listener()
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more: connection refused
    assert pay(client, partner_headers, inquire, f"http://127.0.0.1:{port}/").status_code == 202
    assert deliver_pending(app, run_sql) == ["RetryLater"]
    ((status, error),) = run_sql("select status, last_error from webhook_delivery")
    assert status == "pending" and error.startswith("connection error")


@pytest.fixture
def dripping_receiver():
    """A loopback receiver that reads the request, then sends its answer one byte every
    0.2 s: every read gets a byte well within a 1 s read timeout."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 1000:
                if stop.wait(0.2):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:  # the caller hung up
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}{HOOK}"
    stop.set()
    server.close()
    thread.join(5)


def test_an_answer_dripped_byte_by_byte_is_cut_off_at_the_timeout(
    make_app, client, partner_headers, bill, inquire, run_sql, dripping_receiver
):
    app = make_app(WEBHOOK_TIMEOUT_SECONDS=1)
    assert pay(client, partner_headers, inquire, dripping_receiver).status_code == 202
    started = time.monotonic()
    assert deliver_pending(app, run_sql) == ["RetryLater"]
    assert time.monotonic() - started < 3  # without the deadline: 200+ s, a byte at a time
    ((status, error, duration_ms),) = run_sql(
        "select d.status, a.error, a.duration_ms from webhook_attempt a"
        " join webhook_delivery d on d.id = a.delivery_id"
    )
    assert status == "pending"
    assert error == "timeout: no complete answer within 1 s"
    assert 900 <= duration_ms < 3000


def test_public_address_passes_the_guard():
    import ipaddress

    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34"):
        assert http.refusal(ipaddress.ip_address(address)) is None
    for address in ("2002:7f00:1::", "64:ff9b::a00:1", "::ffff:10.0.0.1"):  # IPv4 inside IPv6
        assert http.refusal(ipaddress.ip_address(address)) is not None


# -- operator resend ---------------------------------------------------------------------


def test_webhook_resend(client, partner_headers, bill, inquire, receiver, post_queued, app, run_sql):
    res = pay(client, partner_headers, inquire, receiver.url())
    nob = res.json["data"]["nob"]
    post_queued()
    assert deliver_pending(app, run_sql) == ["delivered", "delivered"]
    last_id, event_id = run_sql("select id, event_id::text from webhook_delivery order by id desc limit 1")[0]

    out = app.test_cli_runner().invoke(args=["webhook", "resend", nob])
    assert out.exit_code == 0, out.output
    assert "a new delivery of the same event" in out.output
    assert f"delivery {last_id}" in out.output and event_id in out.output
    new = run_sql("select id, event, event_id::text, resend_of, status from webhook_delivery order by id desc limit 1")
    assert new[0][1:] == ("accepted", event_id, last_id, "pending")
    pay_id = run_sql("select id from payment")[0][0]
    assert run_sql(
        "select queue_name, lock from procrastinate_jobs where task_name = 'webhooks.deliver' order by id desc limit 1"
    ) == [("webhooks", f"webhook-payment-{pay_id}")]

    assert deliver_pending(app, run_sql) == ["delivered"]
    original, again = receiver.calls[1], receiver.calls[2]
    assert again["raw"] == original["raw"]
    assert again["headers"]["X-Event-Id"] == original["headers"]["X-Event-Id"] == event_id


def test_webhook_resend_fails_clearly(client, partner_headers, bill, inquire, app):
    res = pay(client, partner_headers, inquire)  # no X-Async
    cli = app.test_cli_runner()
    unknown = cli.invoke(args=["webhook", "resend", "000000000000"])
    assert unknown.exit_code == 1 and "no payment with nob 000000000000" in unknown.output
    without = cli.invoke(args=["webhook", "resend", res.json["data"]["nob"]])
    assert without.exit_code == 1 and "has no X-Async callback URL" in without.output


def test_give_up_marks_a_pending_delivery_failed(client, partner_headers, bill, inquire, receiver, app, run_sql):
    """For a delivery job abandoned outside ``deliver`` (stalled-job recovery)."""
    assert pay(client, partner_headers, inquire, receiver.url()).status_code == 202
    delivery_id = run_sql("select id from webhook_delivery")[0][0]
    with app.app_context(), runtime.transaction() as conn:
        assert webhooks.give_up(conn, delivery_id, "worker died during delivery too often", runtime.now())
    with app.app_context(), runtime.transaction() as conn:
        assert not webhooks.give_up(conn, delivery_id, "again", runtime.now())  # only a pending one
    ((status, error),) = run_sql("select status, last_error from webhook_delivery")
    assert status == "failed" and error.startswith("worker died during delivery too often")
    assert deliver_pending(app, run_sql) == [] and receiver.calls == []
