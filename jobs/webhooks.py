"""Webhook delivery: the job server's callback dispatcher (``Dispatcher``) and a lane's
drain (``drain``: its pending deliveries in order, one HTTP attempt each, recorded, with
the retry decision), from the core's delivery state, the wire format of the protocol the
callback came through (the core's ``events`` registry) and infra's guarded client.

No queue job sends a callback: each worker process runs a dispatcher beside its
Procrastinate run loop, on the same pool. It hears every lane announced when a callback
commits (LISTEN), takes the lane (an advisory lock on a session of its own: one sender per
lane across every process, let go if the process dies), drains it on one of
WEBHOOK_CONCURRENCY slots and holds it HOLD_SECONDS more; a retry comes back at its time,
and a sweep finds any lane whose first callback is due (missed while no dispatcher
listened, or left by a worker that died). The HTTP call runs on the loop itself (infra's
guarded client, bounded by WEBHOOK_TIMEOUT_SECONDS), and no pool connection is held while it
runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import psycopg

from pdam.core import errors, events, webhooks
from pdam.infra import deadline, http
from pdam.infra.port import is_transient
from pdam.infra.runtime import Runtime

from . import Connect

log = logging.getLogger(__name__)


#: Deliveries a drain reads at a time.
BATCH = 50
#: A lane drained here stays this process's (its lock and its receiver's connection kept)
#: this long after its drain ends: a busy lane is not taken and let go for every callback.
HOLD_SECONDS = 2.0
#: A dispatcher that lost the database starts again after this pause, doubled while it stays away.
RESTART_PAUSE, RESTART_PAUSE_MAX = 0.5, 5.0
#: A drain that ran this long lets its lane go to the back of the dispatcher's queue
#: (after its current attempt), so lanes share the slots.
DRAIN_SECONDS = 10.0


@dataclass
class Drained:
    """What a drain did (each attempt's outcome) and when its lane has a callback due again:
    ``again_in`` seconds (0: at once, after the lanes waiting for a slot; a retry's time),
    or None (the lane is empty)."""

    outcomes: list[str] = field(default_factory=list)
    again_in: float | None = None


async def drain(
    rt: Runtime,
    connect: Connect,
    lane: str,
    stopping: Callable[[], bool] = bool,
    sender: http.Sender | None = None,
) -> Drained:
    """Send ``lane``'s pending deliveries in order, one attempt each, over a kept-alive
    connection to their receiver (``sender``, else one of its own). Ends when the lane is
    empty; when its first delivery must wait (a retry: the lane waits behind it, keeping
    each payment's callbacks in order); after DRAIN_SECONDS; or when ``stopping()``
    (checked between attempts). The caller must be the lane's sender (``webhooks.take_lane``). A database
    that cannot be reached raises ``Retry``; a delivery that cannot be sent for any other
    reason is marked failed and the lane goes on; one whose sending killed its worker
    STALLED_MAX_RETRIES times is given up."""
    if sender is not None:
        return await _drain(rt, connect, lane, sender, stopping)
    with _sender(rt) as own:
        return await _drain(rt, connect, lane, own, stopping)


def _sender(rt: Runtime) -> http.Sender:
    return http.Sender(allow_private=rt.settings["WEBHOOK_ALLOW_PRIVATE_NETWORKS"])


async def _drain(
    rt: Runtime, connect: Connect, lane: str, sender: http.Sender, stopping: Callable[[], bool]
) -> Drained:
    started = time.monotonic()

    def turn_over() -> bool:  # between attempts: the lane's turn is over, or the dispatcher stops
        return time.monotonic() - started > DRAIN_SECONDS or stopping()

    drained = Drained()
    after = 0
    while True:
        now = rt.now()
        # a batch's first due delivery counts an open send and is sent
        batch = await _database(
            rt, connect, webhooks.pending, lane, rt.sealer, now, after=after, limit=BATCH, commit=True
        )
        for row in batch:
            if row.id != batch[0].id and turn_over():
                drained.again_in = 0.0
                return drained
            wait = (row.next_attempt_at - now).total_seconds() if row.next_attempt_at else 0
            if wait > 0:
                drained.again_in = wait
                return drained
            try:
                if row.open_sends > rt.settings["STALLED_MAX_RETRIES"]:
                    drained.outcomes.append(await _killed_its_worker(rt, connect, row))
                else:
                    drained.outcomes.append(await attempt(rt, connect, row, sender))
            except webhooks.RetryLater:
                drained.again_in = rt.settings["WEBHOOK_RETRY_SECONDS"]
                return drained
            except webhooks.DeliveryFailed:
                drained.outcomes.append(webhooks.FAILED)
            after = row.id
            now = rt.now()
        if len(batch) < BATCH:  # a callback recorded since is announced to the dispatcher
            return drained
        if turn_over():
            drained.again_in = 0.0
            return drained


async def _killed_its_worker(rt: Runtime, connect: Connect, row: webhooks.Delivery) -> str:
    """Give up delivery ``row``, whose sends never came back (each killed its worker)."""
    died = row.open_sends - 1
    reason = f"its worker died {died} times while sending it"
    log.error("webhook delivery given up: %s", reason, extra={"delivery_id": row.id, "nob": row.nob})
    await _database(rt, connect, webhooks.give_up, row.id, reason, rt.now(), commit=True)
    return webhooks.FAILED


async def _database(rt: Runtime, connect: Connect, planned, *args, commit: bool = False, **kwargs):
    """``planned`` (a core plan) on a connection of ``connect``'s, bounded by
    REQUEST_DEADLINE_SECONDS, committed (and the commit confirmed) when ``commit``: a
    database that does not answer in time, or a commit that is not confirmed, raises
    ``Retry``."""
    notices = deadline.Notices()
    try:
        async with asyncio.timeout(rt.settings["REQUEST_DEADLINE_SECONDS"]), connect() as conn:
            conn.add_notice_handler(notices)
            try:
                with deadline.confirm_commit(notices if commit else None):
                    result = await planned.aio(conn, *args, **kwargs)
                    await (conn.commit() if commit else conn.rollback())
            finally:
                conn.remove_notice_handler(notices)
    except TimeoutError as exc:
        raise errors.Retry(f"database: no answer within {rt.settings['REQUEST_DEADLINE_SECONDS']} s") from exc
    except Exception as exc:
        if is_transient(exc):
            raise errors.Retry(f"database: {type(exc).__name__}: {exc}") from exc
        raise
    return result


async def deliver(rt: Runtime, connect: Connect, delivery_id: int) -> str:
    """One attempt of delivery ``delivery_id`` (``attempt``)."""
    row = await _database(rt, connect, webhooks.load, delivery_id, rt.sealer)
    with _sender(rt) as sender:
        return await attempt(rt, connect, row, sender)


async def attempt(rt: Runtime, connect: Connect, row: webhooks.Delivery, sender: http.Sender) -> str:
    """One attempt of delivery ``row`` through ``sender``; return delivered/refused (or the status it already had).

    Raises ``RetryLater`` for an attempt to be repeated, ``DeliveryFailed`` when the
    delivery is given up (both after recording the attempt); a database that cannot be
    reached in time raises ``Retry`` (the attempt is made again later, the same event id).
    Any other error cannot pass by itself: the delivery is marked failed (an operator
    sees it in ``payments_needing_attention`` and can resend it).
    """
    try:
        return await _attempt(rt, connect, row, sender)
    except (errors.Retry, errors.GiveUp):
        raise
    except Exception as exc:
        log.exception("webhook delivery failed", extra={"delivery_id": row.id})
        reason = f"delivery error: {type(exc).__name__}"
        await _database(rt, connect, webhooks.give_up, row.id, reason, rt.now(), commit=True)
        raise webhooks.DeliveryFailed(f"webhook delivery {row.id}: {reason}") from exc


async def _attempt(rt: Runtime, connect: Connect, row: webhooks.Delivery, sender: http.Sender) -> str:
    settings = rt.settings
    delivery_id = row.id
    if row.status != webhooks.PENDING:  # a job run again after it finished: nothing to do
        return row.status

    protocol = events.protocol(row.protocol)
    raw_body = protocol.render(row.body)
    attempted_at = rt.now()
    headers = protocol.headers(row, raw_body, attempted_at)
    if row.sandbox:  # every protocol's sandbox callbacks say so (contract 14.1)
        headers["X-Sandbox"] = "true"
    started = time.monotonic()
    outcome = await sender.send(row.url, raw_body, headers, timeout=settings["WEBHOOK_TIMEOUT_SECONDS"])
    duration_ms = int((time.monotonic() - started) * 1000)
    attempts = row.attempts + 1
    status = webhooks.status_after(
        outcome.result, settings, attempts, row.first_attempt_at or attempted_at, attempted_at
    )
    recorded = await _database(
        rt,
        connect,
        webhooks.record_attempt,
        row,
        at=attempted_at,
        status=status,
        http_status=outcome.http_status,
        error=outcome.error,
        duration_ms=duration_ms,
        next_attempt_at=attempted_at + dt.timedelta(seconds=settings["WEBHOOK_RETRY_SECONDS"]),
        commit=True,
    )
    details = {
        "delivery_id": delivery_id, "nob": row.nob, "event": row.event, "attempt": attempts, "outcome": status,
        "http_status": outcome.http_status, "error": outcome.error, "duration_ms": duration_ms,
    }  # fmt: skip
    if not recorded:  # another run recorded this delivery meanwhile; its answer stands
        log.warning("webhook attempt superseded", extra={**details, "outcome": "superseded"})
        return "superseded"
    log.info("webhook attempt", extra=details)
    if status == webhooks.PENDING:
        raise webhooks.RetryLater(f"webhook delivery {delivery_id} attempt {attempts}: {outcome.error}")
    if status == webhooks.FAILED:
        raise webhooks.DeliveryFailed(
            f"webhook delivery {delivery_id} failed after {attempts} attempts: {outcome.error}"
        )
    return status


class Dispatcher:
    """The job server's callback road, in one worker process: lanes announced (LISTEN on a
    session of its own), lanes due (a sweep every ``sweep_seconds``) and retries (at their
    time) queue for one of ``slots`` slots; a slot takes the lane (``webhooks.take_lane`` on
    a second session: across every process, one sender per lane), drains it (``drain``, on
    ``connect``'s pool) and keeps it HOLD_SECONDS more (its lock and its receiver's
    kept-alive connection: a busy lane is taken once, not for every callback), then lets it
    go. A lane announced while it drains here is looked at again when it is done; one held
    by another process is that process's to look at (it heard the same announcement).
    ``run`` until ``stop``; the sessions come from ``session()`` (autocommit)."""

    def __init__(
        self,
        rt: Runtime,
        connect: Connect,
        session: Callable[[], Awaitable[psycopg.AsyncConnection]],
        *,
        slots: int,
        sweep_seconds: float,
    ):
        self.rt, self.connect, self.session = rt, connect, session
        self.slots, self.sweep_seconds = slots, sweep_seconds
        self.stopping = False
        self._stop = asyncio.Event()
        self._reset()

    def _reset(self) -> None:
        self.ready: asyncio.Queue[str | None] = asyncio.Queue()
        self.queued: set[str] = set()
        self.running: set[str] = set()
        self.again: set[str] = set()
        self._ending = False
        self._timers: set[asyncio.TimerHandle] = set()
        self._locks: psycopg.AsyncConnection | None = None
        #: Lanes held here between drains: their receiver's connection, and when to let go.
        self._held: dict[str, tuple[http.Sender, asyncio.TimerHandle]] = {}
        self._leaving: set[asyncio.Task] = set()

    def poke(self, lane: str) -> None:
        """``lane`` may have a callback due: queue it for a slot (once), or have the drain
        running it here look again when it is done."""
        if self._ending:
            return
        if lane in self.running:
            self.again.add(lane)
        elif lane not in self.queued:
            self.queued.add(lane)
            self.ready.put_nowait(lane)

    def stop(self) -> None:
        """Stop: no lane is taken any more; each drain ends after its current attempt."""
        self.stopping = self._ending = True
        self._stop.set()

    async def run(self) -> None:
        """Until ``stop``: a lost session (the database gone) ends the sessions and the
        drains (after their current attempt) and starts again after a pause (RESTART_PAUSE,
        doubling up to RESTART_PAUSE_MAX), the lanes then found by the sweep; posting's run
        loop is not disturbed. Any other error ends it."""
        pause = RESTART_PAUSE
        while not self.stopping:
            started = time.monotonic()
            try:
                await self._serve()
            except Exception as exc:
                if self.stopping or not is_transient(exc):
                    raise
                pause = (
                    RESTART_PAUSE if time.monotonic() - started > 60 else min(2 * pause, RESTART_PAUSE_MAX)
                )
                log.warning("callback dispatcher lost the database: %r; again in %.1f s", exc, pause)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), pause)

    async def _serve(self) -> None:
        self._reset()
        async with await self.session() as listener, await self.session() as locks:
            await webhooks.listen.aio(listener)
            self._locks = locks
            slots = [asyncio.create_task(self._slot()) for _ in range(self.slots)]
            helpers = [asyncio.create_task(self._hear(listener)), asyncio.create_task(self._sweep())]
            stopped = asyncio.create_task(self._stop.wait())
            try:
                done, _ = await asyncio.wait({stopped, *slots, *helpers}, return_when=asyncio.FIRST_COMPLETED)
                for task in done - {stopped}:
                    task.result()  # a lost session: its error
            finally:
                self._ending = True
                for task in [stopped, *helpers]:
                    task.cancel()
                for timer in self._timers:
                    timer.cancel()
                for _ in slots:
                    self.ready.put_nowait(None)  # an idle slot's signal to end
                await asyncio.gather(*slots, *helpers, stopped, *self._leaving, return_exceptions=True)
                for sender, timer in self._held.values():  # their locks go with the session
                    timer.cancel()
                    sender.close()

    async def _hear(self, listener: psycopg.AsyncConnection) -> None:
        async for note in listener.notifies():
            self.poke(note.payload)

    async def _sweep(self) -> None:
        while True:  # on the lanes' session: when the database goes, no pool connection is asked for
            for lane in await webhooks.due_lanes.aio(self._locks, self.rt.now()):
                self.poke(lane)
            await asyncio.sleep(self.sweep_seconds)

    async def _slot(self) -> None:
        while (lane := await self.ready.get()) is not None and not self._ending:
            self.queued.discard(lane)
            self.running.add(lane)  # from here on, a poke is this slot's to see
            try:
                taken, again_in = await self._send(lane)
            finally:
                self.running.discard(lane)
            poked = lane in self.again
            self.again.discard(lane)
            if taken and (poked or again_in is not None):
                self._later(0.0 if poked else again_in, lane)

    async def _send(self, lane: str) -> tuple[bool, float | None]:
        """Take ``lane`` (unless held here already), drain it, hold it: (True, when it has a
        callback due again), or (False, None) when another process is its sender (that one
        looks again when done)."""
        if lane in self._held:
            sender, timer = self._held.pop(lane)
            timer.cancel()
        elif await webhooks.take_lane.aio(self._locks, lane):
            sender = _sender(self.rt)
        else:
            return False, None
        try:
            again_in = await self._drain(lane, sender)
        except BaseException:
            sender.close()
            await self._leave(lane)
            raise
        self._held[lane] = (sender, asyncio.get_running_loop().call_later(HOLD_SECONDS, self._let_go, lane))
        return True, again_in

    def _let_go(self, lane: str) -> None:
        """A lane held HOLD_SECONDS without a drain: close its connection, leave it."""
        sender, _ = self._held.pop(lane)
        sender.close()
        task = asyncio.create_task(self._leave(lane))
        self._leaving.add(task)
        task.add_done_callback(self._leaving.discard)

    async def _leave(self, lane: str) -> None:
        with contextlib.suppress(psycopg.Error):  # a lost session let go of it already
            await webhooks.leave_lane.aio(self._locks, lane)

    async def _drain(self, lane: str, sender: http.Sender) -> float | None:
        """Drain ``lane``; when it has a callback due again. A fault (the database) brings
        it back after WEBHOOK_RETRY_SECONDS."""
        try:
            return (await drain(self.rt, self.connect, lane, lambda: self._ending, sender)).again_in
        except Exception as exc:
            if not isinstance(exc, errors.Retry):
                log.exception("callback lane %s: drain failed", lane)
            else:
                log.warning("callback lane %s: %s", lane, exc)
            return float(self.rt.settings["WEBHOOK_RETRY_SECONDS"])

    def _later(self, seconds: float, lane: str) -> None:
        if seconds <= 0:
            self.poke(lane)
            return

        def fire():
            self._timers.discard(timer)
            self.poke(lane)

        timer = asyncio.get_running_loop().call_later(seconds, fire)
        self._timers.add(timer)
