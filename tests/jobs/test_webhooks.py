"""Webhook delivery (jobs/webhooks.py, contract section 6): order, content, retries, time
limits, and the SSRF guard end to end (its matrix is in tests/infra/test_http.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import socket
import threading
import time

import pytest
from werkzeug import Response

from pdam.core import webhooks
from pdam.infra.settings import VERSION
from tests.conftest import HOOK
from tests.factories import CID, SEALER, deliver_pending, wait_for

#: Callbacks still to send (waiting, in flight, or a retry to come).
PENDING = "select count(*) from webhook_delivery where status = 'pending'"
#: Callbacks being sent (a send begun, its attempt not recorded yet).
IN_FLIGHT = "select count(*) from webhook_delivery where status = 'pending' and open_sends > 0"
DATA_KEYS = ["cid", "pid", "pat", "mer", "inq", "pts", "nob"]
META_KEYS = [
    "jumlah_tagihan", "jumlah_bayar", "jumlah_masalah", "lembar_tagihan", "lembar_bayar",
    "lembar_masalah", "periode_tagihan", "periode_bayar", "periode_masalah",
]  # fmt: skip


def verify_signature(secret: str, header: str, raw_body: bytes, tolerance: int = 300) -> bool:
    """What a receiver does (the snippet of docs/partners.md)."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    timestamp = int(fields["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - timestamp) <= tolerance


def partner_secret(run_sql, code: str = "00") -> str:
    """The partner's signing secret (stored sealed: opened with the tests' key)."""
    return SEALER.open(run_sql("select webhook_secret from partner where code = %s", (code,))[0][0])


# -- order and content ------------------------------------------------------------------


