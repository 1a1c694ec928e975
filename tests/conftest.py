"""Test fixtures: real PostgreSQL, schema built once, a fresh database per test.

The server is ``TEST_DATABASE_URL`` when set (CI's second leg), else an
embedded pgserver under ``instance/test-pgdata``. The migrations run once per
session into a template database; each test gets its own copy
(``create database ... template``), so tests may commit, run concurrent
requests and start worker processes without seeing each other. Tests that only
read a populated world share one database per module (``module_app``).

What the fixtures make (bills lines, payment bodies, payments, the clock) is in
tests/factories.py; the names tests import from here are re-exported.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import queue
import socket
import threading
import time
from pathlib import Path

import psycopg
import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy.engine import make_url
from werkzeug import Request, Response

from pdam import create_app
from pdam.core import tokens
from pdam.infra import migrations
from tests.factories import (  # noqa: F401 (re-exported)
    CID,
    CONTRACT_BILL,
    CONTRACT_CUSTOMER,
    CSV_HEADER,
    ISSUER,
    ROOT,
    SEALER,
    SECRET_KEYS,
    Clock,
    bill_line,
    body,
    import_bills,
    issue,
    kill,
    run_posting,
    sign,
    sql_runner,
    wait_for,
)

_counter = itertools.count()
# Every app, in-process job and worker process of the suite seals with the tests' key.
os.environ["SECRET_KEYS"] = SECRET_KEYS


def url_for_database(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url.replace("postgres://", "postgresql://", 1)
    from pdam.infra import embedded

    url = embedded.start(ROOT / "instance" / "test-pgdata", database="postgres", keep_running=False)
    # The embedded server holds nothing but test databases: no fsync. Every test database is
    # created and dropped with a checkpoint, which otherwise waits for the disk each time.
    with _admin(url) as conn:
        if conn.execute("show fsync").fetchone()[0] == "on":
            conn.execute("alter system set fsync = off")
            conn.execute("alter system set full_page_writes = off")
            conn.execute("select pg_reload_conf()")
    return url


def _admin(server_url: str) -> psycopg.Connection:
    return psycopg.connect(server_url, autocommit=True)


class Databases:
    """Per-test databases copied from the session's template.

    Copying one takes from 15 ms to a third of a second (mostly waiting for the file
    system, so several copies at once take little longer than one): ``MAKERS`` background
    threads keep ``READY`` copies made ahead and a test takes one at once; a finished test's
    database is dropped by another thread while the next test runs. ``strategy file_copy``
    copies the template's files (a third of the time of the default WAL-logged copy for a
    schema this small).
    """

    READY, MAKERS = 6, 3

    def __init__(self, server_url: str, template: str):
        self.server_url, self.template = server_url, template
        self.ready: queue.Queue[str | BaseException] = queue.Queue()
        self.wanted = threading.Semaphore(self.READY)
        self.stopping = threading.Event()
        self.dropping: queue.Queue[str | None] = queue.Queue()
        self.makers = [
            threading.Thread(target=self._create_ahead, name=f"create-test-databases-{n}", daemon=True)
            for n in range(self.MAKERS)
        ]
        self.dropper = threading.Thread(target=self._drop_all, name="drop-test-databases", daemon=True)
        for thread in (*self.makers, self.dropper):
            thread.start()

    def create(self) -> str:
        name = self.ready.get()
        self.wanted.release()  # make the next one
        if isinstance(name, BaseException):
            raise name
        return name

    def _create_ahead(self) -> None:
        with _admin(self.server_url) as conn:
            while True:
                self.wanted.acquire()
                if self.stopping.is_set():
                    return
                name = f"pdam_t_{os.getpid()}_{next(_counter)}"
                try:
                    conn.execute(f'create database "{name}" template "{self.template}" strategy file_copy')
                    # A commit need not wait for its WAL flush here: nothing in a test survives
                    # a crash of this server (the crash drills run servers of their own).
                    conn.execute(f'alter database "{name}" set synchronous_commit = off')
                except Exception as exc:  # the test that takes it fails with it
                    self.ready.put(exc)
                else:
                    self.ready.put(name)

    def url(self, name: str) -> str:
        return url_for_database(self.server_url, name)

    def drop_later(self, name: str) -> None:
        self.dropping.put(name)

    def _drop_all(self) -> None:
        with _admin(self.server_url) as conn:
            while (name := self.dropping.get()) is not None:
                conn.execute(f'drop database if exists "{name}" with (force)')

    def close(self) -> None:
        self.stopping.set()
        for _ in self.makers:
            self.wanted.release()
        for maker in self.makers:
            maker.join()
        while not self.ready.empty():  # made ahead, never used
            name = self.ready.get()
            if isinstance(name, str):
                self.dropping.put(name)
        self.dropping.put(None)
        self.dropper.join()


@pytest.fixture(scope="session")
def template_db(server_url):
    name = f"pdam_tpl_{os.getpid()}"
    with _admin(server_url) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    migrations.upgrade(url_for_database(server_url, name), sealer=SEALER)
    yield name
    with _admin(server_url) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def databases(server_url, template_db):
    dbs = Databases(server_url, template_db)
    yield dbs
    dbs.close()


def _a_database(databases):
    name = databases.create()
    yield databases.url(name)
    databases.drop_later(name)


@pytest.fixture
def database_url(databases):
    """A fresh, migrated database for this test only."""
    yield from _a_database(databases)


@pytest.fixture(scope="module")
def module_database_url(databases):
    """A fresh, migrated database for the tests of one module: for what they only read."""
    yield from _a_database(databases)


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> dict:
    out = {}
    for name, alg in (("ES256", "ES256"), ("RS256", "RS256"), ("other", "ES256")):
        folder = tmp_path_factory.mktemp(name)
        private, public = tokens.keygen(folder, alg)
        out[name] = {"private": private.read_text(), "public": public.read_text(), "dir": folder}
    return out


def settings_for(database_url: str, keys: dict) -> dict:
    """The test apps' configuration on ``database_url``."""
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
        "PARTNER_RATE_LIMIT": 0,  # tests that need the limit set it (tests/web/test_ratelimit.py)
    }


