"""What both benchmarks share: a throw-away database, partners and tokens,
seeded customers, and the Procfile's processes (``web`` and ``worker``).

Nothing here changes the service: the database is a fresh one created for the
run (``pdam_bench_<pid>``) on ``DATABASE_URL``'s server or on the embedded
server, migrated with the same code as ``flask db upgrade``, and dropped at
the end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from pdam import create_app  # noqa: E402
from pdam.cli.token import signer  # noqa: E402
from pdam.core import billing, partners, tokens  # noqa: E402
from pdam.infra import embedded, migrations, sealing  # noqa: E402
from pdam.infra import settings as config  # noqa: E402
from pdam.web import runtime  # noqa: E402

# Bench databases are made and dropped by each run: a key of the run's own seals their
# secrets (inherited by the web and worker processes it starts), unless SECRET_KEYS is set.
os.environ.setdefault("SECRET_KEYS", sealing.generate_key())
SEALER = sealing.from_settings(config.load())

PERIODS = ("202401", "202402")  # every seeded customer owes these two bills
MERCHANT = "B001"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the database ---------------------------------------------------------


def server_url() -> tuple[str, str]:
    """(admin URL, description): ``DATABASE_URL``'s server, else the embedded one."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return config.libpq_url(url), "DATABASE_URL"
    data_dir = config.instance_path() / "pgdata"
    return embedded.start(data_dir, database="postgres"), f"embedded server ({data_dir})"


def url_for_database(server: str, name: str) -> str:
    return make_url(server).set(database=name).render_as_string(hide_password=False)


@contextlib.contextmanager
def bench_database() -> Iterator[tuple[str, str]]:
    """A fresh, migrated database for this run; dropped at the end. Yields (url, where)."""
    server, where = server_url()
    name = f"pdam_bench_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    url = url_for_database(server, name)
    try:
        migrations.upgrade(url, sealer=SEALER)
        CpuMeter.watch_server(url)
        yield url, f"{where}, database {name}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def settle(url: str) -> None:
    """Do now the cleanup earlier work left (autovacuum's, the checkpointer's), so that
    it does not run during the next measurement."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze")
        conn.execute("checkpoint")


def server_settings(url: str) -> str:
    with psycopg.connect(url) as conn:
        version = conn.execute("show server_version").fetchone()[0]
        sync = conn.execute("show synchronous_commit").fetchone()[0]
        fsync = conn.execute("show fsync").fetchone()[0]
    return f"PostgreSQL {version}, fsync={fsync}, synchronous_commit={sync}"


# --- partners, tokens, customers --------------------------------------------


@dataclass
class Setup:
    url: str
    app: object  # the Flask app the script uses for setup (not the one under test)
    public_key: str
    tokens: dict[str, str]  # partner code -> bearer token


@contextlib.contextmanager
def service_setup(url: str, partner_codes: list[str]) -> Iterator[Setup]:
    """Key pair in a temp dir, partners with one token each (as ``token issue`` does)."""
    cfg = config.load()
    algorithm = cfg["PDAM_JWT_ALGORITHM"]
    with tempfile.TemporaryDirectory(prefix="pdam-bench-keys-") as keydir:
        private, public = tokens.keygen(Path(keydir), algorithm)
        public_key = public.read_text()
        app = create_app(
            {"DATABASE_URL": url, "BILLING_DATABASE_URL": None, "PDAM_JWT_PUBLIC_KEY": public_key}
        )
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        issued = {}
        with app.app_context(), runtime.transaction() as conn:
            for code in partner_codes:
                partners.add(conn, code, f"BENCH{code}", SEALER)
                expires = now + dt.timedelta(days=1)
                sign = signer(private.read_text())
                issued[code] = tokens.issue(conn, code=code, now=now, expires=expires, sign=sign)
        try:
            yield Setup(url, app, public_key, issued)
        finally:
            app.extensions["pdam.runtime"].dispose()


def customer_id(k: int) -> str:
    return f"{700000000000 + k}"


def bill_amounts(k: int) -> list[tuple[str, int, int, int, int, int]]:
    """(period, water, admin_fee, admin_vat, late_fee, installment) of customer ``k``'s bills."""
    water = 30000 + (k % 97) * 500
    return [
        (p, water + i * 1000, 8000, 800, (k % 3) * 5000 if i == 0 else 0, 0) for i, p in enumerate(PERIODS)
    ]


