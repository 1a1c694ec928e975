"""An HTTP client that calls only the addresses it may: the webhook sender's.

urllib3 on connections that resolve the host themselves and check every
address before connecting: a host name that resolves to any refused address
(loopback, private, link-local, multicast, reserved, or an IPv4 address of
those inside IPv6) is refused whole, unless private networks are allowed.
The address checked is the address connected to, whatever way the URL spells
it, so DNS rebinding does not help. Redirects are not followed, proxies from
the environment are not used, and one deadline bounds the whole attempt. A ``Sender``
keeps its connections alive between attempts (a callback lane's drain sends its callbacks
over one); ``send`` is one attempt on a connection of its own.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

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


class _GuardedConnectionMixin:
    """Resolve the host here, check every address, connect only to an allowed one."""

    def __init__(self, *args, allow_private: bool = False, deadline: Deadline | None = None, **kwargs):
        self.allow_private = allow_private
        self.deadline = deadline
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        host = self._dns_host.strip("[]")
        check = check_for(self.allow_private)
        try:
            infos = socket.getaddrinfo(host, self.port, socket.AF_UNSPEC, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise urllib3.exceptions.NameResolutionError(host, self, exc) from exc
        # Every address first: a name that leads anywhere refused is refused whole.
        refused = [reason for info in infos if (reason := check(_address(info)))]
        if refused:
            raise AddressRefused(f"{host} is not called: " + "; ".join(dict.fromkeys(refused)))
        last_error: OSError | None = None
        for family, socktype, proto, _canon, sockaddr in infos:
            if self.deadline is not None and self.deadline.expired:
                break
            sock = socket.socket(family, socktype, proto)
            try:
                for option in self.socket_options or ():  # urllib3's own, e.g. TCP_NODELAY
                    sock.setsockopt(*option)
                sock.settimeout(self.timeout)
                sock.connect(sockaddr)
                if self.deadline is not None:
                    self.deadline.watch(sock)
                return sock
            except OSError as exc:
                sock.close()
                last_error = exc
        if last_error is None or isinstance(last_error, TimeoutError):
            raise urllib3.exceptions.ConnectTimeoutError(
                self, f"connection to {host} timed out (connect timeout={self.timeout})"
            ) from last_error
        raise urllib3.exceptions.NewConnectionError(self, f"cannot connect to {host}: {last_error}")


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


def url_refusal(url: str, *, allow_private: bool) -> str | None:
    """Why the service does not call ``url``, from the URL alone (no DNS): not an absolute
    http(s) URL; credentials in it (``user:pass@``, read by either URL parser: they would
    be stored and shown to operators); a host written as an address the service does not
    call (``check_for``). One rule for the payment that gives the URL and the delivery
    (which then checks every address the host name resolves to as well)."""
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


class Deadline:
    """The whole attempt's time limit. A read timeout bounds each read, so a receiver
    that sends its answer a byte at a time would hold a worker slot for ever; when the
    time is up this shuts the connection down, and the blocked read returns."""

    def __init__(self, seconds: float):
        self.expired = False
        self._sock: socket.socket | None = None
        self._done = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        # A duplicate descriptor of the same connection: TLS takes the original over.
        with self._lock:
            self._sock = sock.dup()
            if self.expired:
                self._shutdown()

    def _shutdown(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed by the other side
            pass

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            if self._sock is not None:
                self._shutdown()

    def cancel(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._done = True
            if self._sock is not None:
                self._sock.close()


class GuardedHTTPConnection(_GuardedConnectionMixin, urllib3.connection.HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, urllib3.connection.HTTPSConnection):
    pass


class _AttemptDeadlineMixin:
    """A kept-alive pool: each attempt's ``deadline`` watches the connection it takes,
    whether made now (``_new_conn``) or kept from an earlier attempt."""

    deadline: Deadline | None = None

    def _get_conn(self, timeout=None):
        conn = super()._get_conn(timeout)
        conn.deadline = self.deadline
        if conn.sock is not None and self.deadline is not None:
            self.deadline.watch(conn.sock)
        return conn


class GuardedHTTPConnectionPool(_AttemptDeadlineMixin, urllib3.HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(_AttemptDeadlineMixin, urllib3.HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


@dataclass(frozen=True)
class Outcome:
    """One attempt: ``result`` is delivered, refused or retry."""

    result: str
    http_status: int | None = None
    error: str | None = None


def _snippet(response) -> str:
    try:
        data = response.read(SNIPPET_BYTES, decode_content=False)
    except Exception:  # the status is what matters; a broken body is not worth an error
        return ""
    return data.decode("utf-8", "replace").strip()


#: An answer's unread rest up to this size is read so that its connection can be kept;
#: a longer one (or one of unknown length) closes it.
KEEP_ALIVE_DRAIN_BYTES = 64 * 1024


class Sender:
    """Sends attempts over kept-alive connections, one per receiver (scheme, host, port):
    a callback lane's drain sends its callbacks over one connection. Every connection is
    made through the guard (the address connected to is the address checked); a kept one
    is used again only while the same Sender lives. ``close()`` (or ``with``) closes them."""

    def __init__(self, *, allow_private: bool):
        self.allow_private = allow_private
        self._pools: dict[tuple, urllib3.HTTPConnectionPool] = {}

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def _pool(self, parts, timeout: float) -> urllib3.HTTPConnectionPool:
        key = (parts.scheme, parts.host, parts.port, timeout)
        pool = self._pools.get(key)
        if pool is None:
            pool_cls = GuardedHTTPSConnectionPool if parts.scheme == "https" else GuardedHTTPConnectionPool
            pool = pool_cls(
                parts.host,
                parts.port,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                retries=False,
                maxsize=1,
                allow_private=self.allow_private,
            )
            self._pools[key] = pool
        return pool

    def send(self, url: str, raw_body: bytes, headers: dict, *, timeout: float) -> Outcome:
        """POST ``raw_body`` to ``url`` once, the whole attempt within ``timeout`` seconds:
        no redirects, no proxies, only addresses that pass the guard."""
        reason = url_refusal(url, allow_private=self.allow_private)
        if reason is not None:
            return Outcome("refused", error=f"refused: {reason}")
        parts = parse_url(url)
        deadline = Deadline(timeout)
        pool = self._pool(parts, timeout)
        pool.deadline = deadline
        try:
            response = pool.urlopen(
                "POST",
                parts.request_uri,
                body=raw_body,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
            )
            try:
                return _outcome(response)
            finally:
                _release(response)
        except AddressRefused as exc:
            return Outcome("refused", error=f"refused: {exc}")
        except urllib3.exceptions.NewConnectionError as exc:  # before TimeoutError: a subclass of it
            return Outcome("retry", error=f"connection error: {exc}")
        except (urllib3.exceptions.TimeoutError, TimeoutError) as exc:
            return Outcome("retry", error=f"timeout: {exc}")
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if deadline.expired:  # the connection was shut down by the deadline
                return Outcome("retry", error=f"timeout: no complete answer within {timeout} s")
            return Outcome("retry", error=f"connection error: {exc}")
        finally:
            deadline.cancel()
            pool.deadline = None


def _outcome(response) -> Outcome:
    status = response.status
    if 200 <= status < 300:
        return Outcome("delivered", http_status=status)
    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        return Outcome("refused", status, f"redirect to {location[:200]} not followed")
    snippet = _snippet(response)
    error = f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
    return Outcome("refused" if status < 500 else "retry", status, error)


def _release(response) -> None:
    """Give the connection back for the next attempt when the answer's rest is short and
    read in time, else close it. Never raises: the attempt's outcome is known already."""
    try:
        remaining = response.length_remaining
        if remaining is not None and remaining <= KEEP_ALIVE_DRAIN_BYTES:
            response.drain_conn()
        if response.length_remaining != 0:
            response.close()
    except Exception:
        with contextlib.suppress(Exception):
            response.close()
    finally:
        with contextlib.suppress(Exception):
            response.release_conn()


def send(url: str, raw_body: bytes, headers: dict, *, timeout: float, allow_private: bool) -> Outcome:
    """One attempt on a connection of its own (``Sender.send``)."""
    with Sender(allow_private=allow_private) as sender:
        return sender.send(url, raw_body, headers, timeout=timeout)