@pytest.fixture
def app_config(database_url, keys) -> dict:
    return settings_for(database_url, keys)


@pytest.fixture
def make_app(app_config, request):
    """``make_app(**overrides)``: an app on this test's database. When the test uses the
    ``clock`` fixture (also through ``pytestmark = pytest.mark.usefixtures("clock")``), its
    apps run on that clock."""
    apps = []
    clocked = {"CLOCK": request.getfixturevalue("clock")} if "clock" in request.fixturenames else {}

    def factory(**overrides):
        app = create_app({**app_config, **clocked, **overrides})
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
def cli(app):
    """``cli("partner", "add", "00", "BANK1")``: an operator command on the test's app."""
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(args=list(args))

    return invoke


@pytest.fixture(scope="module")
def module_app(module_database_url, keys):
    """One app for the module, on the module's database (``module_database_url``)."""
    app = create_app(settings_for(module_database_url, keys))
    yield app
    app.extensions["pdam.runtime"].dispose()


@pytest.fixture
def run_sql(database_url):
    """Run SQL on the test database outside the app (committed at once)."""
    return sql_runner(database_url)


@pytest.fixture
def issue_token(app, keys):
    """Issue a token through the domain code the CLI uses (recorded jti)."""

    def run(code: str = "00", days: int = 30, now: dt.datetime | None = None) -> str:
        return issue(app, keys["ES256"]["private"], code, now, days)

    return run


@pytest.fixture
def add_partner(app):
    from pdam.core import partners
    from pdam.web import runtime

    def add(code: str = "00", name: str = "BANK1"):
        with app.app_context(), runtime.transaction() as conn:
            partners.add(conn, code, name, SEALER)

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


@pytest.fixture
def seed_bills(app):
    """Load bills through the importer: ``seed_bills(csv_lines)`` or ``seed_bills.simple(cid, periods)``."""
    from pdam.web import runtime

    def seed(lines: str, into=None):
        with (into or app).app_context(), runtime.ledger_transaction() as conn:
            import_bills(conn, lines)

    def simple(cid: str, periods, water: int = 40000, late_fee: int = 0, into=None):
        seed("".join(bill_line(cid, p, water=water, late_fee=late_fee) for p in periods), into=into)

    seed.simple = simple
    return seed


