"""The client's address (contract 14.3): the socket's peer, or the ``X-Forwarded-For``
entry a trusted proxy added, never a header an untrusted client sent.

Trusted proxies are ``FORWARDED_ALLOW_IPS`` (gunicorn's setting and environment variable,
the same value: comma-separated addresses or networks, ``*`` for any; default
``127.0.0.1,::1``, gunicorn's). When the peer is trusted, ``X-Forwarded-For`` is read from
the right: each trusted hop is skipped, the first untrusted one is the client (what a
client wrote on the left of its own request is never reached). Anything unreadable where an
address is expected gives no address: an allow-list then refuses the request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def trusted_proxies(value: str | None) -> tuple[Network, ...] | None:
    """``FORWARDED_ALLOW_IPS`` parsed: the networks, or None for ``*`` (any peer)."""
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    if "*" in items:
        return None
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _address(text: str | None) -> Address | None:
    try:
        address = ipaddress.ip_address((text or "").strip().strip("[]"))
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _trusted(address: Address, proxies: tuple[Network, ...] | None) -> bool:
    return proxies is None or any(address in network for network in proxies)


def client_address(environ: Mapping, proxies: tuple[Network, ...] | None) -> str | None:
    """The request's client address (None when it cannot be told)."""
    peer = _address(environ.get("REMOTE_ADDR"))
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
    if peer is None or not forwarded.strip() or not _trusted(peer, proxies):
        return None if peer is None else str(peer)
    hop = peer
    for entry in reversed(forwarded.split(",")):
        hop = _address(entry)
        if hop is None:
            return None
        if not _trusted(hop, proxies):
            return str(hop)
    return str(hop)  # every hop a trusted proxy: the leftmost is the client


def of_request() -> str | None:
    """The current request's client address (``FORWARDED_ALLOW_IPS`` parsed once per app)."""
    from flask import current_app, request

    proxies = current_app.extensions.get("pdam.trusted_proxies", ())
    if proxies == ():
        proxies = current_app.extensions["pdam.trusted_proxies"] = trusted_proxies(
            current_app.config["FORWARDED_ALLOW_IPS"]
        )
    return client_address(request.environ, proxies)
