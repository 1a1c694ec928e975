"""bench/worker.py's third phase: payments at a steady rate through the web process while a
worker posts them, and each payment's time from acceptance to its final state."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import common
import loadgen
import psycopg

LATENCY_PARTNER = "02"


def prepare_inquiries(setup: common.Setup, code: str, keys: range) -> dict[int, str]:
    """Inquiry tokens of ``code`` for the customers ``keys`` (for the latency phase)."""
    from pdam.core import inquiry
    from pdam.web import runtime

    out = {}
    with setup.app.app_context(), runtime.transaction() as conn:
        now = runtime.now()
        for k in keys:
            inq = inquiry.inquire(
                conn,
                runtime.ledger_connection(),
                code,
                common.customer_id(k),
                now,
                setup.app.config["INQUIRY_TTL_SECONDS"],
            )
            out[k] = inq.token
    return out


async def _http(reader, writer, req: bytes) -> int:
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    i = lower.find(b"\r\ncontent-length:")
    length = int(lower[i + 17 : lower.find(b"\r\n", i + 2)]) if i >= 0 else 0
    await reader.readexactly(length)
    return status


KEEPALIVE_REUSE_S = 4.0  # gunicorn.conf.py closes keep-alive connections idle for 5 s


async def steady_payments(port: int, requests: list[tuple[bytes, str]], rate: float, sent_at: dict) -> dict:
    """Send ``requests`` (bytes, pid) open-loop at ``rate`` per second over a pool of
    keep-alive connections (a new one when all are busy); record each send time
    (epoch seconds) in ``sent_at[pid]``; return HTTP latencies and errors.

    Like any keep-alive client, a connection idle for longer than the server keeps
    it is not reused, and a request whose reused connection turns out closed before
    any answer is sent again once on a new one (a replay with the same ``pid`` is
    idempotent anyway)."""
    pool: list = []  # (reader, writer, last used), most recently used last
    latencies: list[float] = []
    errors: list[str] = []

    async def connection():
        while pool:
            reader, writer, used = pool.pop()
            if time.monotonic() - used < KEEPALIVE_REUSE_S:
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return reader, writer, False

    async def one(req: bytes, pid: str) -> None:
        sent_at[pid] = time.time()
        t = time.perf_counter()
        for attempt in (1, 2):
            reader, writer, reused = await connection()
            try:
                status = await _http(reader, writer, req)
                break
            except (OSError, asyncio.IncompleteReadError) as exc:
                writer.close()
                closed_idle = isinstance(exc, (ConnectionResetError, BrokenPipeError)) or (
                    isinstance(exc, asyncio.IncompleteReadError) and not exc.partial
                )
                if reused and closed_idle and attempt == 1:
                    continue
                errors.append(f"connection: {exc!r}")
                return
        latencies.append(time.perf_counter() - t)
        if status != 202:
            errors.append(f"status {status}")
        pool.append((reader, writer, time.monotonic()))

    tasks = []
    start = time.perf_counter()
    for i, (req, pid) in enumerate(requests):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(req, pid)))
    sent = time.perf_counter() - start
    await asyncio.gather(*tasks)
    for _, writer, _ in pool:
        writer.close()
    lat = sorted(latencies)
    return {
        "sent": len(requests),
        "send_seconds": round(sent, 2),
        "send_rate": round(len(requests) / sent, 1) if sent > 0 else None,
        "http_p50_ms": round(common.percentile(lat, 50) * 1000, 1),
        "http_p99_ms": round(common.percentile(lat, 99) * 1000, 1),
        "errors": len(errors),
        "error_samples": errors[:5],
    }


def latency_phase(setup: common.Setup, first_key: int, args, weblog: Path, workerlog: Path) -> dict:
    count = int(args.rate * args.latency_duration)
    keys = range(first_key, first_key + count)
    with common.worker(setup, workerlog) as proc:
        with common.web(setup, weblog) as web:
            common.log(f"preparing {count} inquiries (partner {LATENCY_PARTNER})")
            tokens = prepare_inquiries(setup, LATENCY_PARTNER, keys)
            auth = f"Bearer {setup.tokens[LATENCY_PARTNER]}"
            requests = []
            for k in keys:
                pid = f"steady-{k}"
                body = json.dumps(
                    {
                        "inq": tokens[k],
                        "amo": common.customer_total(k),
                        "per": [int(p) for p in common.PERIODS],
                        "mer": common.MERCHANT,
                        "pid": pid,
                    },
                    separators=(",", ":"),
                ).encode()
                headers = {"Authorization": auth, "Content-Type": "application/json"}
                requests.append(
                    (
                        loadgen.request("POST", f"/tagihan/{common.customer_id(k)}", web.port, headers, body),
                        pid,
                    )
                )
            with psycopg.connect(setup.url, autocommit=True) as conn:
                deadline = time.monotonic() + 60
                while not conn.execute("select exists (select from procrastinate_workers)").fetchone()[0]:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError(f"the worker did not start; see {workerlog}")
                    time.sleep(0.1)
                common.log(f"sending {args.rate:.0f} payments/s for {args.latency_duration:.0f} s")
                cpu = common.CpuMeter({"web": web.pid, "worker": proc.pid})
                t = time.monotonic()
                sent_at: dict[str, float] = {}
                http = asyncio.run(steady_payments(web.port, requests, args.rate, sent_at))
                deadline = time.monotonic() + 120
                sql = "select count(*) from payment where partner_code = %s and status = 'created'"
                while conn.execute(sql, (LATENCY_PARTNER,)).fetchone()[0]:
                    if time.monotonic() > deadline:
                        raise RuntimeError("payments still not final 120 s after the last one was sent")
                    time.sleep(0.05)
                usage = cpu.stop(time.monotonic() - t)
                rows = conn.execute(
                    "select extract(epoch from posted_at - accepted_at)::float8, status, pid,"
                    " extract(epoch from posted_at)::float8 from payment where partner_code = %s order by 1",
                    (LATENCY_PARTNER,),
                ).fetchall()
    delays = [r[0] for r in rows]
    end_to_end = sorted(posted - sent_at[pid] for _, _, pid, posted in rows if pid in sent_at)
    statuses: dict[str, int] = {}
    for _, s, _, _ in rows:
        statuses[s] = statuses.get(s, 0) + 1
    return {
        **http,
        "payments": len(delays),
        "statuses": statuses,
        "final_p50_ms": round(common.percentile(delays, 50) * 1000, 1),
        "final_p99_ms": round(common.percentile(delays, 99) * 1000, 1),
        "final_max_ms": round(delays[-1] * 1000, 1) if delays else None,
        "send_to_final_p50_ms": round(common.percentile(end_to_end, 50) * 1000, 1),
        "send_to_final_p99_ms": round(common.percentile(end_to_end, 99) * 1000, 1),
        "cores": {k: round(v, 2) for k, v in usage["cores"].items()},
        "machine_busy": round(usage["machine_busy"], 2),
    }


# --- report -------------------------------------------------------------------


def print_latency(lat: dict) -> None:
    print(
        f"accept-to-final at {lat['send_rate']} payments/s for {lat['send_seconds']} s: {lat['payments']} payments"
        f" {lat['statuses']}"
    )
    print(
        f"  posted_at - accepted_at: p50 {lat['final_p50_ms']} ms, p99 {lat['final_p99_ms']} ms,"
        f" max {lat['final_max_ms']} ms"
    )
    print(
        f"  POST /tagihan answer (202): p50 {lat['http_p50_ms']} ms, p99 {lat['http_p99_ms']} ms,"
        f" errors {lat['errors']}"
    )
    print(
        f"  client send to final (queueing in front of gunicorn included): p50 {lat['send_to_final_p50_ms']} ms,"
        f" p99 {lat['send_to_final_p99_ms']} ms"
    )
    for e in lat["error_samples"]:
        print(f"    error: {e}")
    print(f"  cores used: {lat['cores']}, machine busy {lat['machine_busy']:.0%}")
