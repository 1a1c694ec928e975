"""The job server: how fast one worker drains posting jobs, against no-op jobs,
and the accept-to-final latency of payments at a steady rate.

Creates a fresh database (on ``DATABASE_URL``'s server, else the embedded
one), seeds customers through the bills importer and then:

1. records ``--jobs`` payments through the real domain code (an inquiry and
   ``payment.accept`` each, so each commits with its posting job) while no
   worker runs, starts one worker as the Procfile does (``python -m jobs``,
   default configuration) and times how fast it posts them all;
2. defers the same number of ``maintenance.noop`` jobs in one transaction and
   times the same worker configuration draining them;
3. runs the web process and a worker together, sends ``--rate`` payments per
   second (each with an inquiry made beforehand) for ``--latency-duration``
   seconds and reports, per payment, the time from acceptance to its final
   state (``posted_at - accepted_at``, both from the service's clock).

Drain rates come from the queue's own event times (first job started to last
job finished), so the worker's start-up is not counted. The database is
dropped at the end.

    .venv/bin/python bench/worker.py [--jobs 5000] [--rate 100] [--latency-duration 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import psycopg  # noqa: E402
from latency import LATENCY_PARTNER, latency_phase, print_latency  # noqa: E402

TARGET_RATIO = 0.80
TARGET_P99_S = 1.0
QUEUED_PARTNER = "01"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=5000, help="payments (and no-op jobs) to drain (5000)")
    p.add_argument("--rate", type=float, default=100.0, help="payments per second of the latency phase (100)")
    p.add_argument("--latency-duration", type=float, default=20.0, help="seconds of the latency phase (20)")
    p.add_argument("--timeout", type=float, default=600.0, help="give up a drain after this many seconds")
    p.add_argument(
        "--stale-stats",
        action="store_true",
        help="do not ANALYZE the queue table after filling it (see docs/benchmarks.md)",
    )
    p.add_argument("--no-latency", action="store_true", help="only the drains, skip the latency phase")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON ('-' for stdout)")
    p.add_argument(
        "--log-dir",
        type=Path,
        default=common.ROOT / "bench" / "results",
        help="where the worker's and gunicorn's output goes (bench/results)",
    )
    args = p.parse_args()
    if not 1 <= args.jobs <= 9900 or args.rate * args.latency_duration > 9900:
        p.error("at most 9900 payments per phase (a partner has 9,999 receipt numbers a day)")
    return args


# --- recording payments and no-op jobs ------------------------------------------


def record_payments(setup: common.Setup, code: str, keys: range, batch: int = 250) -> None:
    """For each customer index: an inquiry, then ``payment.accept``, which defers the
    posting job in the same transaction (``batch`` payments per transaction)."""
    from pdam.core import inquiry, payments
    from pdam.web import runtime

    keys = list(keys)
    with setup.app.app_context():
        ttl = setup.app.config["INQUIRY_TTL_SECONDS"]
        for start in range(0, len(keys), batch):
            with runtime.transaction() as conn:
                now = runtime.now()
                for k in keys[start : start + batch]:
                    cid = common.customer_id(k)
                    inq = inquiry.inquire(conn, runtime.ledger_connection(), code, cid, now, ttl)
                    req = payments.PaymentRequest(
                        customer_id=cid,
                        inquiry_token=inq.token,
                        amount=common.customer_total(k),
                        periods=common.PERIODS,
                        merchant=common.MERCHANT,
                        reference=f"q-{code}-{k}",
                    )
                    payments.accept(conn, code, req, now)


def defer_noops(setup: common.Setup, count: int) -> None:
    import procrastinate

    with psycopg.connect(setup.url) as conn, conn.transaction():
        # A deferring App of its own (no pool: the connection is given), as pdam/infra/port.py does.
        deferrer = procrastinate.App(connector=procrastinate.SyncPsycopgConnector()).configure_task(
            "maintenance.noop", queue="maintenance", connection=conn
        )
        deferrer.batch_defer(*({} for _ in range(count)))


def analyze_queue(setup: common.Setup, args) -> None:
    """Give the planner the queue table's statistics, as autovacuum's analyze does
    within a minute or so in a running deployment. Without them, right after a burst
    into a table analyzed while small, the queue's fetch query sorts every waiting
    job on each fetch (``--stale-stats`` shows that case)."""
    if not args.stale_stats:
        with psycopg.connect(setup.url, autocommit=True) as conn:
            conn.execute("analyze procrastinate_jobs")


# --- draining -----------------------------------------------------------------

EVENT_TIMES = """
select count(distinct j.id),
       min(e.at) filter (where e.type = 'started'),
       max(e.at) filter (where e.type in ('succeeded', 'failed'))
