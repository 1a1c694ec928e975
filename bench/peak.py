"""The month's peak, end to end: how many payments a second one box holds with callbacks.

Black-box, as partners see it: the Procfile's ``web`` and ``worker`` on a fresh database
(``DATABASE_URL``'s server, else the embedded one) and a callback receiver in this process.
Each step sends, open loop for ``--seconds`` (30), R payment flows a second spread over
``--partners`` partners: an inquiry for a customer, the payment of its bills with
``X-Async`` (sent as soon as the inquiry answers), and a second inquiry (a customer who only
looks, half a period later). So R payments/s and 2R inquiries/s. Latency runs from the moment
a request was due, whatever the server was doing then. R grows by ``--step`` from
``--start`` until a step falls short. A step holds when:

- no request failed (inquiry 200, payment 202, nothing refused or cut);
- inquiry and payment p99 are under 100 ms;
- every payment's final callback (``accepted``) arrived, p99 under 5 s from the payment's
  due time;
- the load itself kept up (at least 95 % of the flows were sent on time).

Per step it reports the latencies, the final callback's delay, and the CPU per payment flow
of each process group (``web``: gunicorn, ``worker``: the job server, ``postgres``: the
database's backends, ``client``: this process, the receiver included; ``other``: anything
else on the machine), and how fast the machine ran Python just before the step (``Python
loop``: ms for a million additions, ``common.machine_speed_ms``; a shared machine's speed
drifts, and figures of different days compare only with it). ``--json`` keeps the
figures; ``--plot`` draws latency p50/p99 and the final callback's delay against R, with
earlier runs (``--compare``) beside it.

    .venv/bin/python bench/peak.py [--start 20] [--step 20] [--seconds 30] \\
        [--json peak.json] [--plot peak.png] [--compare before.json] [--label after]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

HTTP_P99_S = 0.100
CALLBACK_P99_S = 5.0
KEPT_UP = 0.95
DRAIN_S = 30.0  # how long after a step's last payment its final callbacks may still come
KEEPALIVE_REUSE_S = 4.0  # gunicorn.conf.py closes kept-alive connections idle for 5 s
LOOKERS = 2000  # customers who only look (the second inquiry of each flow); they never pay
FINAL = {"accepted", "changed", "rejected"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--start", type=float, default=20, help="payments/s of the first step")
    p.add_argument("--step", type=float, default=20, help="payments/s added per step")
    p.add_argument("--max", type=float, default=400, help="stop after this rate even if it holds")
    p.add_argument("--seconds", type=float, default=30, help="length of a step")
    p.add_argument("--partners", type=int, default=8)
    p.add_argument("--history", type=int, default=20000, help="posted payments of an earlier day")
    p.add_argument("--label", default="this run")
    p.add_argument("--json", type=Path, help="write the figures here")
    p.add_argument("--plot", type=Path, help="draw the figures as a PNG (needs matplotlib)")
    p.add_argument("--compare", type=Path, action="append", default=[], help="an earlier --json to draw")
    p.add_argument("--keep-going", action="store_true", help="run every step up to --max")
    return p.parse_args(argv)


# --- customers ------------------------------------------------------------------------


# --- HTTP: a keep-alive client and a callback receiver --------------------------------


class Client:
    """Open-loop HTTP/1.1 over a pool of kept-alive connections: a request never waits for a
    free connection (a new one is opened), so the server's slowness shows as latency."""

    def __init__(self, port: int):
        self.port = port
        self.pool: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def _connection(self):
        while self.pool:
            reader, writer, used = self.pool.pop()
            if time.monotonic() - used < KEEPALIVE_REUSE_S:
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        return reader, writer, False

    async def send(self, req: bytes) -> tuple[int, bytes]:
        """(status, head); a reused connection found closed is retried once on a new one
        (every request here is safe to send again: payments carry their ``pid``)."""
        for attempt in (1, 2):
            reader, writer, reused = await self._connection()
            try:
                writer.write(req)
                head = await reader.readuntil(b"\r\n\r\n")
                lower = head.lower()
                i = lower.find(b"\r\ncontent-length:")
                length = int(lower[i + 17 : lower.find(b"\r\n", i + 2)]) if i >= 0 else 0
                await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError) as exc:
                writer.close()
                if reused and attempt == 1:
                    continue
                raise ConnectionError(repr(exc)) from exc
            self.pool.append((reader, writer, time.monotonic()))
            return int(head[9:12]), head
        raise AssertionError("unreachable")

    def close(self) -> None:
        for _, writer, _ in self.pool:
            writer.close()
        self.pool.clear()