def customer_total(k: int) -> int:
    return sum(sum(b[1:]) for b in bill_amounts(k))


HISTORY = (Path(__file__).parent / "history.sql").read_text(encoding="utf-8")


def seed_history(setup: Setup, partner: str, count: int) -> None:
    """``count`` payments of an earlier day, posted (with their inquiries, periods, posting
    jobs and delivered callbacks: ``bench/history.sql``), as a service that has run for a
    while holds them. Plans made on empty tables that then grow by thousands of rows a
    minute scan them until autovacuum's first ANALYZE; with a history the statistics
    describe tables like production's, as after that ANALYZE."""
    day = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=2)
    with psycopg.connect(setup.url, autocommit=True) as conn:
        conn.execute(HISTORY, {"partner": partner, "day": day, "count": count})


def seed_customers(setup: Setup, count: int, first: int = 0) -> list[str]:
    """``count`` customers from key ``first`` on, two unpaid bills each, loaded through the bills
    importer."""
    out = io.StringIO()
    out.write(",".join(billing.COLUMNS) + "\n")
    for k in range(first, first + count):
        cid = customer_id(k)
        for period, water, admin, vat, late, inst in bill_amounts(k):
            out.write(
                f"{cid},Pelanggan {k},Jl. Bench No. {k % 500},10R - Rumah Tangga 10,"
                f"{cid}{period},{period},100,110,10,{water},{admin},{vat},{late},{inst}\n"
            )
    out.seek(0)
    rows = billing.parse_csv(out)
    with setup.app.app_context(), runtime.ledger_transaction() as conn:
        billing.import_rows(conn, rows)
    with psycopg.connect(setup.url, autocommit=True) as conn:
        conn.execute("analyze")
    return [customer_id(k) for k in range(first, first + count)]


# --- the Procfile's processes ----------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_env(setup: Setup, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("BILLING_DATABASE_URL", None)  # the ledger lives in the bench database
    env.update(DATABASE_URL=setup.url, JWT_PUBLIC_KEY=setup.public_key)
    env["PARTNER_RATE_LIMIT"] = "0"  # the routes alone; bench/api.py measures the limit's cost itself
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def _stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # anything the process left behind in its own session
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


WEB_COMMAND = ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]  # the Procfile's web line
WORKER_COMMAND = ["python", "-m", "jobs"]  # the Procfile's worker line


@dataclass
class Web:
    port: int
    pid: int  # gunicorn's master; its workers share its session id


@contextlib.contextmanager
def web(
    setup: Setup, logfile: Path, bare: bool = False, gunicorn_args: str = "", **extra_env: str
) -> Iterator[Web]:
    """The Procfile's web process on a free port; bound to loopback only
    (``GUNICORN_CMD_ARGS`` overrides the config file's 0.0.0.0, and adds ``gunicorn_args``).
    ``bare``: the same gunicorn settings serving bench/bare.py instead of the product."""
    port = free_port()
    cmd_args = f"--bind 127.0.0.1:{port} {gunicorn_args}".strip()
    env = service_env(setup, PORT=str(port), GUNICORN_CMD_ARGS=cmd_args, **extra_env)
    command = [*WEB_COMMAND[:-1], "--pythonpath", "bench", "bare:app"] if bare else WEB_COMMAND
    with logfile.open("ab") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while not _http_ok(port, "/health/live"):
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {proc.returncode}; see {logfile}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within 60 s; see {logfile}")
            time.sleep(0.1)
        yield Web(port, proc.pid)
    finally:
        _stop(proc)


