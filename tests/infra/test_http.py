"""The guarded HTTP client (pdam/infra/http.py): the SSRF matrix, as unit tests.

No database and no app: ``refusal`` over a matrix of addresses; ``send`` over URLs that
spell refused addresses every way (checked on the address the name resolves to, before any
connection: a canary listener and a spy on ``socket.connect`` see nothing); the guarded
connection's name resolution with ``socket.getaddrinfo`` patched (a name resolving to any
refused address is refused whole); redirects never followed. Two end-to-end deliveries
(one refused, one allowed) are in tests/jobs/test_webhooks.py.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from werkzeug import Response

from pdam.infra import http
from tests.conftest import HOOK
from tests.fixtures.network import with_sender

BODY, HEADERS = b'{"status":"accepted"}', {"Content-Type": "application/json"}


def send(url: str, allow_private: bool = False, headers: dict = HEADERS) -> http.Outcome:
    """One attempt (``http.send``) on an event loop of its own."""
    return asyncio.run(http.send(url, BODY, headers, timeout=2, allow_private=allow_private))


# -- refusal(ip): the matrix of addresses ------------------------------------------------------

REFUSED = {
    # IPv4
    "127.0.0.1": "127.0.0.1 is a loopback address",
    "127.255.255.254": "127.255.255.254 is a loopback address",
    "0.0.0.0": "0.0.0.0 is the unspecified address",
    "0.1.2.3": "0.1.2.3 is a private address",  # "this network"
    "10.0.0.1": "10.0.0.1 is a private address",
    "172.16.0.1": "172.16.0.1 is a private address",
    "172.31.255.255": "172.31.255.255 is a private address",
    "192.168.1.1": "192.168.1.1 is a private address",
    "169.254.169.254": "169.254.169.254 is a link-local address",  # cloud metadata
    "100.64.0.1": "100.64.0.1 is not a public address",  # carrier-grade NAT
    "224.0.0.1": "224.0.0.1 is a multicast address",
    "239.255.255.250": "239.255.255.250 is a multicast address",
    "240.0.0.1": "240.0.0.1 is a reserved address",
    "255.255.255.255": "255.255.255.255 is a reserved address",
    "192.0.2.1": "192.0.2.1 is a private address",  # documentation
    "198.18.0.1": "198.18.0.1 is a private address",  # benchmarking
    "198.51.100.7": "198.51.100.7 is a private address",
    "203.0.113.9": "203.0.113.9 is a private address",
    # IPv6
    "::1": "::1 is a loopback address",
    "::": ":: is the unspecified address",
    "fc00::1": "fc00::1 is a unique-local address",
    "fd12:3456::1": "fd12:3456::1 is a unique-local address",
    "fe80::1": "fe80::1 is a link-local address",
    "fec0::1": "fec0::1 is a site-local address",
    "ff02::1": "ff02::1 is a multicast address",
    "2001:db8::1": "2001:db8::1 is a private address",  # documentation
    "100::1": "100::1 is a reserved address",  # discard-only
    "::127.0.0.1": "::7f00:1 is a reserved address",  # IPv4-compatible (deprecated)
    # IPv4 inside IPv6: judged as the IPv4 address reached
    "::ffff:127.0.0.1": "127.0.0.1 is a loopback address (inside ::ffff:7f00:1)",
    "::ffff:10.0.0.1": "10.0.0.1 is a private address (inside ::ffff:a00:1)",
    "::ffff:169.254.169.254": "169.254.169.254 is a link-local address (inside ::ffff:a9fe:a9fe)",
    "2002:7f00:1::": "127.0.0.1 is a loopback address (inside 2002:7f00:1::)",  # 6to4
    "2002:a00:1::": "10.0.0.1 is a private address (inside 2002:a00:1::)",
    "64:ff9b::a00:1": "10.0.0.1 is a private address (inside 64:ff9b::a00:1)",  # NAT64
    "64:ff9b::7f00:1": "127.0.0.1 is a loopback address (inside 64:ff9b::7f00:1)",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2":  # Teredo, client 192.0.2.45
    "192.0.2.45 is a private address (inside 2001:0:4136:e378:8000:63bf:3fff:fdd2)",
}
PUBLIC = [
    "93.184.216.34", "8.8.8.8", "172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1",
    "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34", "2002:5db8:d822::",
]  # fmt: skip


@pytest.mark.parametrize("address, reason", REFUSED.items(), ids=list(REFUSED))
def test_refused_addresses(address, reason):
    assert http.refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert http.refusal(ipaddress.ip_address(address)) is None


def test_ipv4_inside_ipv6_is_judged_as_what_it_reaches():
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34"):
        assert http.refusal(ipaddress.ip_address(address)) is None
    for address in ("2002:7f00:1::", "64:ff9b::a00:1", "::ffff:10.0.0.1"):  # IPv4 inside IPv6
        assert http.refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.0.0.1", "192.168.1.1", "fc00::1"])
def test_private_networks_allowed_take_loopback_and_private(address):
    assert http.private_network_refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address", ["169.254.169.254", "169.254.1.1", "fe80::1", "::ffff:169.254.169.254"])
def test_private_networks_allowed_still_refuse_link_local(address):
    """Contract 15.1: the metadata ranges are refused always, even where tests allow private
    networks (a cloud's instance metadata, and its credentials, answer on 169.254.169.254)."""
    ip = ipaddress.ip_address(address)
    assert http.private_network_refusal(ip) == f"{ip} is a link-local address"


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "224.0.0.1", "ff02::1"])
def test_private_networks_allowed_still_refuse_what_is_never_a_receiver(address):
    assert (
        http.private_network_refusal(ipaddress.ip_address(address)) == f"{address} is not a unicast address"
    )


