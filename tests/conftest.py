"""Test fixtures: real PostgreSQL, schema built once, a fresh database per test.

The server is ``TEST_DATABASE_URL`` when set (CI's second leg), else an
embedded pgserver under ``instance/test-pgdata``. The migrations run once per
session into a template database; each test gets its own copy
(``create database ... template``), so tests may commit, run concurrent
requests and start worker processes without seeing each other.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import queue
import threading
from pathlib import Path

import jwt as pyjwt
import psycopg
import pytest
from sqlalchemy.engine import make_url

from pdam import create_app
from pdam.core import tokens
from pdam.infra import migrations

ROOT = Path(__file__).resolve().parent.parent
ISSUER = "pdam-test"
_counter = itertools.count()


def url_for_database(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url.replace("postgres://", "postgresql://", 1)
    from pdam.infra import embedded

    return embedded.start(ROOT / "instance" / "test-pgdata", database="postgres", keep_running=False)


def _admin(server_url: str) -> psycopg.Connection:
    return psycopg.connect(server_url, autocommit=True)


class Databases:
    """Per-test databases copied from the session's template.

    ``strategy file_copy`` copies the template's files (a third of the time of the
    default WAL-logged copy for a schema this small), and a finished test's database
    is dropped by a background thread while the next test runs.
    """

    def __init__(self, server_url: str, template: str):
        self.server_url, self.template = server_url, template
        self.admin = _admin(server_url)
        self.dropping: queue.Queue[str | None] = queue.Queue()
        self.dropper = threading.Thread(target=self._drop_all, name="drop-test-databases", daemon=True)
        self.dropper.start()

    def create(self) -> str:
        name = f"pdam_t_{os.getpid()}_{next(_counter)}"
        self.admin.execute(f'create database "{name}" template "{self.template}" strategy file_copy')
        # A commit need not wait for its WAL flush here: nothing in a test survives a crash
        # of this server (the crash drills run servers of their own).
        self.admin.execute(f'alter database "{name}" set synchronous_commit = off')
        return name

    def drop_later(self, name: str) -> None:
        self.dropping.put(name)

    def _drop_all(self) -> None:
        with _admin(self.server_url) as conn:
            while (name := self.dropping.get()) is not None:
                conn.execute(f'drop database if exists "{name}" with (force)')

    def close(self) -> None:
        self.dropping.put(None)
        self.dropper.join()
        self.admin.close()


@pytest.fixture(scope="session")
def template_db(server_url):
    name = f"pdam_tpl_{os.getpid()}"
    with _admin(server_url) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    migrations.upgrade(url_for_database(server_url, name))
    yield name
    with _admin(server_url) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def databases(server_url, template_db):
    dbs = Databases(server_url, template_db)
    yield dbs
    dbs.close()


@pytest.fixture
def database_url(server_url, databases):
    """A fresh, migrated database for this test only."""
    name = databases.create()
    yield url_for_database(server_url, name)
    databases.drop_later(name)


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> dict:
    out = {}
    for name, alg in (("ES256", "ES256"), ("RS256", "RS256"), ("other", "ES256")):
        folder = tmp_path_factory.mktemp(name)
        private, public = tokens.keygen(folder, alg)
        out[name] = {"private": private.read_text(), "public": public.read_text(), "dir": folder}
    return out


@pytest.fixture
def app_config(database_url, keys) -> dict:
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "BILLING_DATABASE_URL": None,
        "PDAM_JWT_ALGORITHM": "ES256",
        "PDAM_JWT_PUBLIC_KEY": keys["ES256"]["public"],
        "JWT_PRIVATE_KEY_FILE": str(keys["ES256"]["dir"] / "private.pem"),
        "JWT_ISSUER": ISSUER,
        "DB_POOL_SIZE": 10,
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": True,
    }


@pytest.fixture
def make_app(app_config):
    apps = []

    def factory(**overrides):
        app = create_app({**app_config, **overrides})
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["pdam.runtime"].dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def run_sql(database_url):
    """Run SQL on the test database outside the app (committed at once)."""

    def run(sql: str, params=None):
        with psycopg.connect(database_url, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else cur.rowcount

    return run


def sign(keys, claims: dict, alg: str = "ES256", key: str | None = None, headers=None) -> str:
    return pyjwt.encode(claims, key or keys[alg]["private"], algorithm=alg, headers=headers)


@pytest.fixture
def issue_token(app, keys):
    """Issue a token through the domain code the CLI uses (recorded jti)."""

    def issue(code: str = "00", days: int = 30, now: dt.datetime | None = None) -> str:
        now = (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
        from pdam.web import runtime

        with app.app_context(), runtime.transaction() as conn:
            return tokens.issue(
                conn,
                code=code,
                private_key=keys["ES256"]["private"],
                algorithm="ES256",
                issuer=ISSUER,
                now=now,
                expires=now + dt.timedelta(days=days),
            )

    return issue


@pytest.fixture
def add_partner(app):
    from pdam.core import partners
    from pdam.web import runtime

    def add(code: str = "00", name: str = "BANK1"):
        with app.app_context(), runtime.transaction() as conn:
            partners.add(conn, code, name)

    return add


@pytest.fixture
def partner_headers(add_partner, issue_token):
    """Authorization headers of an active partner ``00`` (BANK1)."""
    add_partner("00", "BANK1")
    return {"Authorization": f"Bearer {issue_token('00')}"}


@pytest.fixture
def auth_for(add_partner, issue_token):
    """Headers for another partner: ``auth_for("96", "BANK2")``."""

    def make(code: str, name: str = "OTHER") -> dict:
        add_partner(code, name)
        return {"Authorization": f"Bearer {issue_token(code)}"}

    return make


CSV_HEADER = (
    "cid,nama,alamat,golongan,bill_id,periode,meter_awal,meter_akhir,pakai,"
    "air,administrasi,ppn_administrasi,denda,angsuran\n"
)
CONTRACT_CUSTOMER = "010101010101"
CONTRACT_BILL = (
    "010101010101,Semar Badranaya,Jl. Perjuangan No. 102,10R - Rumah Tangga 10,"
    "1234202005,202005,496,501,10,50000,8000,800,30000,0\n"
)


@pytest.fixture
def seed_bills(app):
    """Load bills through the importer: ``seed_bills(csv_lines)`` or ``seed_bills.simple(cid, periods)``."""
    import io

    from pdam.core import billing
    from pdam.web import runtime

    def seed(lines: str):
        rows = billing.parse_csv(io.StringIO(CSV_HEADER + lines))
        with app.app_context(), runtime.ledger_transaction() as conn:
            billing.import_rows(conn, rows)

    def simple(cid: str, periods, water: int = 40000, late_fee: int = 0):
        seed(
            "".join(
                f"{cid},Pelanggan {cid},Jl. Test,10R,{cid}{p},{p},0,10,10,{water},8000,800,{late_fee},0\n"
                for p in periods
            )
        )

    seed.simple = simple
    return seed


@pytest.fixture
def inquire(client):
    def run(cid: str, headers: dict):
        res = client.get(f"/tagihan/{cid}", headers=headers)
        assert res.status_code == 200, res.json
        return res.json, res.headers["X-Cross-Site"]

    return run


@pytest.fixture
def post_queued(app):
    """Run the posting job of every queued payment in this process, as the worker would
    (the job rows stay: posting an already final payment changes nothing)."""
    from jobs import posting

    runtime = app.extensions["pdam.runtime"]

    def run(attempt: int = 1):
        with psycopg.connect(runtime.database.url, autocommit=True) as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "select (args->>'payment_id')::bigint from procrastinate_jobs"
                    " where task_name = 'posting.post_payment' and status = 'todo' order by id"
                )
            ]
        results = []
        for payment_id in ids:
            results.append(posting.run(runtime, payment_id, attempt))
        return results

    return run


@pytest.fixture
def start_worker(database_url, app_config):
    """Start real worker processes (``python -m jobs``, as the Procfile does) on this test's database."""
    import signal
    import subprocess
    import sys

    procs = []

    def start(supervised: bool = True, log: Path | None = None, **env_overrides) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "JWT_PUBLIC_KEY": app_config["PDAM_JWT_PUBLIC_KEY"],
            "JWT_ISSUER": ISSUER,
            "WORKER_CONCURRENCY": "4",
            "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
            **{k: str(v) for k, v in env_overrides.items()},
        }
        cmd = [sys.executable, "-m", "jobs" if supervised else "jobs.worker"]
        out = log.open("w") if log else subprocess.DEVNULL
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        if log:
            out.close()  # the child has its own copy
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def private_server(tmp_path_factory):
    """A PostgreSQL server of this test's own, to stop and start (see tests/pgcontrol.py)."""
    from tests.pgcontrol import PrivateServer

    server = PrivateServer(tmp_path_factory.mktemp("pg"))
    server.start()
    yield server
    server.destroy()


class Clock:
    """The app's clock, moved by the test (``clock.at = ...``); starts at 2020-08-26 10:00 WIB."""

    def __init__(self):
        from zoneinfo import ZoneInfo

        self.at = dt.datetime(2020, 8, 26, 10, 0, tzinfo=ZoneInfo("Asia/Jakarta"))

    def __call__(self) -> dt.datetime:
        return self.at


@pytest.fixture
def clock():
    """Use with ``make_app(CLOCK=clock)``."""
    return Clock()
