"""Contract 15.1: a partner's stalled receiver. Posting runs on slots of its own, callbacks on
theirs (jobs/worker.py ``bulkheads``), and a receiver has at most ``HOST_LANES`` deliveries
in flight (core/webhooks.py ``lane_of``): while one receiver never answers, every other
payment is posted within seconds and another partner's callbacks go out on time."""

from __future__ import annotations

import select
import socket
import threading
import time

import pytest

from pdam.core import webhooks
from tests.factories import wait_for

STALLED = 10  # payments whose receiver never answers


class NeverAnswers:
    """A loopback receiver that accepts connections, reads, and never answers; it counts
    the connections open at once (a delivery in flight holds one)."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.setblocking(False)
        self.open: list[socket.socket] = []
        self.accepted = 0
        self.most_at_once = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}/cb"

    def _run(self):
        while not self._stop.is_set():
            readable, _, _ = select.select([self.server, *self.open], [], [], 0.05)
            for s in readable:
                if s is self.server:
                    conn, _ = self.server.accept()
                    self.open.append(conn)
                    self.accepted += 1
                else:
                    try:
                        data = s.recv(65536)
                    except OSError:
                        data = b""
                    if not data:  # the sender gave up (its timeout): no longer in flight
                        self.open.remove(s)
                        s.close()
            self.most_at_once = max(self.most_at_once, len(self.open))

    def close(self):
        self._stop.set()
        self._thread.join(5)
        for s in [self.server, *self.open]:
            s.close()


@pytest.fixture
def never_answers():
    receiver = NeverAnswers()
    yield receiver
    receiver.close()


def test_receiver_of_a_payment_callbacks_share_a_lane():
    url = "https://Hooks.Example/cb"
    assert webhooks.receiver_of(url) == "hooks.example:443"
    assert webhooks.receiver_of("http://[::1]:8080/x") == "[::1]:8080"
    lanes = {webhooks.lane_of(pid, url) for pid in range(100)}
    assert len(lanes) == webhooks.HOST_LANES
    assert webhooks.lane_of(7, url) == webhooks.lane_of(7, url + "?other")  # same receiver, same lane
    assert webhooks.lane_of(7, url) != webhooks.lane_of(7, "https://other.example/cb")


def test_a_receiver_that_never_answers_holds_neither_posting_nor_other_callbacks(
    start_worker, pay, partner_headers, auth_for, seed_bills, receiver, never_answers, run_sql, tmp_path
):
    stalled_cids = [f"01{i:08d}" for i in range(STALLED)]
    for cid in [*stalled_cids, "0200000001", "0200000002", "0300000001"]:
        seed_bills.simple(cid, ["202401"])
    for i, cid in enumerate(stalled_cids):  # partner 00: its receiver never answers
        pay(partner_headers, cid, pid=f"stall-{i}", x_async=never_answers.url)
    other = auth_for("01", "BANK2")
    start_worker(
        log=tmp_path / "worker.log",
        WORKER_CONCURRENCY=2,
        WEBHOOK_CONCURRENCY=4,
        WEBHOOK_TIMEOUT_SECONDS=30,
        WEBHOOK_RETRY_SECONDS=1,
    )
    wait_for(lambda: never_answers.accepted >= webhooks.HOST_LANES, timeout=20)
    time.sleep(1)  # the stalled receiver now holds every lane it has
    started = time.monotonic()
    pay(other, "0200000001", pid="other-1", x_async=receiver.url())  # partner 01: a receiver that answers
    pay(other, "0200000002", pid="other-2", x_async=receiver.url())
    pay(partner_headers, "0300000001", pid="no-callback")  # partner 00 again, no callback

    def posted() -> bool:
        rows = run_sql("select pid from payment where status <> 'created'")
        return {"other-1", "other-2", "no-callback"} <= {r[0] for r in rows}

    wait_for(posted, timeout=10)
    posted_after = time.monotonic() - started
    wait_for(lambda: len(receiver.calls) == 4, timeout=10)
    delivered_after = time.monotonic() - started
    assert posted_after < 5, posted_after
    assert delivered_after < 5, delivered_after
    assert [c["json"]["status"] for c in receiver.calls if c["json"]["data"]["pid"] == "other-1"] == [
        "created",
        "accepted",
    ]
    # Every stalled payment is posted too: posting never waited for its callbacks.
    wait_for(lambda: run_sql("select count(*) from payment where status = 'created'") == [(0,)], timeout=10)
    # The stalled receiver never had more than its lanes in flight.
    assert never_answers.most_at_once <= webhooks.HOST_LANES, never_answers.most_at_once
    assert run_sql("select count(*) from webhook_delivery where status = 'delivered'") == [(4,)]