# -- send(url): every spelling of a refused address, refused before any connection --------------

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


@pytest.mark.parametrize("template, reason", SSRF_URLS, ids=[u for u, _ in SSRF_URLS])
def test_refused_urls_are_never_connected_to(canary, connect_spy, template, reason):
    port, hits = canary
    outcome = send(template.format(port=port))
    assert outcome.result == "refused" and outcome.http_status is None
    assert outcome.error.startswith("refused: ") and reason in outcome.error
    assert connect_spy.seen == []  # refused before any connection attempt
    assert hits() == 0


def test_allowed_private_networks_still_refuse_the_unspecified_address(connect_spy):
    outcome = send("http://0.0.0.0:9/", allow_private=True)
    assert outcome.result == "refused" and "0.0.0.0 is not a unicast address" in outcome.error
    assert connect_spy.seen == []


# -- the guarded connection's name resolution (getaddrinfo patched) ------------------------------


@pytest.fixture
def resolve(monkeypatch):
    """``resolve("callback.example.com", "93.184.216.34", "10.0.0.1")``: that name resolves to
    those addresses (every other name as usual); ``resolve.calls`` counts its look-ups."""
    real = socket.getaddrinfo
    names: dict[str, list[str]] = {}

    def fake(host, port, *args, **kwargs):
        if host not in names:
            return real(host, port, *args, **kwargs)
        fake.calls += 1
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in names[host]
        ]

    def add(name: str, *addresses: str) -> None:
        names[name] = list(addresses)

    fake.calls = 0
    add.calls = lambda: fake.calls
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return add


@pytest.mark.parametrize(
    "addresses, reason",
    [
        (["10.0.0.1"], "10.0.0.1 is a private address"),
        (["93.184.216.34", "10.0.0.1"], "10.0.0.1 is a private address"),  # one bad address is enough
        (["10.0.0.1", "93.184.216.34"], "10.0.0.1 is a private address"),  # whatever its place
        (["2606:2800:220:1:248:1893:25c8:1946", "::1"], "::1 is a loopback address"),
        (["93.184.216.34", "::ffff:169.254.169.254"], "169.254.169.254 is a link-local address"),
        (["fe80::1%eth0"], "fe80::1 is a link-local address"),  # with a scope id
    ],
)
def test_a_name_resolving_to_any_refused_address_is_refused_whole(resolve, connect_spy, addresses, reason):
    resolve("callback.example.com", *addresses)
    outcome = send(f"http://callback.example.com{HOOK}")
    assert outcome.result == "refused"
    assert (
        outcome.error.startswith("refused: callback.example.com is not called: ") and reason in outcome.error
    )
    assert connect_spy.seen == []  # not even to its public addresses


def test_every_refused_address_of_a_name_is_named(resolve, connect_spy):
    resolve("callback.example.com", "10.0.0.1", "127.0.0.1", "10.0.0.1")
    outcome = send(f"http://callback.example.com{HOOK}")
    assert outcome.error == (
        "refused: callback.example.com is not called: 10.0.0.1 is a private address; 127.0.0.1 is a loopback address"
    )
    assert connect_spy.seen == []