def test_created_then_final_in_order_signed(
    partner_headers, example_bill, pay, receiver, start_worker, run_sql
):
    """Real worker: `created` then `accepted`, strictly in order even though the first
    receiver call is slow and the server could take both at once."""

    def answer(call):
        if call["json"]["status"] == "created":
            time.sleep(0.5)  # the posting job is done long before this answer
        return Response("ok", 200)

    receiver.answer = answer
    data = pay(partner_headers, x_async=receiver.url(), x_async_token="Bearer cb-token-123")
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
            "jumlah_tagihan": None,
            "jumlah_bayar": 41500,
            "jumlah_masalah": None,
            "lembar_tagihan": None,
            "lembar_bayar": 1,
            "lembar_masalah": None,
            "periode_tagihan": None,
            "periode_bayar": [201903],
            "periode_masalah": None,
        },
    }
    assert final["json"] == {
        "status": "accepted",
        "code": 202,
        "message": "payment accepted",
        "data": {k: data[k] for k in DATA_KEYS},
        "meta": {
            "jumlah_tagihan": 41500,
            "jumlah_bayar": 41500,
            "jumlah_masalah": 0,
            "lembar_tagihan": 1,
            "lembar_bayar": 1,
            "lembar_masalah": 0,
            "periode_tagihan": [201903],
            "periode_bayar": [201903],
            "periode_masalah": None,
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
    assert [(d[0], d[2], d[3]) for d in deliveries] == [
        ("created", "delivered", 1),
        ("accepted", "delivered", 1),
    ]
    assert [c["headers"]["X-Event-Id"] for c in receiver.calls] == [d[1] for d in deliveries]
    assert run_sql("select http_status, error from webhook_attempt order by id") == [(200, None), (200, None)]
    # Both in the payment's lane, sent by the dispatcher: the payment's only queue job is its posting.
    pay_id = run_sql("select id from payment")[0][0]
    lane = webhooks.lane_of(pay_id, receiver.url())
    assert run_sql("select distinct lane from webhook_delivery") == [(lane,)]
    assert run_sql("select task_name from procrastinate_jobs where queue_name <> 'maintenance'") == [
        ("posting.post_payment",)
    ]


def test_request_authorization_when_no_callback_token(
    partner_headers, example_bill, pay, receiver, post_queued, app, run_sql
):
    pay(partner_headers, x_async=receiver.url())
    assert post_queued() == ["accepted"]
    assert deliver_pending(app, run_sql) == ["delivered", "delivered"]
    assert [c["json"]["status"] for c in receiver.calls] == ["created", "accepted"]
    for call in receiver.calls:
        assert call["headers"]["Authorization"] == partner_headers["Authorization"]
        assert verify_signature(partner_secret(run_sql), call["headers"]["X-Signature"], call["raw"])


def test_changed_callback(partner_headers, seed_bills, pay, receiver, post_queued, app, run_sql):
    seed_bills.simple(CID, ["202001"])
    pay(partner_headers, x_async=receiver.url(), per=[202001])
    seed_bills.simple(CID, ["202001"], late_fee=5000)  # denda changed after the inquiry
    assert post_queued() == ["changed"]
    assert deliver_pending(app, run_sql) == ["delivered", "delivered"]
    final = receiver.calls[-1]["json"]
    assert (final["status"], final["code"], final["message"]) == ("changed", 206, "suspect data")
    assert final["meta"]["jumlah_tagihan"] == 53800 and final["meta"]["jumlah_masalah"] == -5000


def test_rejected_callback(partner_headers, example_bill, pay, receiver, post_queued, app, run_sql):
    pay(partner_headers, x_async=receiver.url())
    run_sql("update bill set paid_by = '999999999999', paid_at = now()")  # paid at another channel
    assert post_queued() == ["rejected"]
    assert deliver_pending(app, run_sql) == ["delivered", "delivered"]
    final = receiver.calls[-1]["json"]
    assert (final["status"], final["code"], final["message"]) == ("rejected", 409, "paid before")
    assert final["meta"]["periode_masalah"] == [201903]


def test_no_x_async_no_callback(partner_headers, example_bill, pay, post_queued, run_sql):
    pay(partner_headers)
    assert post_queued() == ["accepted"]
    assert run_sql("select count(*) from webhook_delivery") == [(0,)]
    assert run_sql("select task_name from procrastinate_jobs") == [("posting.post_payment",)]


def test_event_id_and_body_stable_across_retries(partner_headers, example_bill, pay, receiver, app, run_sql):
    receiver.answer = lambda call: Response("busy", 503) if call["n"] == 1 else Response("ok", 200)
    pay(partner_headers, x_async=receiver.url())
    assert deliver_pending(app, run_sql) == ["RetryLater"]
    assert deliver_pending(app, run_sql) == ["delivered"]
    first, second = receiver.calls
    assert first["headers"]["X-Event-Id"] == second["headers"]["X-Event-Id"]
    assert first["raw"] == second["raw"]
    assert run_sql("select http_status, error from webhook_attempt order by id") == [
        (503, "HTTP 503: busy"),
        (200, None),
    ]


# -- retries, refusals, failures (real worker) ------------------------------------------


def test_500_three_times_then_200_is_retried_at_the_interval(
    partner_headers, example_bill, pay, receiver, start_worker, run_sql
):
    receiver.answer = lambda call: (
        Response("oops", 500)
        if call["json"]["status"] == "created" and call["n"] <= 3
        else Response("ok", 200)
    )
    pay(partner_headers, x_async=receiver.url())
    start_worker(WEBHOOK_RETRY_SECONDS=1)
    wait_for(
        lambda: (
            run_sql("select status from webhook_delivery order by id") == [("delivered",), ("delivered",)]
        ),
        timeout=40,
    )

    created = [c for c in receiver.calls if c["json"]["status"] == "created"]
    assert [c["status"] for c in created] == [500, 500, 500, 200]  # delivered once, after 3 retries
    assert len({c["headers"]["X-Event-Id"] for c in created}) == 1
    rows = run_sql(
        "select a.http_status, extract(epoch from a.attempted_at)::float8 from webhook_attempt a"
        " join webhook_delivery d on d.id = a.delivery_id where d.event = 'created' order by a.id"
    )
    assert [r[0] for r in rows] == [500, 500, 500, 200]
    gaps = [b[1] - a[1] for a, b in zip(rows, rows[1:], strict=False)]
    assert all(gap >= 1.0 for gap in gaps), gaps  # WEBHOOK_RETRY_SECONDS
    assert run_sql("select event, attempts from webhook_delivery order by id") == [
        ("created", 4),
        ("accepted", 1),
    ]
    # The final callback waited for the created one.
    accepted = [c for c in receiver.calls if c["json"]["status"] == "accepted"]
    assert len(accepted) == 1 and accepted[0]["entered"] > created[-1]["entered"]


def test_404_is_refused_after_one_attempt(
    partner_headers, example_bill, pay, receiver, start_worker, run_sql
):
    receiver.answer = lambda call: Response("no such hook", 404)
    pay(partner_headers, x_async=receiver.url())
    start_worker(WEBHOOK_RETRY_SECONDS=1)
    wait_for(lambda: run_sql("select count(*) from webhook_delivery where status = 'refused'") == [(2,)])
    wait_for(lambda: run_sql(PENDING) == [(0,)])  # finished: no retry to come
    assert run_sql("select event, status, attempts, last_error from webhook_delivery order by id") == [
        ("created", "refused", 1, "HTTP 404: no such hook"),
        ("accepted", "refused", 1, "HTTP 404: no such hook"),
    ]
    assert [c["json"]["status"] for c in receiver.calls] == ["created", "accepted"]


def test_receiver_that_never_answers_times_out_and_fails_after_the_cap(
    partner_headers, example_bill, pay, silent_listener, start_worker, run_sql
):
    listener = silent_listener()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}{HOOK}"
    pay(partner_headers, x_async=url)
    # Retried at once: the spacing of retries is test_500_three_times_then_200_is_retried_at_the_interval's.
    start_worker(WEBHOOK_TIMEOUT_SECONDS=1, WEBHOOK_RETRY_SECONDS=0, WEBHOOK_MAX_ATTEMPTS=3)
    wait_for(
        lambda: run_sql("select status from webhook_delivery order by id") == [("failed",), ("failed",)],
        timeout=60,
    )

    # What an operator sees.
    assert run_sql(
        "select event, status, attempts, last_error like 'timeout%' from webhook_delivery order by id"
    ) == [
        ("created", "failed", 3, True),
        ("accepted", "failed", 3, True),
    ]
    attempts = run_sql("select url, http_status, error, duration_ms from webhook_attempt order by id")
    assert len(attempts) == 6
    for a_url, status, error, duration_ms in attempts:
        assert a_url == url and status is None and error.startswith("timeout")
        assert 900 <= duration_ms < 5000
    assert run_sql(PENDING) == [(0,)]  # the lane is done: nothing waits
    assert silent_listener.pending(listener) == 6


def test_deadline_ends_the_retries(make_app, clock, partner_headers, example_bill, pay, receiver, run_sql):
    clock.at = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)
    app = make_app(WEBHOOK_RETRY_SECONDS=10, WEBHOOK_DEADLINE_SECONDS=60)
    receiver.answer = lambda call: Response("down", 503)
    pay(partner_headers, x_async=receiver.url())
    assert deliver_pending(app, run_sql) == ["RetryLater"]
    clock.at += dt.timedelta(seconds=45)
    assert deliver_pending(app, run_sql) == ["RetryLater"]  # a retry at +55 s is within the deadline
    clock.at += dt.timedelta(seconds=6)
    assert deliver_pending(app, run_sql) == ["DeliveryFailed"]  # the next one would be past it
    assert run_sql("select status, attempts from webhook_delivery") == [("failed", 3)]


