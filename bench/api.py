"""Inquiry and payment acceptance under load, against a trivial route of the same server.

Creates a fresh database (on ``DATABASE_URL``'s server, else the embedded
one), migrates it, seeds a history of posted payments (``--history``: the planner's
statistics then describe tables like production's, not empty ones that grow by thousands
of rows in the measured minute) and customers through the bills importer, issues partner
tokens, starts the Procfile's web process (``gunicorn --config
gunicorn.conf.py wsgi:app``, loopback only) and drives it with closed-loop
keep-alive clients, one phase at a time. Phases 1-3 run in ``--rounds`` rounds (5),
one after the other in each round, so that the machine's drift hits them alike; a phase's
share is taken within its round and the report gives the medians of the rounds' shares:

0. ``GET /health/live`` on a bare Flask app (bench/bare.py) under the same gunicorn
   settings: what Flask and gunicorn cost alone
1. ``GET /health/live``   the product's trivial route (no database); its share is of
   the bare app's
2. ``GET /tagihan/<cid>`` inquiry over unpaid seeded customers in random order, by the
   round's own partner
3. ``POST /tagihan/<cid>`` payment, each with its own inquiry from phase 2, all from
   the round's partner (its receipt-number counter row serialises them)
4. ``POST /tagihan/<cid>`` payment spread over several partners (inquiries
   made beforehand, not measured)
5. open loop: inquiries and payments sent at fixed rates (150/s and 50/s by
   default, ``--open-rates``) for ``--open-duration`` (30 s), whatever the answers
   take, payments spread over the partners (inquiries made beforehand, not
   measured); latency runs from when a request was due. It starts on a settled
   database (``VACUUM ANALYZE`` and ``CHECKPOINT`` first: the cleanup the closed-loop
   bursts left would otherwise run during it) (``--no-open-loop`` skips it)
6. the rate limit's cost: a second web process beside the first, with
   ``PARTNER_RATE_LIMIT`` so high it never refuses (every request still takes a
   token); phases 1 and 2 alternate between the two (off, on, off, on: the machine's
   drift hits both alike) and the inquiry's share of the trivial route is compared,
   limit on vs off (``--no-rate-limit`` skips it). Every other phase runs with
   ``PARTNER_RATE_LIMIT=0``.

Reports requests/s, p50/p99 latency, errors (non-2xx, must be 0) and each
route's requests/s as a share (the trivial route's of the bare app's, the others' of the
trivial route's); the targets are in bench/report.py. The database is dropped at the end.

    .venv/bin/python bench/api.py [--rounds 5] [--duration 10] [--clients 32] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import loadgen  # noqa: E402
import report  # noqa: E402
from report import summarize  # noqa: E402

MAX_PAYMENTS_PER_PARTNER = 9900  # a partner has 9,999 receipt numbers a day (WIB)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured phase (10)")
    p.add_argument("--rounds", type=int, default=5, help="rounds of phases 1-4 (5)")
    p.add_argument("--clients", type=int, default=32, help="concurrent keep-alive clients (32)")
    p.add_argument("--customers", type=int, default=30000, help="customers to seed, >= 10000 (30000)")
    p.add_argument(
        "--history", type=int, default=20000, help="posted payments of an earlier day to seed (20000)"
    )
    p.add_argument("--partners", type=int, default=8, help="partners of the spread payment phase (8)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before the phases (2)")
    p.add_argument("--no-spread", action="store_true", help="skip the several-partners payment phase")
    p.add_argument("--no-open-loop", action="store_true", help="skip the open-loop phase (5)")
    p.add_argument("--open-rates", default="150,50", help="open loop: inquiries/s,payments/s (150,50)")
    p.add_argument("--open-duration", type=float, default=30.0, help="open loop: seconds (30)")
    p.add_argument("--no-rate-limit", action="store_true", help="skip the rate limit's cost (phase 6)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the customer order")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON ('-' for stdout)")
    p.add_argument(
        "--gunicorn-args",
        default="",
        help="extra gunicorn arguments for the product's web process, e.g. '--worker-class gthread'"
        " (to compare a web setting with the shipped one)",
    )
    p.add_argument(
        "--log-dir",
        type=Path,
        default=common.ROOT / "bench" / "results",
        help="where gunicorn's output goes (bench/results)",
    )
    args = p.parse_args()
    if args.customers < 10000:
        p.error("--customers must be at least 10000")
    return args


LOCK_SAMPLE = (
    "select state = 'active', wait_event_type = 'Lock', wait_event from pg_stat_activity"
    " where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'"
)
# Lock kinds: a row (the nob counter row, another transaction's row) or an object
# (PostgreSQL serialises the commits of transactions that sent NOTIFY: the queue's job trigger).
LOCK_KINDS = {"transactionid": "row", "tuple": "row", "object": "notify"}


async def sample_lock_waits(url: str, stop: asyncio.Event) -> dict:
    """Share of busy database sessions waiting for a lock, by kind, sampled every 20 ms."""
    import psycopg

    active = 0
    waits: dict[str, int] = {}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            for is_active, is_lock, event in await (await conn.execute(LOCK_SAMPLE)).fetchall():
                active += bool(is_active)
                if is_lock:
                    kind = LOCK_KINDS.get(event, "other")
                    waits[kind] = waits.get(kind, 0) + 1
            await asyncio.sleep(0.02)
    return {kind: round(n / active, 3) for kind, n in waits.items()} if active else {}


async def measure(web, items, args, duration, on_response=None) -> tuple[loadgen.PhaseResult, dict]:
    cpu = common.CpuMeter({"web": web.pid})
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_lock_waits(args.url, stop))
    start = time.perf_counter()
    r = await loadgen.run(web.port, items, clients=args.clients, duration=duration, on_response=on_response)
    usage = cpu.stop(time.perf_counter() - start)
    stop.set()
    usage["lock_waits"] = await sampler
    return r, usage


def token_collector(store: dict):
    """on_response for inquiries: keep the X-Cross-Site token per (partner, cid)."""

    def collect(status: int, head: bytes, ctx) -> None:
        if status == 200:
            i = head.find(b"\r\nx-cross-site:")
            j = head.find(b"\r\n", i + 2)
            store[ctx] = head[i + 15 : j if j >= 0 else len(head)].strip().decode()

    return collect


def inquiry_requests(port: int, auth: str, code: str, order):
    headers = {"Authorization": auth}
    for cid in order:
        yield loadgen.request("GET", f"/tagihan/{cid}", port, headers), (code, cid)


def repeat(req: bytes):
    while True:
        yield req, None


async def trivial_and_inquiry(
    web: common.Web,
    setup: common.Setup,
    order,
    args,
    label: str = "",
    tokens: dict | None = None,
    code: str = "01",
    bare_rps: float | None = None,
) -> list[dict]:
    """The trivial route (its share: of ``bare_rps`` when given), then inquiries of partner
    ``code`` over ``order`` (their share: of the trivial route just measured)."""
    live = loadgen.request("GET", "/health/live", web.port)
    common.log(f"trivial route{label}: GET /health/live for {args.duration:.0f} s")
    r, cpu = await measure(web, repeat(live), args, args.duration)
    rows = [summarize(f"GET /health/live (trivial){label}", r, cpu, bare_rps) | {"kind": "trivial"}]
    common.log(f"inquiry{label}: GET /tagihan/<cid> for {args.duration:.0f} s")
    inquiries = inquiry_requests(web.port, f"Bearer {setup.tokens[code]}", code, order)
    r, cpu = await measure(
        web, inquiries, args, args.duration, token_collector(tokens) if tokens is not None else None
    )
    rows.append(
        summarize(f"GET /tagihan/<cid> (inquiry){label}", r, cpu, rows[0]["rps"]) | {"kind": "inquiry"}
    )
    return rows


async def rate_limit_phases(off: common.Web, on: common.Web, setup: common.Setup, order, args) -> list[dict]:
    """Trivial and inquiry phases alternating between the web process without and with
    the limit, twice each; the shares are compared over the two rounds."""
    common.log(f"warm-up {args.warmup:.0f} s with the rate limit on")
    await loadgen.run(
        on.port,
        inquiry_requests(on.port, f"Bearer {setup.tokens['01']}", "01", order),
        clients=args.clients,
        duration=args.warmup,
    )
    rows = []
    for round_ in (1, 2):
        rows += await trivial_and_inquiry(off, setup, order, args, f" limit off #{round_}")
        rows += await trivial_and_inquiry(on, setup, order, args, f" limit on #{round_}")
    return [row | {"kind": None} for row in rows]  # compared with each other, not with the rounds


def round_partner(k: int) -> str:
    """The partner of round ``k``'s inquiries and payments: one each, as a partner has 9,999
    receipt numbers a day."""
    return f"{50 + k:02d}"


async def run_phases(
    web: common.Web, bare: common.Web, setup: common.Setup, cids: list[str], args
) -> list[dict]:
    port = web.port
    auth = {code: f"Bearer {tok}" for code, tok in setup.tokens.items()}
    single = "01"
    spread = [f"{n:02d}" for n in range(2, 2 + args.partners)] if not args.no_spread else []
    index = {cid: k for k, cid in enumerate(cids)}
    paid: set[str] = set()

    def payments(tokens: dict, limit_per_partner: int, tag: str = "c"):
        used: dict[str, int] = {}
        for n, ((code, cid), inq) in enumerate(tokens.items()):
            if used.get(code, 0) >= limit_per_partner or cid in paid:
                continue
            used[code] = used.get(code, 0) + 1
            paid.add(cid)
            body = json.dumps(
                {
                    "inq": inq,
                    "amo": common.customer_total(index[cid]),
                    "per": [int(p) for p in common.PERIODS],
                    "mer": common.MERCHANT,
                    "pid": f"bench-{tag}-{code}-{n}",
                },
                separators=(",", ":"),
            ).encode()
            headers = {"Authorization": auth[code], "Content-Type": "application/json"}
            yield loadgen.request("POST", f"/tagihan/{cid}", port, headers, body), cid

    order = cids[:]
    random.Random(args.seed).shuffle(order)
    unpaid = (cid for cid in itertools.cycle(order) if cid not in paid)

    common.log(f"warm-up {args.warmup:.0f} s (bare app, database health check, inquiry)")
    await loadgen.run(
        bare.port,
        repeat(loadgen.request("GET", "/health/live", bare.port)),
        clients=args.clients,
        duration=args.warmup / 2,
    )
    await loadgen.run(
        port, repeat(loadgen.request("GET", "/health", port)), clients=args.clients, duration=args.warmup / 2
    )
    await loadgen.run(
        port,
        inquiry_requests(port, auth[single], single, unpaid),
        clients=args.clients,
        duration=args.warmup / 2,
    )

    rows: list[dict] = []
    for k in range(1, args.rounds + 1):
        label = f" #{k}"
        live = loadgen.request("GET", "/health/live", bare.port)
        common.log(f"round {k}/{args.rounds}: bare Flask app, GET /health/live for {args.duration:.0f} s")
        r, cpu = await measure(bare, repeat(live), args, args.duration)
        base = summarize(f"GET /health/live (bare Flask){label}", r, cpu, None)
        tokens: dict = {}
        code = round_partner(k)
        rows.append(base | {"kind": "bare"})
        trivial_rows = await trivial_and_inquiry(web, setup, unpaid, args, label, tokens, code, base["rps"])
        rows += trivial_rows
        common.log(
            f"round {k}: payment, one partner, for {args.duration:.0f} s ({len(tokens)} inquiries ready)"
        )
        r, cpu = await measure(web, payments(tokens, MAX_PAYMENTS_PER_PARTNER), args, args.duration)
        row = summarize(f"POST /tagihan/<cid> (payment, 1 partner){label}", r, cpu, trivial_rows[0]["rps"])
        rows.append(row | {"kind": "payment"})
    trivial = statistics.median(row["rps"] for row in rows if row.get("kind") == "trivial")
    args.rest = [cid for cid in order if cid not in paid]  # for phases 5 and 6

    if not args.no_spread and spread:
        unused = [cid for cid in order if cid not in paid]
        want = min(len(unused), max(2000, int(row["requests"] * 1.5)), MAX_PAYMENTS_PER_PARTNER * len(spread))
        common.log(f"preparing {want} inquiries for {len(spread)} partners (not measured)")

        def spread_inquiries():
            for n, cid in enumerate(unused[:want]):
                code = spread[n % len(spread)]
                yield (
                    loadgen.request("GET", f"/tagihan/{cid}", port, {"Authorization": auth[code]}),
                    (code, cid),
                )

        args.rest = unused[want:]
        spread_tokens: dict = {}
        await loadgen.run(
            port,
            spread_inquiries(),
            clients=args.clients,
            duration=None,
            on_response=token_collector(spread_tokens),
        )
        common.log(f"payment, {len(spread)} partners: POST /tagihan/<cid> for {args.duration:.0f} s")
        r, cpu = await measure(web, payments(spread_tokens, MAX_PAYMENTS_PER_PARTNER), args, args.duration)
        rows.append(summarize(f"POST /tagihan/<cid> (payment, {len(spread)} partners)", r, cpu, trivial))

    if not args.no_open_loop:
        rows += await open_loop(web, args, spread or [single], auth, payments, trivial)
    return rows


async def open_loop(
    web: common.Web, args, payers: list[str], auth: dict, payments, trivial: float
) -> list[dict]:
    """Phase 5: inquiries (partner 01, customers nobody paid) and payments (spread over
    ``payers``, each with an inquiry made beforehand) at fixed rates, together."""
    inquiry_rate, payment_rate = (float(x) for x in args.open_rates.split(","))
    wanted = int(payment_rate * args.open_duration)
    pay_cids, inquiry_cids = args.rest[:wanted], args.rest[wanted:] or args.rest
    common.log(f"open loop: preparing {len(pay_cids)} inquiries for {len(payers)} partner(s) (not measured)")

    def prepared():
        for n, cid in enumerate(pay_cids):
            code = payers[n % len(payers)]
            yield (
                loadgen.request("GET", f"/tagihan/{cid}", web.port, {"Authorization": auth[code]}),
                (code, cid),
            )

    tokens: dict = {}
    await loadgen.run(
        web.port, prepared(), clients=args.clients, duration=None, on_response=token_collector(tokens)
    )
    common.log("open loop: settling the database (VACUUM ANALYZE, CHECKPOINT) after the closed-loop phases")
    common.settle(args.url)
    streams = [
        loadgen.Stream(
            "inquiry",
            inquiry_rate,
            inquiry_requests(web.port, auth["01"], "01", itertools.cycle(inquiry_cids)),
        ),
        loadgen.Stream("payment", payment_rate, payments(tokens, MAX_PAYMENTS_PER_PARTNER, tag="o")),
    ]
    common.log(
        f"open loop: {inquiry_rate:.0f} inquiries/s + {payment_rate:.0f} payments/s"
        f" for {args.open_duration:.0f} s"
    )
    cpu = common.CpuMeter({"web": web.pid})
    start = time.perf_counter()
    results = await loadgen.run_open(web.port, streams, duration=args.open_duration)
    usage = cpu.stop(time.perf_counter() - start)
    usage["lock_waits"] = {}
    total = sum(r.requests for r in results.values())
    rows = []
    for stream in streams:
        r = results[stream.name]
        route = "GET /tagihan/<cid>" if stream.name == "inquiry" else "POST /tagihan/<cid>"
        row = summarize(f"{route} ({stream.name}, open {stream.rate:.0f}/s)", r, usage, trivial)
        # CPU per request of the mix: the two streams share the meter
        row["web_cpu_ms"] = round(usage["cpu_seconds"].get("web", 0.0) * 1000 / max(total, 1), 2)
        if row["db_cpu_ms"] is not None:
            row["db_cpu_ms"] = round(usage["cpu_seconds"].get("postgres", 0.0) * 1000 / max(total, 1), 2)
        row["open_loop"] = True
        rows.append(row)
    args.rest = inquiry_cids  # inquiries do not use a customer up: phase 6 may use these again
    return rows


RATE_LIMIT_ON = "1000000"  # requests a second: never refuses, every request takes a token


def main() -> int:
    args = parse_args()
    codes = ["01"] + ([] if args.no_spread else [f"{n:02d}" for n in range(2, 2 + args.partners)])
    codes += [round_partner(k) for k in range(1, args.rounds + 1)]
    args.log_dir.mkdir(parents=True, exist_ok=True)
    weblog = args.log_dir / "api-web.log"
    weblog.write_bytes(b"")
    started = time.time()
    with common.bench_database() as (url, where):
        args.url = url
        with common.service_setup(url, codes) as setup:
            common.log(f"database: {where}")
            common.log(
                f"seeding {args.history} posted payments of an earlier day and {args.customers} customers"
                f" ({len(common.PERIODS)} unpaid bills each)"
            )
            t = time.perf_counter()
            common.seed_history(setup, codes[0], args.history)
            cids = common.seed_customers(setup, args.customers)
            common.log(f"seeded in {time.perf_counter() - t:.1f} s; starting gunicorn (log: {weblog})")
            gconf = common.gunicorn_settings()
            with (
                common.web(setup, weblog, gunicorn_args=args.gunicorn_args) as web,
                common.web(setup, weblog, bare=True, gunicorn_args=args.gunicorn_args) as bare,
            ):
                rows = asyncio.run(run_phases(web, bare, setup, cids, args))
                if not args.no_rate_limit:
                    common.log(f"a second gunicorn with PARTNER_RATE_LIMIT={RATE_LIMIT_ON}")
                    with common.web(setup, weblog, PARTNER_RATE_LIMIT=RATE_LIMIT_ON) as limited:
                        # Customers not paid, over and over: an inquiry does not use a customer up.
                        unpaid = itertools.cycle(args.rest)
                        rows += asyncio.run(rate_limit_phases(web, limited, setup, unpaid, args))
            settings = common.server_settings(url)
    checks = report.targets(rows)
    info = {
        "machine": common.machine_description(),
        "database": f"{where} ({settings})",
        "web": f"{' '.join(common.WEB_COMMAND)} on 127.0.0.1:{web.port}: {gconf['workers']} workers x"
        f" {gconf['threads']} threads ({gconf['worker_class']})",
        "load": f"{args.clients} keep-alive clients, {args.duration:.0f} s per phase, {args.customers} customers",
        "total time": f"{time.time() - started:.0f} s",
    }
    report.print_report(info, rows, checks)
    if args.json:
        doc = json.dumps({"info": info, "rows": rows, "targets": checks}, indent=2)
        if args.json == "-":
            print(doc)
        else:
            Path(args.json).write_text(doc + "\n")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
