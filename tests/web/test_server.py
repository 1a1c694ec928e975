"""The Procfile's gunicorn worker (pdam/web/server.py) against a real gunicorn: slow
clients hold no thread and are cut after the read timeout with a JSON log line (contract
15.1); gunicorn's own errors (414, 431, 400, 408) are JSON, SNAP's format under /snap/."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import urllib3

from pdam.web import server
from tests.factories import CID, ISSUER
from tests.fixtures.network import served

READ_TIMEOUT = 3


@pytest.fixture
def gunicorn_env(database_url, app_config, tmp_path):
    return {
        "DATABASE_URL": database_url,
        "JWT_PUBLIC_KEY": app_config["PDAM_JWT_PUBLIC_KEY"],
        "JWT_ISSUER": ISSUER,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "WEB_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
        "PARTNER_RATE_LIMIT": "0",
    }


@pytest.fixture(scope="module")
def error_server(module_database_url, keys, tmp_path_factory):
    """One gunicorn for the error formats' tests (they write nothing)."""
    env = {
        "DATABASE_URL": module_database_url,
        "JWT_PUBLIC_KEY": keys["ES256"]["public"],
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path_factory.mktemp("prom")),
        "WEB_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
    }
    with served(env, workers=1) as url:
        yield url


def raw(url: str, data: bytes, timeout: float = 5) -> tuple[int, dict, bytes]:
    """Send ``data`` on a connection of its own; the answer's status, headers and body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


# -- the reading rule, without a server -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "whole"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab", False),
        (b"POST / HTTP/1.1\r\ncontent-length : 4\r\n\r\nabcd", True),
        (b"POST / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", True),  # over the cap: the app's 413
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n", False),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", True),
        (b"GET /" + b"a" * (server.HEAD_CAP + 1), True),  # the parser answers 414 from it
    ],
)
def test_readiness(data, whole):
    assert server.readiness(data, 16 * 1024)[0] is whole


def test_expect_continue_is_seen():
    head = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
    assert server.readiness(head, 1024) == (False, True)


# -- against gunicorn -----------------------------------------------------------------------------


def dribble(url: str, data: bytes, stop: threading.Event, cut: list, at_once: bytes = b"") -> None:
    """Send ``at_once``, then ``data`` a byte every 0.25 s, and go on sending (never reading,
    never closing) until the server's close makes a send fail: a hostile client."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        started = time.monotonic()
        s.sendall(at_once)
        for byte in data:
            if stop.is_set():
                return
            try:
                s.sendall(bytes([byte]))
            except OSError:
                cut.append(time.monotonic() - started)
                return
            time.sleep(0.25)


def test_slow_clients_hold_no_thread_and_are_cut_and_logged(
    gunicorn_env, partner_headers, seed_bills, tmp_path
):
    """One worker with one thread (gthread would give each dribbler the thread), 6 header
    and 2 body dribblers: every inquiry meanwhile is answered within 1 s; the dribblers are
    cut after the read timeout, each with a JSON warning line."""
    seed_bills.simple(CID, ["202401"])
    log_path = tmp_path / "gunicorn.log"
    headers = (
        b"GET /tagihan/" + CID.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 200 + b"\r\n\r\n"
    )
    body = b"POST /tagihan/" + CID.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n"
    stop, cut = threading.Event(), []
    with served({**gunicorn_env, "WEB_THREADS": "1"}, workers=1, log_path=log_path) as url:
        dribblers = [threading.Thread(target=dribble, args=(url, headers, stop, cut)) for _ in range(6)]
        dribblers += [  # the head at once, then the body a byte at a time
            threading.Thread(target=dribble, args=(url, b"{" * 200, stop, cut, body)) for _ in range(2)
        ]
        for t in dribblers:
            t.start()
        time.sleep(1)
        times = []
        try:
            for _ in range(8):  # before, during and after the cuts (at READ_TIMEOUT)
                started = time.monotonic()
                res = urllib3.request(
                    "GET", f"{url}/tagihan/{CID}", headers=partner_headers, timeout=5, retries=False
                )
                times.append(time.monotonic() - started)
                assert res.status == 200, res.data
                time.sleep(0.6)
            for t in dribblers:
                t.join(timeout=READ_TIMEOUT + 5)
        finally:
            stop.set()
    assert max(times) < 1.0, times
    # A send fails once the close is known here: the cut is at READ_TIMEOUT, the failure a
    # send or two later.
    assert len(cut) == 8 and all(READ_TIMEOUT - 0.5 < s < READ_TIMEOUT + 3 for s in cut), cut
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    cuts = [line for line in lines if line["message"].startswith("incomplete request cut")]
    assert len(cuts) == 8 and all(line["level"] == "WARNING" and line["bytes_read"] > 0 for line in cuts)