def test_max_attempts_cap_in_process(make_app, partner_headers, example_bill, pay, receiver, run_sql):
    app = make_app(WEBHOOK_MAX_ATTEMPTS=2)
    receiver.answer = lambda call: Response("down", 502)
    pay(partner_headers, x_async=receiver.url())
    assert deliver_pending(app, run_sql) == ["RetryLater"]
    assert deliver_pending(app, run_sql) == ["DeliveryFailed"]
    assert deliver_pending(app, run_sql) == []
    assert run_sql("select status, attempts, last_error from webhook_delivery") == [
        ("failed", 2, "HTTP 502: down")
    ]
    assert len(receiver.calls) == 2


def test_an_error_that_cannot_pass_fails_the_delivery_visibly(
    partner_headers, example_bill, pay, receiver, app, run_sql, monkeypatch
):
    """A fault in the service itself (here: building the headers) is no reason to retry: the
    delivery is failed, not left pending without a job, and operators see it."""
    from pdam.peti import callbacks

    def broken(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr(callbacks, "headers_for", broken)
    pay(partner_headers, x_async=receiver.url())
    assert deliver_pending(app, run_sql) == ["DeliveryFailed"]
    ((status, attempts, last_error),) = run_sql("select status, attempts, last_error from webhook_delivery")
    assert (status, attempts) == ("failed", 0) and last_error.startswith("delivery error: ValueError (")
    assert "a bug" not in last_error  # an exception's text may hold anything: it stays in the log
    assert run_sql("select reason from payments_needing_attention") == [("webhook failed",)]
    assert receiver.calls == []


def test_delivery_never_blocks_payment_acceptance(
    partner_headers, seed_bills, pay, silent_listener, start_worker, run_sql
):
    seed_bills.simple(CID, ["202001", "202002"])
    listener = silent_listener()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}{HOOK}"
    pay(partner_headers, x_async=url, per=[202001], pid="p1")
    start_worker(WEBHOOK_TIMEOUT_SECONDS=30)
    wait_for(lambda: run_sql(IN_FLIGHT) == [(1,)])  # the worker is stuck on the receiver

    started = time.monotonic()
    pay(partner_headers, x_async=url, per=[202002], pid="p2")  # a 202 ...
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, elapsed  # ... at once
    # Posting goes on too while callbacks hang.
    wait_for(lambda: run_sql("select count(*) from payment where status = 'accepted'") == [(2,)])
    assert run_sql(IN_FLIGHT)[0][0] >= 1
    assert run_sql("select count(*) from webhook_attempt") == [(0,)]


