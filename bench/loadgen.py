"""A small closed-loop HTTP/1.1 load generator on asyncio protocols.

Each client is one keep-alive connection that sends a request, waits for the
whole answer and sends the next one. Requests are bytes built in advance; a
response is parsed only as far as the status line and Content-Length (and a
header the caller asks for). There are no coroutines per request, so one
process drives a few thousand requests per second with a fraction of a core,
which matters on a two-core machine where the server shares the CPU.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Item = tuple[bytes, object]  # (request bytes, context handed back with the response)


@dataclass
class PhaseResult:
    requests: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    reconnects: int = 0
    exhausted: bool = False  # the phase ran out of requests before its deadline


def _count(r: PhaseResult, status: int, body: bytes, latency: float) -> None:
    r.requests += 1
    r.latencies.append(latency)
    if not 200 <= status < 300:
        _error(r, f"{status} {body[:200].decode(errors='replace')}")


def _error(r: PhaseResult, sample: str) -> None:
    r.errors += 1
    if len(r.error_samples) < 5:
        r.error_samples.append(sample)


def request(
    method: str, path: str, port: int, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Client(asyncio.Protocol):
    def __init__(self, phase: _Phase):
        self.phase = phase
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need = -1
        self.head_len = 0
        self.head = b""
        self.status = 0
        self.ctx: object = None
        self.t0 = 0.0
        self.busy = False
        self.closing = False

    def connection_made(self, transport):
        self.transport = transport
        self.phase.send_next(self)

    def data_received(self, data):
        buf = self.buf
        buf += data
        while True:
            if self.need < 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buf[:end]).lower()
                self.status = int(head[9:12])
                i = head.find(b"\r\ncontent-length:")
                if i < 0:
                    length = 0
                else:
                    j = head.find(b"\r\n", i + 2)
                    length = int(head[i + 17 : j if j >= 0 else len(head)])
                self.head, self.head_len = head, end + 4
                self.need = end + 4 + length
            if len(buf) < self.need:
                return
            body = bytes(buf[self.head_len : self.need]) if not 200 <= self.status < 300 else b""
            del buf[: self.need]
            self.need = -1
            self.phase.done(self, body)
            if not buf:
                return

    def connection_lost(self, exc):
        self.phase.lost(self)


class _Phase:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        port: int,
        items: Iterator[Item],
        deadline: float | None,
        on_response: Callable[[int, bytes, object], None] | None,
        clients: int,
    ):
        self.loop, self.port, self.items, self.deadline = loop, port, items, deadline
        self.on_response = on_response
        self.result = PhaseResult()
        self.active = clients
        self.finished = loop.create_future()
        self.start = time.perf_counter()
        self.last = self.start

    def send_next(self, c: _Client) -> None:
        now = time.perf_counter()
        item = None
        if self.deadline is None or now < self.deadline:
            item = next(self.items, None)
            if item is None:
                self.result.exhausted = True
        if item is None:
            self._retire(c)
            return
        c.ctx = item[1]
        c.busy = True
        c.t0 = now
        c.transport.write(item[0])

    def done(self, c: _Client, body: bytes) -> None:
        now = time.perf_counter()
        c.busy = False
        _count(self.result, c.status, body, now - c.t0)
        self.last = now
        if self.on_response is not None:
            self.on_response(c.status, c.head, c.ctx)
        if b"\r\nconnection: close" in c.head:
            self._replace(c)
        else:
            self.send_next(c)

    def lost(self, c: _Client) -> None:
        if c.closing:
            return
        if c.busy:  # the server dropped a request: an error, and the client reconnects
            _error(self.result, "connection lost during a request")
        self._replace(c)

    def _replace(self, c: _Client) -> None:
        c.closing = True
        c.transport.close()
        self.result.reconnects += 1
        self.loop.create_task(self._connect())

    async def _connect(self) -> None:
        try:
            await self.loop.create_connection(lambda: _Client(self), "127.0.0.1", self.port)
        except OSError as exc:
            _error(self.result, f"cannot connect: {exc}")
            self._retire(None)

    def _retire(self, c: _Client | None) -> None:
        if c is not None:
            c.closing = True
            c.transport.close()
        self.active -= 1
        if self.active == 0 and not self.finished.done():
            self.result.elapsed = self.last - self.start
            self.finished.set_result(self.result)


async def run(
    port: int,
    items: Iterator[Item],
    *,
    clients: int,
    duration: float | None,
    on_response: Callable[[int, bytes, object], None] | None = None,
) -> PhaseResult:
    """Drive ``clients`` keep-alive connections until ``duration`` s passed (or the
    items ran out; ``duration=None`` means "until they run out")."""
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    phase = _Phase(loop, port, items, None if duration is None else start + duration, on_response, clients)
    for _ in range(clients):
        await phase._connect()
    return await phase.finished


# --- open loop ----------------------------------------------------------------------


@dataclass
class Stream:
    """Requests sent at a fixed rate, whatever the answers take (open loop)."""

    name: str
    rate: float  # requests per second
    items: Iterator[Item]


#: Seconds a connection may stay idle before the open loop stops using it: under the
#: server's keep-alive timeout (gunicorn.conf.py: 5 s), so a request is never sent on a
#: connection the server is closing at that moment.
IDLE_LIMIT = 4.0


class _OpenPhase:
    """Sends each stream's k-th request at start + k / rate on an idle keep-alive
    connection (a new one when none is idle, up to ``max_connections``; beyond that the
    request waits). A request's latency runs from the moment it was due, so waiting for a
    connection counts: no coordinated omission."""

    def __init__(self, loop, port: int, streams: list[Stream], on_response, max_connections: int):
        self.loop, self.port, self.on_response = loop, port, on_response
        self.results = {s.name: PhaseResult() for s in streams}
        self.max_connections = max_connections
        self.idle: list[_Client] = []
        self.waiting: list[tuple[float, Stream, Item]] = []
        self.connections = 0
        self.outstanding = 0
        self.scheduled = 0
        self.drained = loop.create_future()

    # _Client's callbacks
    def send_next(self, c: _Client) -> None:  # a new connection is ready
        self._free(c)

    def done(self, c: _Client, body: bytes) -> None:
        now = time.perf_counter()
        due, stream = c.job
        r = self.results[stream.name]
        _count(r, c.status, body, now - due)
        r.elapsed = now - self.start
        if self.on_response is not None:
            self.on_response(c.status, c.head, c.ctx)
        c.busy = False
        self._finished_one()
        if b"\r\nconnection: close" in c.head:
            self._drop(c)
        else:
            self._free(c)

    def lost(self, c: _Client) -> None:
        if c.closing:
            return
        if c.busy:
            _error(self.results[c.job[1].name], "connection lost during a request")
            self._finished_one()
        self._drop(c)

    # scheduling
    def due(self, stream: Stream) -> None:
        item = next(stream.items, None)
        if item is None:
            self.results[stream.name].exhausted = True
            self._finished_one()
            return
        now = time.perf_counter()
        job = (now, stream, item)
        while self.idle and now - self.idle[-1].idle_since > IDLE_LIMIT:
            self._drop(self.idle[-1])  # the server may be closing it: never send on it
        if self.idle:
            self._send(self.idle.pop(), job)
        else:
            self.waiting.append(job)
            if self.connections < self.max_connections:
                self.connections += 1
                self.loop.create_task(self._connect())

    def _send(self, c: _Client, job) -> None:
        c.job = (job[0], job[1])
        c.ctx = job[2][1]
        c.busy = True
        c.transport.write(job[2][0])

    def _free(self, c: _Client) -> None:
        if self.waiting:
            self._send(c, self.waiting.pop(0))
        else:
            c.idle_since = time.perf_counter()
            self.idle.append(c)

    def _drop(self, c: _Client) -> None:
        c.closing = True
        c.transport.close()
        if c in self.idle:
            self.idle.remove(c)
        self.connections -= 1
        if self.waiting and self.connections < self.max_connections:
            self.connections += 1
            self.loop.create_task(self._connect())

    def _finished_one(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0 and not self.drained.done():
            self.drained.set_result(None)

    async def _connect(self) -> None:
        try:
            await self.loop.create_connection(lambda: _Client(self), "127.0.0.1", self.port)
        except OSError as exc:
            self.connections -= 1
            if self.waiting:
                _, stream, _ = self.waiting.pop(0)
                _error(self.results[stream.name], f"cannot connect: {exc}")
                self._finished_one()


async def run_open(
    port: int,
    streams: list[Stream],
    *,
    duration: float,
    warm_connections: int = 16,
    max_connections: int = 256,
    on_response: Callable[[int, bytes, object], None] | None = None,
) -> dict[str, PhaseResult]:
    """Send every stream at its rate for ``duration`` seconds; wait for the last answers."""
    loop = asyncio.get_running_loop()
    phase = _OpenPhase(loop, port, streams, on_response, max_connections)
    for _ in range(warm_connections):
        phase.connections += 1
        await phase._connect()
    phase.start = time.perf_counter() + 0.05
    base = loop.time() + 0.05
    for s in streams:
        count = int(duration * s.rate)
        phase.outstanding += count
        for k in range(count):
            loop.call_at(base + k / s.rate, phase.due, s)
    if phase.outstanding:
        await phase.drained
    for c in phase.idle:
        c.closing = True
        c.transport.close()
    return phase.results
