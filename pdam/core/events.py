"""Payment events on the wire: rendered by the edge that owns the callback's protocol.

The core records an event (``webhooks.record``) and the job server sends it
(``jobs/webhooks.py``) without knowing any wire format: each edge that takes callbacks
registers its ``Protocol`` under a name when it is imported (``register``), and a
payment keeps the name of the protocol its callback came through
(``Payment.callback_protocol``). A process that records or sends events must have
imported those edges: the web app does by building its blueprints, the job server by
``pdam.load_edges()`` when it starts (the edges are named in ``pdam.EDGES``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from typing import Protocol as Interface

from . import errors
from .records import Payment


class Protocol(Interface):
    """What an edge gives for its callbacks."""

    def body(self, payment: Payment, event: str) -> dict:
        """The callback body of ``event`` for ``payment`` (stored as JSON, sent by ``render``)."""

    def render(self, body: dict) -> bytes:
        """The exact bytes sent (and signed) for a stored body."""

    def headers(self, delivery: Any, raw_body: bytes, now: dt.datetime) -> dict[str, str]:
        """The headers of one attempt of ``delivery`` (a ``webhooks.Delivery``: its secrets
        opened)."""


class UnknownProtocol(errors.PdamError):
    """No edge registered this callback protocol (is its module in pdam.EDGES?)"""


_registry: dict[str, Protocol] = {}


def register(name: str, protocol: Protocol) -> None:
    """Make ``protocol`` render and send the events of callbacks taken under ``name``
    (again with the same object: nothing changes; another one replaces it)."""
    _registry[name] = protocol


def protocol(name: str | None) -> Protocol:
    """The protocol registered under ``name``; UnknownProtocol when none is."""
    found = _registry.get(name) if name else None
    if found is None:
        raise UnknownProtocol(
            f"no edge registered the callback protocol {name!r} (registered: {', '.join(sorted(_registry)) or 'none'})"
        )
    return found


def registered() -> tuple[str, ...]:
    return tuple(sorted(_registry))
