"""Time ``flask --app wsgi bills import`` on a large file (default 50,000 customers x 4 periods).

Writes the CSV into a temporary directory, creates a fresh database for the
run on ``DATABASE_URL``'s server (else the embedded server under the instance
folder), migrates it, runs the import command exactly as an operator would
(a separate process, progress bar on stderr), checks what landed, and drops
the database at the end. The second run imports the same file again: every
bill exists and is unpaid, so it measures the update path.

    .venv/bin/python bench/import_bills.py [--customers 50000] [--periods 4] [--runs 2]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from pdam.core import billing  # noqa: E402
from pdam.infra import embedded, migrations, sealing  # noqa: E402
from pdam.infra import settings as config  # noqa: E402

# The run's database is made and dropped here: a key of the run's own seals its secrets
# (inherited by the import command it starts), unless SECRET_KEYS is set.
os.environ.setdefault("SECRET_KEYS", sealing.generate_key())


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def periods(count: int) -> list[str]:
    """``count`` consecutive billing months ending 2024-12."""
    out, year, month = [], 2024, 12
    for _ in range(count):
        out.append(f"{year}{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return sorted(out)


def write_csv(path: Path, customers: int, months: list[str]) -> int:
    """One row per customer and month; amounts vary so nothing is trivially equal."""
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(billing.COLUMNS)
        for n in range(customers):
            cid = f"01{n:010d}"
            name, address = f"Pelanggan {n}", f"Jl. Merdeka No. {n % 500}, Blok {n % 26}"
            meter = 100 + n % 900
            for i, period in enumerate(months):
                usage = 10 + (n + i) % 30
                writer.writerow(
                    (
                        cid,
                        name,
                        address,
                        "10R - Rumah Tangga 10",
                        f"{cid}{period}",
                        period,
                        meter,
                        meter + usage,
                        usage,
                        usage * 4500,
                        8000,
                        800,
                        (n % 7 == 0) * 10000,
                        0,
                    )
                )
                meter += usage
                rows += 1
    return rows


def server_url() -> tuple[str, str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        return config.libpq_url(url), "DATABASE_URL's server"
    data_dir = config.instance_path() / "pgdata"
    return embedded.start(data_dir, database="postgres"), f"embedded server ({data_dir})"


@contextlib.contextmanager
def fresh_database() -> Iterator[tuple[str, str]]:
    server, where = server_url()
    name = f"pdam_bench_import_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        migrations.upgrade(url, sealer=sealing.from_settings(config.load()))
        yield url, f"{where}, database {name}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--periods", type=int, default=4)
    parser.add_argument("--runs", type=int, default=2, help="1 = first import only; 2 = and a re-import")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pdam-import-") as tmp, fresh_database() as (url, where):
        path = Path(tmp) / "bills.csv"
        started = time.perf_counter()
        rows = write_csv(path, args.customers, periods(args.periods))
        log(
            f"wrote {rows:,} bills of {args.customers:,} customers ({path.stat().st_size / 1e6:.1f} MB)"
            f" in {time.perf_counter() - started:.1f} s"
        )
        with psycopg.connect(url) as conn:
            version = conn.execute("show server_version").fetchone()[0]
        log(f"database: {where}, PostgreSQL {version}")
        command = [sys.executable, "-m", "flask", "--app", "wsgi", "bills", "import", str(path)]
        env = {**os.environ, "DATABASE_URL": url}
        env.pop("BILLING_DATABASE_URL", None)
        results = []
        for run in range(1, args.runs + 1):
            log(f"run {run}: {shlex.join(command)}")
            started = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                log(f"import failed (exit {done.returncode}): {done.stdout.strip()}")
                return 1
            log(done.stdout.strip())
            results.append(seconds)
        with psycopg.connect(url) as conn:
            bills, customers = conn.execute(
                "select (select count(*) from bill), (select count(*) from customer)"
            ).fetchone()
        if (bills, customers) != (rows, args.customers):
            log(f"unexpected result: {bills} bills, {customers} customers")
            return 1

    print(
        f"bills import: {rows:,} bills of {args.customers:,} customers, one transaction, PostgreSQL {version}"
    )
    for run, seconds in enumerate(results, 1):
        kind = "new bills" if run == 1 else "re-import (every bill updated)"
        print(
            f"  run {run} ({kind}): {seconds:.1f} s wall, {rows / seconds:,.0f} bills/s"
            " (process start, parse and check, COPY, upsert, commit)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