def test_a_public_name_connects_to_the_address_checked(resolve, connect_spy):
    """Resolved once, and the connection goes to that very address (no second look-up that
    DNS rebinding could answer differently); the spy refuses it, so nothing leaves the host."""
    resolve("callback.example.com", "93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    outcome = send(f"http://callback.example.com:8080{HOOK}")
    assert resolve.calls() == 1
    assert connect_spy.seen == [("93.184.216.34", 8080), ("2606:2800:220:1:248:1893:25c8:1946", 8080)]
    assert outcome.result == "retry" and outcome.error.startswith("connection error")


def test_private_networks_allowed_connect_to_a_name_on_loopback(resolve, receiver):
    resolve("callback.example.com", "127.0.0.1")
    url = f"http://callback.example.com:{receiver.server.port}{HOOK}"
    assert send(url).result == "refused"
    assert send(url, True, {**HEADERS, "X-Event-Id": "e1"}) == http.Outcome("delivered", 200)
    assert [c["raw"] for c in receiver.calls] == [BODY]


def test_a_name_that_does_not_resolve_is_retried(connect_spy):
    outcome = send(f"http://no-such-host.invalid{HOOK}")
    assert outcome.result == "retry" and outcome.error.startswith("connection error")
    assert connect_spy.seen == []


# -- redirects are never followed ----------------------------------------------------------------


def test_redirect_from_a_public_looking_url_is_not_followed(
    resolve, receiver, canary, connect_spy, monkeypatch
):
    """callback.example.com (resolved to the loopback redirector here, the guard relaxed for
    that first hop only) answers 302 to the loopback canary: not followed."""
    port, hits = canary
    receiver.answer = lambda call: Response("", 302, headers={"Location": f"http://127.0.0.1:{port}/"})
    redirector = ("127.0.0.1", receiver.server.port)
    resolve("callback.example.com", "127.0.0.1")
    first_hop = {"allowed": False}
    real_refusal = http.refusal

    def relaxed_once(ip):
        if not first_hop["allowed"] and str(ip) == "127.0.0.1":
            first_hop["allowed"] = True
            return None
        return real_refusal(ip)

    monkeypatch.setattr(http, "refusal", relaxed_once)
    connect_spy.allowed = {redirector}
    outcome = send(
        f"http://callback.example.com:{receiver.server.port}{HOOK}", False, {**HEADERS, "X-Event-Id": "e1"}
    )
    assert outcome == http.Outcome("refused", 302, f"redirect to http://127.0.0.1:{port}/ not followed")
    assert connect_spy.seen == [redirector]
    assert hits() == 0
    assert len(receiver.calls) == 1


def test_redirect_not_followed_even_when_private_networks_are_allowed(receiver, canary):
    port, hits = canary
    receiver.answer = lambda call: Response("", 307, headers={"Location": f"http://127.0.0.1:{port}/"})
    outcome = send(receiver.url(), True, {**HEADERS, "X-Event-Id": "e1"})
    assert outcome.result == "refused" and outcome.http_status == 307
    assert hits() == 0 and len(receiver.calls) == 1


# -- kept-alive connections (a drain's Sender) -----------------------------------------------


class _KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: answers ``server.answers`` in turn ((delay, body); 200)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        delay, body = self.server.answers.pop(0) if self.server.answers else (0, b"ok")
        self.server.peers.append(self.client_address[1])
        time.sleep(delay)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def keep_alive():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveHandler)
    server.daemon_threads = True
    server.answers, server.peers = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield server
    server.shutdown()
    server.server_close()


def test_a_sender_keeps_its_connection_between_attempts(keep_alive):
    async def three(sender):
        return [(await sender.send(keep_alive.url, BODY, HEADERS, timeout=2)).result for _ in range(3)]

    assert with_sender(three) == ["delivered"] * 3
    assert len(set(keep_alive.peers)) == 1
    send(keep_alive.url, allow_private=True)  # a one-shot attempt: a connection of its own
    assert len(set(keep_alive.peers)) == 2


def test_a_kept_connection_is_still_bounded_by_each_attempts_deadline(keep_alive):
    keep_alive.answers = [(0, b"ok"), (3, b"late"), (0, b"ok")]

    async def scenario(sender):
        assert (await sender.send(keep_alive.url, BODY, HEADERS, timeout=1)).result == "delivered"
        started = time.monotonic()
        late = await sender.send(keep_alive.url, BODY, HEADERS, timeout=1)
        assert time.monotonic() - started < 1.8
        assert late.result == "retry" and late.error.startswith("timeout")
        # a new connection
        assert (await sender.send(keep_alive.url, BODY, HEADERS, timeout=1)).result == "delivered"

    with_sender(scenario)
    assert len(set(keep_alive.peers)) == 2


def test_a_long_answer_is_not_read_to_keep_its_connection(keep_alive):
    keep_alive.answers = [(0, b"x" * (http.KEEP_ALIVE_DRAIN_BYTES + 1)), (0, b"ok")]

    async def twice(sender):
        return [(await sender.send(keep_alive.url, BODY, HEADERS, timeout=2)).result for _ in range(2)]

    assert with_sender(twice) == ["delivered"] * 2
    assert len(set(keep_alive.peers)) == 2