from procrastinate_jobs j join procrastinate_events e on e.job_id = j.id
where j.task_name = %s
"""
JOB_STATES = "select status::text, count(*) from procrastinate_jobs where task_name = %s group by 1"


def drain(
    setup: common.Setup, task: str, done_sql: str, done_args: tuple, total: int, args, log: Path
) -> dict:
    """Start one worker on a queue holding ``total`` jobs of ``task``; wait until
    ``done_sql`` counts ``total``; stop the worker."""
    with psycopg.connect(setup.url, autocommit=True) as conn:
        spawned = time.monotonic()
        with common.worker(setup, log) as proc:
            deadline = spawned + args.timeout
            cpu = None
            while True:
                done = conn.execute(done_sql, done_args).fetchone()[0]
                if cpu is None and done > 0:  # the worker is up: measure CPU from here on
                    cpu, cpu_from, done_from = common.CpuMeter({"worker": proc.pid}), time.monotonic(), done
                if done >= total:
                    break
                if proc.poll() is not None:
                    raise RuntimeError(f"the worker exited with {proc.returncode}; see {log}")
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{task}: only {done}/{total} done after {args.timeout:.0f} s; see {log}"
                    )
                time.sleep(0.05)
            wall = time.monotonic() - spawned
            usage = cpu.stop(time.monotonic() - cpu_from)
        count, first, last = conn.execute(EVENT_TIMES, (task,)).fetchone()
        states = dict(conn.execute(JOB_STATES, (task,)).fetchall())
    span = (last - first).total_seconds()
    measured = max(total - done_from, 1)
    return {
        "task": task,
        "jobs": count,
        "seconds": round(span, 2),
        "jobs_per_s": round(count / span, 1) if span > 0 else None,
        "wall_with_startup_s": round(wall, 2),
        "job_states": states,
        "worker_cpu_ms": round(usage["cpu_seconds"].get("worker", 0.0) * 1000 / measured, 2),
        "db_cpu_ms": round(usage["cpu_seconds"].get("postgres", 0.0) * 1000 / measured, 2)
        if common.CpuMeter.postmaster
        else None,
        "other_cores": round(usage["cores"].get("other", 0.0), 2),
        "machine_busy": round(usage["machine_busy"], 2),
    }


def print_report(info: dict, drains: list[dict], ratio: float, lat: dict | None, checks: list[dict]) -> None:
    print()
    for k, v in info.items():
        print(f"{k:>12}: {v}")
    print()
    head = (
        f"{'drain: task':<24} {'jobs':>5} {'seconds':>7} {'jobs/s':>7} {'startup+drain s':>15}"
        f" {'worker cpu':>10} {'db cpu':>6} {'others':>6} {'busy':>5}  job states"
    )
    print(head)
    print("-" * len(head))
    for d in drains:
        print(
            f"{d['task']:<24} {d['jobs']:>5} {d['seconds']:>7.1f} {d['jobs_per_s']:>7.0f}"
            f" {d['wall_with_startup_s']:>15.1f} {d['worker_cpu_ms']:>10.2f}"
            f" {'n/a' if d['db_cpu_ms'] is None else format(d['db_cpu_ms'], '.2f'):>6}"
            f" {d['other_cores']:>6.2f} {d['machine_busy']:>5.0%}  {d['job_states']}"
        )
    print(f"posting / no-op: {ratio:.2f}")
    print(
        "worker cpu / db cpu: CPU ms per job in the worker / in PostgreSQL; others: cores used by other processes"
    )
    print()
    if lat:
        print_latency(lat)
        print()
    for c in checks:
        print(f"{'PASS' if c['ok'] else 'MISS'}  {c['check']}: {c['value']}")


def main() -> int:
    args = parse_args()
    args.log_dir.mkdir(parents=True, exist_ok=True)
    logs = {name: args.log_dir / f"worker-{name}.log" for name in ("posting", "noop", "steady", "web")}
    for path in logs.values():
        path.write_bytes(b"")
    started = time.time()
    steady = int(args.rate * args.latency_duration)
    with common.bench_database() as (url, where):
        with common.service_setup(url, [QUEUED_PARTNER, LATENCY_PARTNER]) as setup:
            common.log(f"database: {where}")
            common.log(f"seeding {args.jobs + steady} customers")
            common.seed_customers(setup, args.jobs + steady)
            common.log(f"recording {args.jobs} payments through payment.accept (no worker running)")
            t = time.perf_counter()
            record_payments(setup, QUEUED_PARTNER, range(args.jobs))
            analyze_queue(setup, args)
            common.log(
                f"recorded in {time.perf_counter() - t:.1f} s; one worker drains them (log: {logs['posting']})"
            )
            posting = drain(
                setup,
                "posting.post_payment",
                "select count(*) from payment where partner_code = %s and status <> 'created'",
                (QUEUED_PARTNER,),
                args.jobs,
                args,
                logs["posting"],
            )
            common.log(f"deferring {args.jobs} no-op jobs; one worker drains them (log: {logs['noop']})")
            defer_noops(setup, args.jobs)
            analyze_queue(setup, args)
            noop = drain(
                setup,
                "maintenance.noop",
                "select count(*) from procrastinate_jobs where task_name = %s and status in ('succeeded', 'failed')",
                ("maintenance.noop",),
                args.jobs,
                args,
                logs["noop"],
            )
            lat = None
            if not args.no_latency:
                common.log("accept-to-final latency: web + worker")
                lat = latency_phase(setup, args.jobs, args, logs["web"], logs["steady"])
            settings = common.server_settings(url)
    ratio = posting["jobs_per_s"] / noop["jobs_per_s"]
    checks = [
        {
            "check": f"posting drain >= {TARGET_RATIO:.0%} of the no-op rate",
            "value": round(ratio, 3),
            "ok": ratio >= TARGET_RATIO,
        },
    ]
    if lat:
        checks.append(
            {
                "check": f"accept-to-final p99 < {TARGET_P99_S:.0f} s",
                "value": lat["final_p99_ms"] / 1000,
                "ok": lat["final_p99_ms"] / 1000 < TARGET_P99_S,
            }
        )
    info = {
        "machine": common.machine_description(),
        "database": f"{where} ({settings})",
        "worker": f"{' '.join(common.WORKER_COMMAND)}: one process, concurrency {common.worker_concurrency()}",
        "queue stats": "stale (--stale-stats)" if args.stale_stats else "ANALYZE after filling the queue",
        "total time": f"{time.time() - started:.0f} s",
    }
    print_report(info, [posting, noop], ratio, lat, checks)
    if args.json:
        doc = json.dumps(
            {"info": info, "drains": [posting, noop], "ratio": ratio, "latency": lat, "targets": checks},
            indent=2,
        )
        if args.json == "-":
            print(doc)
        else:
            Path(args.json).write_text(doc + "\n")
    bad_jobs = any(set(d["job_states"]) - {"succeeded"} for d in (posting, noop))
    return 1 if (lat and lat["errors"]) or bad_jobs else 0


if __name__ == "__main__":
    sys.exit(main())