def test_connection_error_is_retried(partner_headers, example_bill, pay, app, run_sql, silent_listener):
    s = silent_listener()
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more: connection refused
    pay(partner_headers, x_async=f"http://127.0.0.1:{port}/")
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
    make_app, partner_headers, example_bill, pay, run_sql, dripping_receiver
):
    app = make_app(WEBHOOK_TIMEOUT_SECONDS=1)
    pay(partner_headers, x_async=dripping_receiver)
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


# -- the SSRF guard end to end (the matrix is tests/infra/test_http.py's) -----------------------


def test_a_refused_address_is_never_connected_to(
    make_app, partner_headers, example_bill, pay, run_sql, canary, connect_spy
):
    """Private networks not allowed (production): a callback to loopback is refused before
    any connection, recorded as refused after one attempt, and the canary sees nothing."""
    port, hits = canary
    guarded = make_app(WEBHOOK_ALLOW_PRIVATE_NETWORKS=False)
    pay(partner_headers, x_async=f"http://127.0.0.1:{port}/")
    assert deliver_pending(guarded, run_sql) == ["refused"]
    assert connect_spy.seen == []  # refused before any connection attempt
    assert hits() == 0
    ((status, attempts, error),) = run_sql("select status, attempts, last_error from webhook_delivery")
    assert (status, attempts) == ("refused", 1)
    assert error.startswith("refused: ") and "127.0.0.1 is a loopback address" in error
    assert run_sql("select http_status from webhook_attempt") == [(None,)]


def test_loopback_is_delivered_when_private_networks_are_allowed(
    make_app, partner_headers, example_bill, pay, receiver, run_sql
):
    app = make_app(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True)
    pay(partner_headers, x_async=receiver.url())
    assert deliver_pending(app, run_sql) == ["delivered"]
    assert [c["json"]["status"] for c in receiver.calls] == ["created"]
    assert run_sql("select status, attempts, last_error from webhook_delivery") == [("delivered", 1, None)]
    assert run_sql("select http_status, error from webhook_attempt") == [(200, None)]