@contextlib.contextmanager
def worker(setup: Setup, logfile: Path, **extra_env: str) -> Iterator[subprocess.Popen]:
    """The Procfile's worker process (``python -m jobs``, supervised, config defaults
    unless ``extra_env`` says otherwise)."""
    env = service_env(setup, **extra_env)
    with logfile.open("ab") as out:
        proc = subprocess.Popen(
            WORKER_COMMAND, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        _stop(proc)


def _http_ok(port: int, path: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def gunicorn_settings() -> dict:
    """gunicorn.conf.py's workers, threads and worker class, as it computes them here."""
    import runpy

    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    return {k: conf.get(k) for k in ("workers", "threads", "worker_class")}


def worker_concurrency() -> int:
    return config.load()["WORKER_CONCURRENCY"]


# --- figures ---------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (p in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


class CpuMeter:
    """CPU used during a phase, from /proc: the whole machine's busy share, and
    CPU seconds per group of processes: ``web`` (gunicorn's session),
    ``worker`` (the job worker's session), ``postgres`` (the bench database's
    server: its postmaster and children), ``client`` (this process) and
    ``other`` (everything else: other work on a shared machine shows up here)."""

    TICK = os.sysconf("SC_CLK_TCK")
    postmaster: int | None = None  # set once per run by ``watch_server``
    database: str = ""

    def __init__(self, sessions: dict[str, int] | None = None) -> None:
        self.sessions = {sid: name for name, sid in (sessions or {}).items()}
        self.start = self._sample()

    @classmethod
    def watch_server(cls, url: str) -> None:
        """Find the database server's postmaster (None when it runs on another host)."""
        with psycopg.connect(url) as conn:
            backend, cls.database = conn.execute("select pg_backend_pid(), current_database()").fetchone()
            try:
                with open(f"/proc/{backend}/stat") as f:
                    raw = f.read()
                cls.postmaster = int(raw[raw.rindex(")") + 2 :].split()[1])
            except (OSError, ValueError):
                cls.postmaster = None

    def _sample(self) -> tuple[float, float, dict[tuple[int, int], tuple[str, float]]]:
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        procs: dict[tuple[int, int], tuple[str, float]] = {}
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    raw = f.read()
            except OSError:
                continue
            rest = raw[raw.rindex(")") + 2 :].split()
            session = int(rest[3])
            cpu = (int(rest[11]) + int(rest[12])) / self.TICK
            if int(entry) == me:
                name = "client"
            elif session in self.sessions:
                name = self.sessions[session]
            elif self.postmaster and self.postmaster in (int(entry), int(rest[1])):
                name = "postgres" if self._ours(entry) else "other"
            else:
                name = "other"
            procs[(int(entry), int(rest[19]))] = (name, cpu)  # (pid, start time): pids get reused
        return sum(fields[:8]), idle, procs

    def _ours(self, pid: str) -> bool:
        """The postmaster, its helpers (shared, small) and the backends of our database;
        not the backends of other databases on the same server."""
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read().replace(b"\0", b" ").decode(errors="replace").split()
        except OSError:
            return False
        # a backend's title: "postgres: [<cluster>:] <user> <database> <client> <state>"
        words = title[1:] if title[:1] == ["postgres:"] else title
        if words and words[0].endswith(":"):
            words = words[1:]
        if len(words) >= 3 and ("(" in words[2] or words[2] == "[local]"):
            return words[1] == self.database
        return True

    def stop(self, wall: float) -> dict:
        total, idle, procs = self._sample()
        total0, idle0, procs0 = self.start
        busy = 1 - (idle - idle0) / max(total - total0, 1)
        # a process that ended during the phase is not counted (its CPU is gone from /proc)
        seconds: dict[str, float] = {}
        for key, (name, cpu) in procs.items():
            seconds[name] = seconds.get(name, 0.0) + cpu - procs0.get(key, (name, 0.0))[1]
        cores = {k: v / max(wall, 1e-9) for k, v in seconds.items()}
        # "other": everything but our processes, from the machine's busy time (this also
        # counts processes that started and ended within the phase, which /proc no longer shows)
        ours = sum(v for k, v in cores.items() if k != "other")
        cores["other"] = max(0.0, busy * (os.cpu_count() or 1) - ours)
        return {
            "machine_busy": busy,
            "client_cores": cores.get("client", 0.0),
            "cores": cores,
            "cpu_seconds": seconds,
        }


def machine_description() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"


def machine_speed_ms() -> float:
    """How fast one core runs Python now: the median of 5 runs of a fixed loop (a million
    additions), in ms. On a shared machine this drifts by the minute and by the day; a
    figure taken next to a measurement says which machine it was measured on."""
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        runs.append((time.perf_counter() - t) * 1000)
    return round(sorted(runs)[2], 1)