def request(method: str, path: str, port: int, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    if method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def header(head: bytes, name: bytes) -> str | None:
    i = head.lower().find(b"\r\n" + name + b":")
    if i < 0:
        return None
    j = head.find(b"\r\n", i + 2)
    return head[i + len(name) + 3 : j if j >= 0 else len(head)].strip().decode()


class Receiver:
    """A partner's callback endpoint: answers 200 at once and keeps when each payment's
    callbacks arrived (``arrived[pid][status]``, monotonic seconds)."""

    def __init__(self) -> None:
        self.arrived: dict[str, dict[str, float]] = {}
        self.callbacks = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # CancelledError too: at the end a kept-alive connection's handler is cancelled, and
        # Python 3.11's stream protocol prints a cancelled handler's "exception" otherwise.
        quiet = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.CancelledError)
        with contextlib.suppress(*quiet):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(header(head, b"content-length") or 0)
                body = json.loads(await reader.readexactly(length))
                self.callbacks += 1
                self.arrived.setdefault(body["data"]["pid"], {})[body["status"]] = time.monotonic()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


# --- one step -------------------------------------------------------------------------


@dataclass
class Step:
    rate: float
    flows: int
    inquiry: list[float] = field(default_factory=list)
    payment: list[float] = field(default_factory=list)
    due: dict[str, float] = field(default_factory=dict)  # pid -> when its payment was due
    errors: list[str] = field(default_factory=list)
    late_sends: int = 0


async def run_step(
    web: common.Web,
    setup: common.Setup,
    receiver: Receiver,
    hook: str,
    rate: float,
    seconds: float,
    first_key: int,
    tag: str,
) -> Step:
    step = Step(rate, int(rate * seconds))
    client = Client(web.port)
    codes = sorted(setup.tokens)

    async def timed(req: bytes, due: float, expect: int, into: list[float]) -> bytes | None:
        try:
            status, head = await client.send(req)
        except ConnectionError as exc:
            step.errors.append(f"connection: {exc}")
            return None
        into.append(time.monotonic() - due)
        if status != expect:
            step.errors.append(f"{req.split(b' ', 2)[:2]} -> {status}")
            return None
        return head

    async def flow(i: int, due: float) -> None:
        k = first_key + i
        code = codes[i % len(codes)]
        auth = {"Authorization": f"Bearer {setup.tokens[code]}"}
        cid = common.customer_id(k)
        head = await timed(request("GET", f"/tagihan/{cid}", web.port, auth), due, 200, step.inquiry)
        if head is None:
            return
        pid = f"{tag}-{k}"
        body = json.dumps(
            {
                "inq": header(head, b"x-cross-site"),
                "amo": common.customer_total(k),
                "per": [int(p) for p in common.PERIODS],
                "mer": common.MERCHANT,
                "pid": pid,
            },
            separators=(",", ":"),
        ).encode()
        headers = {**auth, "Content-Type": "application/json", "X-Async": hook, "X-Async-Token": f"cb-{code}"}
        sent = time.monotonic()
        step.due[pid] = sent
        await timed(request("POST", f"/tagihan/{cid}", web.port, headers, body), sent, 202, step.payment)

    async def look(i: int, due: float) -> None:
        code = codes[i % len(codes)]
        cid = common.customer_id(i % LOOKERS)
        req = request("GET", f"/tagihan/{cid}", web.port, {"Authorization": f"Bearer {setup.tokens[code]}"})
        await timed(req, due, 200, step.inquiry)

    tasks = []
    start = time.monotonic()
    for i in range(step.flows):
        for offset, work in ((0.0, flow), (0.5, look)):
            due = start + (i + offset) / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.05:
                step.late_sends += 1
            tasks.append(asyncio.create_task(work(i, due)))
    await asyncio.gather(*tasks)
    client.close()
    # the final callbacks of this step's payments
    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline and any(
        not FINAL & receiver.arrived.get(pid, {}).keys() for pid in step.due
    ):
        await asyncio.sleep(0.1)
    return step


