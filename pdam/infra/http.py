"""An HTTP client that calls only the addresses it may: the webhook sender's.

asyncio streams and h11 (HTTP/1.1) on connections made here: the host is resolved once and
every address it resolves to is checked before connecting; a host name that resolves to any
refused address (loopback, private, link-local, multicast, reserved, or an IPv4 address of
those inside IPv6) is refused whole, unless private networks are allowed. The address
checked is the address connected to, whatever way the URL spells it, so DNS rebinding does
not help. Redirects are not followed, proxies from the environment are not used, and one
time limit bounds the whole attempt (connection, request and answer: a receiver that
dribbles its answer gets no longer). A ``Sender`` keeps its connections alive between
attempts (a callback lane's drain sends its callbacks over one); ``send`` is one attempt on a
connection of its own. It runs on the caller's event loop (the name look-up alone on the
loop's executor): no thread per attempt.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11
import urllib3
from urllib3.util import parse_url

#: At most this much of a non-2xx answer is kept in the outcome's error.
SNIPPET_BYTES = 300


class AddressRefused(Exception):
    """The URL leads to an address the service does not call (not an OSError, so the
    HTTP client does not turn it into a connection error)."""


UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
REFUSED_KINDS = (
    ("loopback", "a loopback address"),
    ("unspecified", "the unspecified address"),
    ("link_local", "a link-local address"),
    ("multicast", "a multicast address"),
    ("reserved", "a reserved address"),
    ("private", "a private address"),
)


def refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why the service must not call ``ip`` (None: a public address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address wrapped in IPv6 is judged as the IPv4 address it reaches.
        embedded = _embedded(ip)
        if embedded is not None:
            reason = refusal(embedded)
            if reason:
                return f"{reason} (inside {ip})"
            if ip.ipv4_mapped:  # a mapped address reaches exactly that IPv4 address
                return None
        if ip in UNIQUE_LOCAL:
            return f"{ip} is a unique-local address"
        if ip.is_site_local:
            return f"{ip} is a site-local address"
    for kind, label in REFUSED_KINDS:
        if getattr(ip, f"is_{kind}"):
            return f"{ip} is {label}"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def _embedded(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
    if embedded is None and ip in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64
        embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return embedded


def private_network_refusal(ip) -> str | None:
    """With WEBHOOK_ALLOW_PRIVATE_NETWORKS: loopback and private networks are allowed; the
    addresses that are never a receiver (unspecified, multicast) still are not, nor the
    link-local ranges (169.254.0.0/16, fe80::/10: where clouds serve instance metadata and
    its credentials), not even inside an IPv6 address."""
    if ip.is_unspecified or ip.is_multicast:
        return f"{ip} is not a unicast address"
    inner = _embedded(ip)
    if ip.is_link_local or (inner is not None and inner.is_link_local):
        return f"{ip} is a link-local address"
    return None


def check_for(allow_private: bool):
    """The rule an address is judged by: ``refusal`` in production, ``private_network_refusal``
    where WEBHOOK_ALLOW_PRIVATE_NETWORKS is set."""
    return private_network_refusal if allow_private else refusal


#: Names that are loopback by definition (RFC 6761 6.3), judged as the address they reach.
LOOPBACK_NAMES = ("localhost", "localhost.")
LEGACY_IPV4_RE = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host written as an address reaches without any DNS: ``[v6]`` (a zone
    dropped), dotted IPv4, the legacy forms ``inet_aton`` (so the resolver) also reads
    (``2130706433``, ``0x7f.1``), and ``localhost``; None for a host name."""
    host = host.strip("[]").split("%", 1)[0].lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return ipaddress.IPv4Address("127.0.0.1")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if LEGACY_IPV4_RE.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


@functools.lru_cache(maxsize=256)
def url_refusal(url: str, *, allow_private: bool) -> str | None:
    """Why the service does not call ``url``, from the URL alone (no DNS): not an absolute
    http(s) URL; credentials in it (``user:pass@``, read by either URL parser: they would
    be stored and shown to operators); a host written as an address the service does not
    call (``check_for``). One rule for the payment that gives the URL and the delivery
    (which then checks every address the host name resolves to as well). A function of its
    arguments alone: the answers for the last 256 URLs are kept."""
    try:
        parts = parse_url(url)
        split = urlsplit(url)
        split.port  # noqa: B018 - raises on a malformed port
    except (urllib3.exceptions.LocationParseError, ValueError):
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.host:
        return "only absolute http(s) URLs are called"
    if parts.auth is not None or "@" in split.netloc:
        return "credentials in the URL (user:password@) are not accepted"
    ip = literal_address(parts.host)
    if ip is not None:
        return check_for(allow_private)(ip)
    return None