@pytest.fixture
def example_bill(seed_bills):
    """The contract's status and webhook example: one bill of 41,500 for 201903 (``CID``)."""
    seed_bills(
        bill_line(CID, "201903", water=32700, name="Nala Gareng", address="Jl. Merdeka 7", bill_no="b201903")
    )


@pytest.fixture
def inquire(client):
    def run(cid: str, headers: dict):
        res = client.get(f"/tagihan/{cid}", headers=headers)
        assert res.status_code == 200, res.json
        return res.json, res.headers["X-Cross-Site"]

    return run


@pytest.fixture
def pay(request):
    """Pay through the API, as a partner does: ``pay(headers, cid, per, pid)`` inquires,
    pays ``per`` (default: every bill shown) with the amount shown (unless ``amo=``),
    asserts the 202 and returns its ``data``. Other body fields as keywords (``mer=``...);
    ``x_async``/``x_async_token`` (the callback headers) and other ``extra_headers``; ``app``
    (default: the test's ``app``).
    ``pay.response(..., inq=token)`` sends the request with that inquiry token (no inquiry,
    the contract example's amount and periods unless given) and returns the response."""

    def send(
        headers,
        cid=CID,
        per=None,
        pid="evid-123456",
        *,
        inq=None,
        x_async=None,
        x_async_token=None,
        extra_headers=None,
        app=None,
        **fields,
    ):
        client = (app or request.getfixturevalue("app")).test_client()
        callback = {"X-Async": x_async, "X-Async-Token": x_async_token}
        extra_headers = {**{k: v for k, v in callback.items() if v is not None}, **(extra_headers or {})}
        if inq is None:
            shown = client.get(f"/tagihan/{cid}", headers=headers)
            assert shown.status_code == 200, shown.json
            inq = shown.headers["X-Cross-Site"]
            bills = {b["periode"]: b["biaya"]["jumlah"] for b in shown.json["tagihan"]}
            per = [int(p) for p in bills] if per is None else per
            fields.setdefault("amo", sum(bills[str(p)] for p in per))
        if per is not None:
            fields["per"] = per
        return client.post(
            f"/tagihan/{cid}", json=body(inq, pid=pid, **fields), headers={**headers, **extra_headers}
        )

    def run(*args, **kwargs) -> dict:
        res = send(*args, **kwargs)
        assert res.status_code == 202, res.json
        return res.json["data"]

    run.response = send
    return run


@pytest.fixture
def post_queued(app):
    """Run the posting job of every queued payment in this process, as the worker would
    (the job rows stay: posting an already final payment changes nothing)."""
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
        return [run_posting(app, payment_id, attempt) for payment_id in ids]

    return run


@pytest.fixture
def start_worker(database_url, app_config):
    """Start real worker processes (``python -m jobs``, as the Procfile does) on this test's database."""
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
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        if log:
            out.close()  # the child has its own copy
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            kill(proc)


def _a_private_server(name: str):
    """Its folder is outside pytest's temporary root: another pytest run on the machine sets
    that root back to mode 0700, which the server's own user (not root) could then no
    longer traverse."""
    import tempfile

    from tests.pgcontrol import PrivateServer

    server = PrivateServer(Path(tempfile.mkdtemp(prefix=f"pdam-{name}-")))
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def private_server():
    """A PostgreSQL server of this test's own, to stop and start (see tests/pgcontrol.py)."""
    yield from _a_private_server("pg")


@pytest.fixture
def private_database(private_server):
    """A migrated database in ``private_server``, for a test that stops the server: its URL."""
    url = private_server.create_database("pdam")
    migrations.upgrade(url, sealer=SEALER)
    return url


@pytest.fixture(scope="session")
def ledger_server():
    """A PostgreSQL server for the separate ledgers (BILLING_DATABASE_URL) of the session:
    each test gets a database of its own there (``ledger_url``); a test may stop it (and
    starts it again: the next ``ledger_url`` does when a test could not)."""
    yield from _a_private_server("ledger-pg")