def summarize(step: Step, receiver: Receiver, usage: dict) -> dict:
    def ms(values: list[float], p: float) -> float:
        return round(common.percentile(sorted(values), p) * 1000, 1)

    finals, missing = [], 0
    for pid, due in step.due.items():
        got = receiver.arrived.get(pid, {})
        final = [t for s, t in got.items() if s in FINAL]
        if final:
            finals.append(final[0] - due)
        else:
            missing += 1
    flows = max(step.flows, 1)
    cpu_ms = {k: round(v * 1000 / flows, 2) for k, v in usage["cpu_seconds"].items()}
    row = {
        "rate": step.rate,
        "flows": step.flows,
        "inquiry_p50_ms": ms(step.inquiry, 50),
        "inquiry_p99_ms": ms(step.inquiry, 99),
        "payment_p50_ms": ms(step.payment, 50),
        "payment_p99_ms": ms(step.payment, 99),
        "callback_p50_ms": ms(finals, 50),
        "callback_p99_ms": ms(finals, 99),
        "callbacks_missing": missing,
        "errors": len(step.errors),
        "error_samples": step.errors[:5],
        "late_sends": step.late_sends,
        "cpu_ms_per_flow": cpu_ms,
        "machine_busy": round(usage["machine_busy"], 2),
    }
    row["held"] = (
        not step.errors
        and not missing
        and row["inquiry_p99_ms"] < HTTP_P99_S * 1000
        and row["payment_p99_ms"] < HTTP_P99_S * 1000
        and row["callback_p99_ms"] < CALLBACK_P99_S * 1000
        and step.late_sends <= (1 - KEPT_UP) * 2 * step.flows
    )
    return row


def print_row(r: dict) -> None:
    cpu = ", ".join(f"{k} {v}" for k, v in sorted(r["cpu_ms_per_flow"].items()))
    print(
        f"R={r['rate']:g}/s {'held' if r['held'] else 'FELL SHORT'}: inquiry p50/p99"
        f" {r['inquiry_p50_ms']}/{r['inquiry_p99_ms']} ms, payment {r['payment_p50_ms']}/{r['payment_p99_ms']} ms,"
        f" final callback {r['callback_p50_ms']}/{r['callback_p99_ms']} ms, missing {r['callbacks_missing']},"
        f" errors {r['errors']}, late sends {r['late_sends']}; CPU ms per flow: {cpu};"
        f" machine busy {r['machine_busy']:.0%}; Python loop {r.get('machine_speed_ms', '?')} ms",
        flush=True,
    )
    for e in r["error_samples"]:
        print(f"    error: {e}")


async def steps(setup: common.Setup, web: common.Web, worker, args) -> list[dict]:
    receiver = Receiver()
    hook = f"http://127.0.0.1:{await receiver.start()}/callback"
    rows, first_key, rate = [], LOOKERS, args.start
    try:
        while rate <= args.max:
            count = int(rate * args.seconds)
            common.log(f"seeding {count} customers, then {rate:g} payments/s for {args.seconds:g} s")
            await asyncio.to_thread(common.seed_customers, setup, count, first_key)
            await asyncio.to_thread(common.settle, setup.url)
            speed = common.machine_speed_ms()
            cpu = common.CpuMeter({"web": web.pid, "worker": worker.pid})
            t = time.monotonic()
            step = await run_step(web, setup, receiver, hook, rate, args.seconds, first_key, f"r{rate:g}")
            row = summarize(step, receiver, cpu.stop(time.monotonic() - t)) | {"machine_speed_ms": speed}
            print_row(row)
            rows.append(row)
            first_key += count
            if not row["held"] and not args.keep_going:
                break
            rate += args.step
    finally:
        receiver.close()
    return rows


# --- main ---------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    codes = [f"{60 + n:02d}" for n in range(args.partners)]
    with common.bench_database() as (url, where):
        common.log(f"database: {where}")
        with common.service_setup(url, codes) as setup:
            if args.history:
                common.seed_history(setup, codes[0], args.history)
            common.seed_customers(setup, LOOKERS)
            logs = Path(common.ROOT / "instance" / "bench")
            logs.mkdir(parents=True, exist_ok=True)
            extra = {"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1", "INQUIRY_TTL_SECONDS": "3600"}
            with common.worker(setup, logs / "peak-worker.log", **extra) as worker:
                with common.web(setup, logs / "peak-web.log", **extra) as web:
                    rows = asyncio.run(steps(setup, web, worker, args))
            info = {
                "label": args.label,
                "machine": common.machine_description(),
                "database": common.server_settings(url),
                "gunicorn": common.gunicorn_settings(),
                "worker_concurrency": common.worker_concurrency(),
                "seconds_per_step": args.seconds,
                "partners": args.partners,
                "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            }
    held = [r["rate"] for r in rows if r["held"]]
    print(f"highest rate held: {max(held) if held else 'none'} payments/s ({args.label})")
    run = {"info": info, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(run, indent=2) + "\n")
    if args.plot:
        from peak_plot import plot

        runs = [json.loads(p.read_text()) for p in args.compare] + [run]
        plot(runs, args.plot, HTTP_P99_S, CALLBACK_P99_S)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
