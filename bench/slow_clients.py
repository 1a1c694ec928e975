"""Slow clients against the Procfile's web process (contract 15.1): dribblers that send a
request's headers, or its body, one byte a second (no token), and the time other clients'
inquiries take meanwhile.

Creates a fresh database (on ``DATABASE_URL``'s server, else the embedded one), seeds a
few customers and a partner, and for each candidate web setting starts the Procfile's
gunicorn (``gunicorn --config gunicorn.conf.py wsgi:app``, loopback only, the candidate's
``GUNICORN_CMD_ARGS``), opens ``--header-dribblers`` (24) and ``--body-dribblers`` (8)
connections that send a byte a second (a cut dribbler connects again at once: the
pressure holds for the whole run), and after 2 s times ``--inquiries`` (20) inquiries
(``GET /tagihan/<cid>``, one every 0.5 s whatever the earlier ones take, each on a new
connection, 30 s timeout). Prints
per candidate: the inquiries' median and slowest time, how many took over 1 s or got no
answer, and how the dribblers ended (cut by the server, after how long).

Candidates (``--candidates``, default all): ``shipped`` (gunicorn.conf.py as it is: the
buffering worker, pdam/web/server.py), ``gthread`` (gunicorn's gthread, one thread per
worker: what shipped before), ``gthread-threads-N`` (gthread with N threads per worker), ``gthread-deadline-threads-N``
(gthread with a read deadline per request, bench/deadline_worker.py, N threads per worker).

    .venv/bin/python bench/slow_clients.py [--candidates shipped,gthread,gthread-threads-16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import common

HEADERS = (
    "GET /tagihan/{cid} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: dribbler\r\nAccept: */*\r\n"
    "X-Padding: {pad}\r\n\r\n"
)
BODY = "POST /tagihan/{cid} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--header-dribblers", type=int, default=24)
    p.add_argument("--body-dribblers", type=int, default=8)
    p.add_argument("--inquiries", type=int, default=20)
    p.add_argument("--interval", type=float, default=1.0, help="seconds between a dribbler's bytes (1)")
    p.add_argument("--candidates", default="shipped,gthread,gthread-threads-8,gthread-deadline-threads-8")
    return p.parse_args()


def gunicorn_args(candidate: str) -> str:
    if candidate == "shipped":
        return ""
    if candidate == "gthread":
        return "--worker-class gthread --threads 1"
    if candidate.startswith("gthread-deadline-threads-"):  # bench/deadline_worker.py
        threads = int(candidate.rsplit("-", 1)[1])
        return f"--pythonpath bench --worker-class deadline_worker.DeadlineWorker --threads {threads}"
    if candidate.startswith("gthread-threads-"):
        return f"--worker-class gthread --threads {int(candidate.rsplit('-', 1)[1])}"
    raise SystemExit(f"unknown candidate {candidate!r}")


async def dribble(port: int, data: bytes, interval: float, stop: asyncio.Event, cuts: list) -> None:
    """Send ``data`` a byte every ``interval`` s; when the server closes, note after how long
    and connect again, until ``stop``."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(interval)
            continue
        started = time.monotonic()
        closed = asyncio.ensure_future(reader.read())  # returns at the server's answer or close
        try:
            for byte in data:
                if stop.is_set() or closed.done():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.wait({closed}, timeout=interval)
            if closed.done() and not stop.is_set():
                answer = closed.result()
                cuts.append((time.monotonic() - started, answer.split(b"\r\n", 1)[0].decode("latin-1")))
        except OSError:
            cuts.append((time.monotonic() - started, "reset"))
        finally:
            closed.cancel()
            writer.close()


async def inquire(port: int, cid: str, auth: str) -> float | None:
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
        writer.write(
            f"GET /tagihan/{cid} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {auth}\r\n"
            f"Connection: close\r\n\r\n".encode()
        )
        answer = await asyncio.wait_for(reader.read(), 30 - (time.monotonic() - started))
        writer.close()
    except (OSError, TimeoutError):
        return None
    return time.monotonic() - started if answer.startswith(b"HTTP/1.1 200") else None


async def attack(port: int, cids: list[str], auth: str, args) -> dict:
    stop = asyncio.Event()
    cuts: list = []
    pad = "x" * 200
    dribblers = [
        asyncio.ensure_future(
            dribble(port, HEADERS.format(cid=cids[0], pad=pad).encode(), args.interval, stop, cuts)
        )
        for _ in range(args.header_dribblers)
    ] + [
        asyncio.ensure_future(
            dribble(port, BODY.format(cid=cids[0]).encode() + b"{" * 400, args.interval, stop, cuts)
        )
        for _ in range(args.body_dribblers)
    ]
    await asyncio.sleep(2)
    asked = []
    for k in range(args.inquiries):  # one every 0.5 s, whatever the earlier ones take
        asked.append(asyncio.ensure_future(inquire(port, cids[1 + k % (len(cids) - 1)], auth)))
        await asyncio.sleep(0.5)
    times = await asyncio.gather(*asked)
    stop.set()
    await asyncio.gather(*dribblers, return_exceptions=True)
    answered = sorted(t for t in times if t is not None)
    return {
        "answered": len(answered),
        "no_answer": len(times) - len(answered),
        "over_1s": sum(1 for t in times if t is None or t > 1),
        "median_ms": round(statistics.median(answered) * 1000, 1) if answered else None,
        "max_ms": round(answered[-1] * 1000, 1) if answered else None,
        "cuts": len(cuts),
        "cut_after_s": round(statistics.median(c[0] for c in cuts), 1) if cuts else None,
        "cut_answers": sorted({c[1] for c in cuts}),
    }


def main() -> int:
    args = parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="pdam-slow-clients-"))
    results = {}
    with common.bench_database() as (url, where):
        with common.service_setup(url, ["01"]) as setup:
            common.log(f"database: {where}")
            cids = common.seed_customers(setup, 50)
            auth = setup.tokens["01"]
            for candidate in args.candidates.split(","):
                weblog = log_dir / f"{candidate}.log"
                with common.web(setup, weblog, gunicorn_args=gunicorn_args(candidate)) as web:
                    common.log(f"{candidate}: gunicorn on port {web.port} (log: {weblog})")
                    results[candidate] = asyncio.run(attack(web.port, cids, auth, args))
                cut_lines = sum(
                    1 for line in weblog.read_text().splitlines() if "incomplete request cut" in line
                )
                results[candidate]["cut_log_lines"] = cut_lines
    gconf = common.gunicorn_settings()
    print(
        f"{args.header_dribblers} header + {args.body_dribblers} body dribblers (a byte every "
        f"{args.interval:g} s), {args.inquiries} inquiries; shipped: {gconf['workers']} workers x "
        f"{gconf['threads']} threads ({gconf['worker_class']}); {common.machine_description()}"
    )
    for candidate, r in results.items():
        print(
            f"{candidate:>20}: inquiries answered {r['answered']}/{args.inquiries}, over 1 s or none "
            f"{r['over_1s']}, median {r['median_ms']} ms, slowest {r['max_ms']} ms; dribblers cut "
            f"{r['cuts']} times (median after {r['cut_after_s']} s, answers {r['cut_answers']}), "
            f"'incomplete request cut' log lines {r['cut_log_lines']}"
        )
    return 0 if results.get("shipped", {}).get("over_1s", 0) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