@pytest.fixture
def ledger_url(ledger_server, database_url):
    """A billing ledger of this test's own, migrated, in ``ledger_server``."""
    try:
        psycopg.connect(ledger_server.url(), connect_timeout=2).close()
    except psycopg.OperationalError:  # stopped by a test that failed before starting it again
        ledger_server.start()
    url = ledger_server.create_database(f"ledger_{next(_counter)}")
    migrations.upgrade(database_url, url, sealer=SEALER)
    return url


@pytest.fixture
def split_app(make_app, ledger_url, seed_bills):
    """An app whose ledger is in another database (BILLING_DATABASE_URL), with two bills of
    48,800 (``b202001``, ``b202002``) for ``CID`` in it."""
    app = make_app(BILLING_DATABASE_URL=ledger_url)
    seed_bills(
        "".join(
            bill_line(CID, p, name="Nala", address="Jl. X", bill_no=f"b{p}") for p in ("202001", "202002")
        ),
        into=app,
    )
    app.ledger_url = ledger_url
    return app


@pytest.fixture
def clock():
    """The app's clock, moved by the test (``clock.at = ...``): every app of a test that uses
    this fixture runs on it (see ``make_app``)."""
    return Clock()


# -- HTTP receivers for webhooks and the guarded client --------------------------------------

HOOK = "/hook"


class Receiver:
    """A real HTTP receiver on loopback (threaded: concurrent callbacks could overlap).
    ``answer(call)`` makes the response; ``calls`` are the requests received, each with its
    raw body, JSON, headers, entry and exit times, and ``n``: how many times this event came."""

    def __init__(self, server: HTTPServer):
        self.server = server
        self.calls: list[dict] = []
        self.answer = lambda call: Response("ok", 200)
        self._lock = threading.Lock()
        self.server.expect_request(HOOK, method="POST").respond_with_handler(self._handle)

    def url(self, path: str = HOOK) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"

    def _handle(self, request: Request) -> Response:
        raw = request.get_data()
        call = {
            "raw": raw,
            "json": json.loads(raw),
            "headers": dict(request.headers),
            "entered": time.monotonic(),
        }
        with self._lock:
            call["n"] = (
                sum(1 for c in self.calls if c["headers"]["X-Event-Id"] == call["headers"]["X-Event-Id"]) + 1
            )
            self.calls.append(call)
        response = self.answer(call)
        call["left"] = time.monotonic()
        call["status"] = response.status_code
        return response


@pytest.fixture(scope="session")
def receiver_server():
    """One loopback HTTP server for the session (stopping one takes half a second)."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def receiver(receiver_server):
    """A webhook receiver of this test's own at ``receiver.url()``."""
    rec = Receiver(receiver_server)
    yield rec
    receiver_server.clear()


@pytest.fixture
def silent_listener():
    """A loopback port that accepts TCP connections (kernel backlog) and never answers.
    ``pending()`` counts the connections made to it (accepting them at that moment)."""
    sockets = []

    def make(host: str = "127.0.0.1", port: int = 0, family=socket.AF_INET):
        s = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        s.listen(64)
        sockets.append(s)
        return s

    def pending(s) -> int:
        s.setblocking(False)
        count = 0
        while True:
            try:
                conn, _ = s.accept()
            except BlockingIOError:
                return count
            count += 1
            sockets.append(conn)

    make.pending = pending
    yield make
    for s in sockets:
        s.close()


@pytest.fixture
def canary(silent_listener):
    """A listener on 127.0.0.1 (and ::1 where available) at one port: must get no connection.
    ``port, hits = canary``."""
    v4 = silent_listener()
    port = v4.getsockname()[1]
    listeners = [v4]
    try:
        listeners.append(silent_listener("::1", port, socket.AF_INET6))
    except OSError:
        pass
    return port, lambda: sum(silent_listener.pending(s) for s in listeners)


@pytest.fixture
def connect_spy(monkeypatch):
    """Record every outgoing socket connect of this process; let through only the
    addresses in ``spy.allowed`` (none by default): nothing ever leaves loopback."""
    real_connect = socket.socket.connect
    seen: list = []

    def spy(sock, address):
        seen.append(address[:2])
        if address[:2] in spy.allowed:
            return real_connect(sock, address)
        raise ConnectionRefusedError("blocked by the test")

    spy.seen = seen
    spy.allowed = set()
    monkeypatch.setattr(socket.socket, "connect", spy)
    return spy
