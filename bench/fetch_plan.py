"""Procrastinate's fetch on a plan made while the job table was small.

``procrastinate_fetch_job_v2`` is a PL/pgSQL function: a session keeps the plan it made
for the fetch's query. Made on a nearly empty, analysed job table (a fresh database's
first minutes, or a server without autovacuum), that plan is a nested-loop anti-join
that reads the whole table once per waiting job. This times a fetch in three states, each on a
fresh database (``DATABASE_URL``'s server, else the embedded one) migrated as the service
migrates it:

- ``stale``: the session fetched first while the table held a few jobs, then
  ``--done`` finished jobs and ``--waiting`` waiting ones were added;
- ``fresh session``: the same table, a new session (its plan made on the table as it is);
- ``analysed``: the same, after ANALYZE (as autovacuum leaves it).

Each fetch takes a waiting job and one more job is added, so the number waiting holds.

    .venv/bin/python bench/fetch_plan.py [--done 2000] [--waiting 60 200] [--fetches 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import psycopg  # noqa: E402

QUEUES = ["posting", "maintenance"]
ADD = (
    "insert into procrastinate_jobs (queue_name, task_name, args, status)"
    " select 'posting', 'posting.post_payment', '{}', %s::procrastinate_job_status"
    " from generate_series(1, %s)"
)
FETCH = "select id from procrastinate_fetch_job_v2(%s::varchar[], %s)"


def timed_fetches(conn: psycopg.Connection, worker: int, count: int) -> float:
    """The median ms of ``count`` fetches, each followed by one job added."""
    runs = []
    for _ in range(count):
        t = time.perf_counter()
        conn.execute(FETCH, (QUEUES, worker))
        runs.append((time.perf_counter() - t) * 1000)
        conn.execute(ADD, ("todo", 1))
    return statistics.median(runs[5:])


def one_case(done: int, waiting: int, fetches: int) -> dict[str, float]:
    with common.bench_database() as (url, _), psycopg.connect(url, autocommit=True) as conn:
        worker = conn.execute("select procrastinate_register_worker_v1()").fetchone()[0]
        conn.execute(ADD, ("succeeded", 3))
        conn.execute("vacuum analyze procrastinate_jobs")
        for _ in range(12):  # the session's plan, made on the small table
            conn.execute(ADD, ("todo", 1))
            conn.execute(FETCH, (QUEUES, worker))
        conn.execute(ADD, ("succeeded", done))
        conn.execute(ADD, ("todo", waiting))
        figures = {"stale": timed_fetches(conn, worker, fetches)}
        with psycopg.connect(url, autocommit=True) as other:
            figures["fresh session"] = timed_fetches(other, worker, fetches)
            other.execute("analyze procrastinate_jobs")
            figures["analysed"] = timed_fetches(other, worker, fetches)
        return figures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--done", type=int, default=2000, help="finished jobs in the table")
    p.add_argument("--waiting", type=int, nargs="+", default=[60, 200], help="jobs waiting")
    p.add_argument("--fetches", type=int, default=40)
    args = p.parse_args(argv)
    print(f"{common.machine_description()}; Python loop {common.machine_speed_ms()} ms")
    print("| finished | waiting | stale plan ms | fresh session ms | analysed ms |\n|---|---|---|---|---|")
    for waiting in args.waiting:
        f = one_case(args.done, waiting, args.fetches)
        print(
            f"| {args.done} | {waiting} | {f['stale']:.2f} | {f['fresh session']:.2f} | {f['analysed']:.2f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