def test_a_cut_request_is_answered_408_in_json(error_server):
    started = time.monotonic()
    status, headers, body = raw(
        error_server, b"GET /tagihan/x HTTP/1.1\r\nHost: x\r\n", timeout=READ_TIMEOUT + 5
    )
    assert READ_TIMEOUT - 0.5 < time.monotonic() - started < READ_TIMEOUT + 2.5
    assert status == 408 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": 408, "message": "Request Timeout"}


BIG = "a" * 70_000


@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        (f"GET /tagihan/{BIG} HTTP/1.1\r\nHost: x\r\n\r\n", 414, "Request URI Too Long"),
        (f"GET /tagihan/x?q={BIG} HTTP/1.1\r\nHost: x\r\n\r\n", 414, "Request URI Too Long"),
        (
            f"GET /tagihan/x HTTP/1.1\r\nHost: x\r\nX-Big: {BIG}\r\n\r\n",
            431,
            "Request Header Fields Too Large",
        ),
        ("GET /tagihan/x HTTP/1.1\r\nHost: x\r\n" + "X-A: b\r\n" * 200 + "\r\n", 431, None),
        ("GET /tagihan/x HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "Bad Request"),
        ("GET /tagihan/x HTTP/9.9\r\nHost: x\r\n\r\n", 400, "Bad Request"),
    ],
)
def test_gunicorns_own_errors_are_json(error_server, request_bytes, status, message):
    got, headers, body = raw(error_server, request_bytes.encode())
    assert got == status and headers["Content-Type"] == "application/json", body[:200]
    assert json.loads(body) == {"error": status, "message": message or json.loads(body)["message"]}
    assert b"<html" not in body


@pytest.mark.parametrize(
    ("request_bytes", "code"),
    [
        (f"POST /snap/v1.0/transfer-va/inquiry?{BIG} HTTP/1.1\r\nHost: x\r\n\r\n", "4142400"),
        (f"POST /snap/v1.0/transfer-va/payment HTTP/1.1\r\nHost: x\r\nX-Big: {BIG}\r\n\r\n", "4312500"),
        (f"POST /snap/v1.0/nowhere HTTP/1.1\r\nHost: x\r\nX-Big: {BIG}\r\n\r\n", "4310000"),
    ],
)
def test_snap_paths_get_snaps_format(error_server, request_bytes, code):
    got, headers, body = raw(error_server, request_bytes.encode())
    answer = json.loads(body)
    assert got == int(code[:3]) and headers["Content-Type"] == "application/json"
    assert answer["responseCode"] == code and answer["responseMessage"] and "X-TIMESTAMP" in headers


def test_expect_100_continue_gets_its_answer_before_the_body(error_server):
    """A client that waits for ``100 Continue`` before its body gets it while the worker
    still reads ahead (then the answer; gunicorn may send a second 100, which RFC 9110 15.2
    lets a client skip)."""
    host, port = error_server.removeprefix("http://").split(":")
    body = b'{"inq": "x"}'
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            b"POST /tagihan/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        assert s.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    final = answer[answer.rfind(b"HTTP/1.1 ") :]
    assert final.startswith(b"HTTP/1.1 401") and b'"error":401' in final.replace(b" ", b"")


def test_pipelined_requests_are_each_answered(error_server):
    host, port = error_server.removeprefix("http://").split(":")
    one = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(one + one + last[:20])
        time.sleep(0.3)
        s.sendall(last[20:])
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.count(b"HTTP/1.1 200") == 3