def _address(info) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IP address of a ``getaddrinfo`` entry (an IPv6 scope id dropped)."""
    return ipaddress.ip_address(info[4][0].split("%", 1)[0])


@dataclass(frozen=True)
class Outcome:
    """One attempt: ``result`` is delivered, refused or retry."""

    result: str
    http_status: int | None = None
    error: str | None = None


#: An answer's unread rest up to this size is read so that its connection can be kept;
#: a longer one (or one of unknown length) closes it.
KEEP_ALIVE_DRAIN_BYTES = 64 * 1024
#: Bytes asked of the socket at a time.
READ_BYTES = 64 * 1024


class Unreachable(Exception):
    """No connection to the receiver: its name does not resolve, or no address answered."""


async def connect(host: str, port: int, *, tls: bool, allow_private: bool) -> _Connection:
    """A connection to ``host``: resolved here, every address checked (``check_for``; one
    refused address refuses the name whole), and made to an address that was checked, in
    the resolver's order. Raises ``AddressRefused`` or ``Unreachable``."""
    loop = asyncio.get_running_loop()
    check = check_for(allow_private)
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Unreachable(f"cannot resolve {host}: {exc}") from exc
    refused = [reason for info in infos if (reason := check(_address(info)))]
    if refused:
        raise AddressRefused(f"{host} is not called: " + "; ".join(dict.fromkeys(refused)))
    last_error: OSError | None = None
    for family, socktype, proto, _canon, sockaddr in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, sockaddr)
            reader, writer = await asyncio.open_connection(
                sock=sock, ssl=_tls_context() if tls else None, server_hostname=host if tls else None
            )
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        except BaseException:  # the attempt's time is up (CancelledError)
            sock.close()
            raise
        return _Connection(reader, writer)
    raise Unreachable(f"cannot connect to {host}: {last_error or 'no address'}")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The system's trusted certificates, the host name checked (``ssl``'s defaults)."""
    return ssl.create_default_context()


class _Connection:
    """One HTTP/1.1 connection (h11's state machine over asyncio streams)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.http = h11.Connection(h11.CLIENT)
        self.received = False

    def reusable(self) -> bool:
        """Between two exchanges, not closed by the other side meanwhile."""
        return self.http.our_state is h11.IDLE and not self.reader.at_eof() and not self.writer.is_closing()

    def unanswered(self) -> bool:
        """Not a byte came back since the last request began."""
        return not self.received

    def close(self) -> None:
        self.writer.close()

    async def _event(self):
        while True:
            event = self.http.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(READ_BYTES)  # b"": closed
            self.received |= bool(data)
            self.http.receive_data(data)

    async def request(self, target: str, host: bytes, body: bytes, headers: dict) -> h11.Response:
        """POST ``body``; the answer's head (interim answers such as 100 Continue passed over).
        Header values go out as Latin-1, as http.client sends them (a partner's token is
        whatever its request carried)."""
        self.received = False
        request = h11.Request(
            method="POST",
            target=target,
            headers=[
                (b"Host", host),
                *((name, value.encode("latin-1")) for name, value in headers.items()),
                (b"Content-Length", b"%d" % len(body)),
            ],
        )
        self.writer.write(
            self.http.send(request) + self.http.send(h11.Data(data=body)) + self.http.send(h11.EndOfMessage())
        )
        await self.writer.drain()
        response = await self._event()
        while isinstance(response, h11.InformationalResponse):
            response = await self._event()
        if not isinstance(response, h11.Response):
            raise h11.RemoteProtocolError(f"no answer but {type(response).__name__}")
        return response

    async def body(self, response: h11.Response) -> bytes:
        """Up to SNIPPET_BYTES of a failure's body. A short answer (a known length up to
        KEEP_ALIVE_DRAIN_BYTES) is read whole and the connection made ready for the next
        exchange; any other is closed."""
        length = dict(response.headers).get(b"content-length")
        whole = length is not None and int(length) <= KEEP_ALIVE_DRAIN_BYTES
        wanted = 0 if 200 <= response.status_code < 300 else SNIPPET_BYTES
        kept = bytearray()
        while whole or len(kept) < wanted:
            event = await self._event()
            if not isinstance(event, h11.Data):
                break  # EndOfMessage
            kept += event.data[: max(0, wanted - len(kept))]
        if self.http.their_state is h11.DONE and self.http.our_state is h11.DONE:
            self.http.start_next_cycle()
        else:
            self.close()
        return bytes(kept)


def _authority(parts) -> bytes:
    """The Host header of a URL: its host in ASCII (IDNA for a name in another script, as
    the resolver and TLS see it), and its port when the URL gives one."""
    host = parts.hostname.encode("ascii") if parts.hostname.isascii() else parts.hostname.encode("idna")
    if b":" in host:
        host = b"[" + host + b"]"
    return host + (b":%d" % parts.port if parts.port else b"")


def _outcome(status: int, headers, snippet: bytes) -> Outcome:
    if 200 <= status < 300:
        return Outcome("delivered", http_status=status)
    if 300 <= status < 400:
        location = dict(headers).get(b"location", b"").decode("latin-1")
        return Outcome("refused", status, f"redirect to {location[:200]} not followed")
    text = snippet.decode("utf-8", "replace").strip()
    error = f"HTTP {status}: {text}" if text else f"HTTP {status}"
    return Outcome("refused" if status < 500 else "retry", status, error)


class Sender:
    """Sends attempts over kept-alive connections, one per receiver (scheme, host, port):
    a callback lane's drain sends its callbacks over one connection. Every connection is
    made through the guard (``connect``: the address connected to is the address checked);
    a kept one is used again only while the same Sender lives. ``close()`` (or ``with``)
    closes them."""

    def __init__(self, *, allow_private: bool):
        self.allow_private = allow_private
        self._kept: dict[tuple, _Connection] = {}

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for conn in self._kept.values():
            conn.close()
        self._kept.clear()

    async def send(self, url: str, raw_body: bytes, headers: dict, *, timeout: float) -> Outcome:
        """POST ``raw_body`` to ``url`` once, the whole attempt within ``timeout`` seconds:
        no redirects, no proxies, only addresses that pass the guard. A kept connection that
        the receiver closed as it was used (no answer at all) is replaced by a new one within
        the same attempt."""
        reason = url_refusal(url, allow_private=self.allow_private)
        if reason is not None:
            return Outcome("refused", error=f"refused: {reason}")
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        key = (parts.scheme, parts.hostname, port)
        conn = self._kept.pop(key, None)
        if conn is not None and not conn.reusable():
            conn.close()
            conn = None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                host = _authority(parts)
                if conn is not None:
                    try:
                        response = await conn.request(target, host, raw_body, headers)
                    except (OSError, h11.RemoteProtocolError):
                        if not conn.unanswered():
                            raise
                        # closed by the receiver as it was used again: once more on a new one
                        conn.close()
                        conn = None
                if conn is None:
                    conn = await connect(parts.hostname, port, tls=tls, allow_private=self.allow_private)
                    response = await conn.request(target, host, raw_body, headers)
        except AddressRefused as exc:
            return Outcome("refused", error=f"refused: {exc}")
        except Unreachable as exc:
            return Outcome("retry", error=f"connection error: {exc}")
        except TimeoutError:
            self._close(conn)
            what = "no complete answer" if conn is not None else f"no connection to {parts.hostname}"
            return Outcome("retry", error=f"timeout: {what} within {timeout} s")
        except (OSError, h11.RemoteProtocolError) as exc:
            self._close(conn)
            return Outcome("retry", error=f"connection error: {exc!r}")
        except BaseException:
            self._close(conn)
            raise
        # The status decides; a body that breaks off or is not over in time only closes the connection.
        try:
            async with asyncio.timeout_at(deadline):
                snippet = await conn.body(response)
        except (TimeoutError, OSError, h11.RemoteProtocolError):
            conn.close()
            snippet = b""
        except BaseException:
            conn.close()
            raise
        if conn.reusable():
            self._kept[key] = conn
        return _outcome(response.status_code, response.headers, snippet)

    @staticmethod
    def _close(conn: _Connection | None) -> None:
        if conn is not None:
            conn.close()


async def send(url: str, raw_body: bytes, headers: dict, *, timeout: float, allow_private: bool) -> Outcome:
    """One attempt on a connection of its own (``Sender.send``)."""
    with Sender(allow_private=allow_private) as sender:
        return await sender.send(url, raw_body, headers, timeout=timeout)
