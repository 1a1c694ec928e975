"""The guarded HTTP client's side of an exchange (pdam/infra/http.py): answers it cannot
use, connections the receiver closes, and TLS. Receivers here are raw sockets that answer
exactly the bytes a test gives them, so nothing is tidied up by an HTTP server library.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pdam.infra import http
from tests.fixtures.certificates import self_signed
from tests.fixtures.network import with_sender

BODY, HEADERS = b'{"status":"accepted"}', {"Content-Type": "application/json"}
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Scripted:
    """A loopback receiver: each connection reads requests and answers them from ``answers``
    in turn (bytes; ``None``: close the connection instead of answering; ``(bytes,)``: answer,
    then close it; a function of the socket: it answers, then the connection closes). ``peers`` holds each connection's client port, once per request."""

    def __init__(self, answers: list[bytes | None], tls: ssl.SSLContext | None = None):
        self.answers, self.tls, self.peers, self.heads = list(answers), tls, [], []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, (_, port) = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(conn, port), daemon=True).start()

    def _talk(self, conn: socket.socket, port: int) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            with conn:
                while (head := self._request(conn)) is not None:
                    self.peers.append(port)
                    self.heads.append(head)
                    answer = self.answers.pop(0) if self.answers else OK
                    if answer is None:
                        return
                    if callable(answer):  # answers by itself, then the connection closes
                        answer(conn)
                        return
                    conn.sendall(answer[0] if isinstance(answer, tuple) else answer)
                    if isinstance(answer, tuple):
                        return
        except OSError:  # the client gave up, or refused the certificate
            pass

    @staticmethod
    def _request(conn: socket.socket) -> bytes | None:
        """A request's head, its body read; None when the connection ends."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(body) < length:
            body += conn.recv(65536)
        return head

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def scripted():
    made: list[Scripted] = []

    def make(*answers: bytes | None, tls: ssl.SSLContext | None = None) -> Scripted:
        made.append(Scripted(list(answers), tls))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def attempts(url: str, count: int, timeout: float = 2) -> list[http.Outcome]:
    """``count`` attempts through one Sender, on one event loop."""

    async def sends(sender):
        return [await sender.send(url, BODY, HEADERS, timeout=timeout) for _ in range(count)]

    return with_sender(sends)


def test_the_request_names_its_host_in_ascii_and_sends_header_values_as_latin_1(scripted, monkeypatch):
    receiver = scripted(OK)
    port = receiver.sock.getsockname()[1]
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *a, **k: real("127.0.0.1" if host == "bücher.example" else host, *a, **k),
    )
    url = f"http://Bücher.example:{port}/hook?x=1"
    assert attempts(url, 1) == [http.Outcome("delivered", 200)]
    lines = receiver.heads[0].split(b"\r\n")
    assert lines[0] == b"POST /hook?x=1 HTTP/1.1"
    assert f"host: xn--bcher-kva.example:{port}".encode() in [line.lower() for line in lines]
    receiver.answers.append(OK)
    with_token = asyncio.run(
        http.send(receiver.url, BODY, {"Authorization": "Token café"}, timeout=2, allow_private=True)
    )
    assert with_token.result == "delivered"
    assert b"Authorization: Token caf\xe9" in receiver.heads[1].split(b"\r\n")


def test_an_answer_that_is_not_http_is_a_connection_error_to_retry(scripted):
    receiver = scripted(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    (outcome,) = attempts(receiver.url, 1)
    assert outcome.result == "retry" and outcome.error.startswith("connection error: RemoteProtocolError")


def test_a_connection_closed_without_an_answer_is_retried(scripted):
    receiver = scripted(None)
    (outcome,) = attempts(receiver.url, 1)
    assert outcome.result == "retry" and outcome.error.startswith("connection error")


def test_a_kept_connection_the_receiver_closed_is_not_used_again(scripted):
    """The receiver closes after its first answer (``Connection: close``, or idle): the next
    attempt goes over a new connection and is delivered."""
    receiver = scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", OK)
    assert [o.result for o in attempts(receiver.url, 2)] == ["delivered", "delivered"]
    assert len(set(receiver.peers)) == 2


def test_a_kept_connection_closed_as_it_is_used_again_is_replaced_within_the_attempt(scripted):
    """The receiver closes an idle connection (its keep-alive time) just as the next callback
    goes over it: no byte comes back, and the attempt goes on over a new connection."""
    receiver = scripted((OK,), OK)

    async def twice(sender):
        first = await sender.send(receiver.url, BODY, HEADERS, timeout=2)
        (conn,) = sender._kept.values()
        conn.reader.at_eof = lambda: False  # the close not seen yet when it is used again
        return first, await sender.send(receiver.url, BODY, HEADERS, timeout=2)

    assert with_sender(twice) == (http.Outcome("delivered", 200), http.Outcome("delivered", 200))
    assert len(set(receiver.peers)) == 2


def test_a_kept_connection_that_breaks_mid_answer_is_not_sent_over_again(scripted):
    """Part of an answer came back: the receiver had the callback, so the attempt ends (a
    retry later), not a second send at once."""
    receiver = scripted(OK, (b"HTTP/1.1 200 O",))
    first, second = attempts(receiver.url, 2)
    assert first.result == "delivered"
    assert second.result == "retry" and second.error.startswith("connection error")
    assert len(receiver.peers) == 2 and len(set(receiver.peers)) == 1


def test_the_status_decides_when_the_body_then_breaks_off(scripted):
    receiver = scripted((b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial",), OK)
    assert [o.result for o in attempts(receiver.url, 2)] == ["delivered", "delivered"]
    assert len(set(receiver.peers)) == 2  # the broken connection was not kept


def test_a_body_dribbled_past_the_deadline_is_cut_and_the_status_stands(scripted):
    def dribble(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(30):
            conn.sendall(b"x")
            time.sleep(0.1)

    receiver = scripted(dribble)
    started = time.monotonic()
    assert attempts(receiver.url, 1, timeout=1) == [http.Outcome("delivered", 200)]
    assert time.monotonic() - started < 1.8


def test_a_head_dribbled_past_the_deadline_is_a_timeout(scripted):
    def dribble(conn):
        for byte in b"HTTP/1.1 200 OK\r\n":
            conn.sendall(bytes([byte]))
            time.sleep(0.1)

    receiver = scripted(dribble)
    (outcome,) = attempts(receiver.url, 1, timeout=1)
    assert outcome.result == "retry" and outcome.error == "timeout: no complete answer within 1 s"


def test_an_answer_of_unknown_length_is_delivered_and_its_connection_closed(scripted):
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    receiver = scripted(chunked, OK)
    assert [o.result for o in attempts(receiver.url, 2)] == ["delivered", "delivered"]
    assert len(set(receiver.peers)) == 2


def test_a_failures_answer_is_cut_to_a_snippet_and_its_connection_kept(scripted):
    text = b"busy " * 100
    receiver = scripted(b"HTTP/1.1 503 Busy\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text), OK)
    busy, ok = attempts(receiver.url, 2)
    assert busy == http.Outcome("retry", 503, "HTTP 503: " + text[: http.SNIPPET_BYTES].decode().strip())
    assert ok.result == "delivered" and len(set(receiver.peers)) == 1


def test_an_interim_answer_is_passed_over(scripted):
    receiver = scripted(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
    assert attempts(receiver.url, 1) == [http.Outcome("delivered", 200)]


# -- TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Path:
    """A self-signed certificate for 127.0.0.1 (and its key) in one PEM file."""
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))])
    cert = self_signed(
        key, "pdam test receiver", (san, False), (x509.BasicConstraints(ca=True, path_length=None), True)
    )
    path = tmp_path_factory.mktemp("tls") / "receiver.pem"
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


@pytest.fixture
def tls_receiver(scripted, certificate):
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(certificate)
    return scripted(OK, OK, tls=server)


def test_a_certificate_the_system_does_not_trust_is_refused(tls_receiver):
    (outcome,) = attempts(tls_receiver.url, 1)
    assert outcome.result == "retry" and "CERTIFICATE_VERIFY_FAILED" in outcome.error
    assert tls_receiver.peers == []  # nothing was sent


def test_a_trusted_certificate_carries_the_callback_over_one_connection(
    tls_receiver, certificate, monkeypatch
):
    trusting = ssl.create_default_context(cafile=certificate)
    monkeypatch.setattr(http, "_tls_context", lambda: trusting)
    assert [o.result for o in attempts(tls_receiver.url, 2)] == ["delivered", "delivered"]
    assert len(tls_receiver.peers) == 2 and len(set(tls_receiver.peers)) == 1


def test_a_certificate_for_another_host_is_refused(scripted, certificate, monkeypatch):
    """The name checked is the URL's host: the certificate names 127.0.0.1, the URL says
    localhost (resolving to it, private networks allowed)."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(certificate)
    receiver = scripted(OK, tls=server)
    monkeypatch.setattr(http, "_tls_context", lambda: ssl.create_default_context(cafile=certificate))
    (outcome,) = attempts(receiver.url.replace("127.0.0.1", "localhost"), 1)
    assert outcome.result == "retry" and "CERTIFICATE_VERIFY_FAILED" in outcome.error
    assert receiver.peers == []
