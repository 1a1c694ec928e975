"""Test fixtures: real PostgreSQL, schema built once, a fresh database per test.

The server is ``TEST_DATABASE_URL`` when set (CI's second leg), else an
embedded pgserver under ``instance/test-pgdata``. The migrations run once per
session into a template database; each test gets its own copy
(``create database ... template``), so tests may commit, run concurrent
requests and start worker processes without seeing each other. Tests that only
read a populated world share one database per module (``module_app``).

The database fixtures are in tests/fixtures/databases.py, the HTTP receivers and
listeners in tests/fixtures/network.py (both registered below). What the fixtures make (bills lines, payment bodies, payments, the clock) is in
tests/factories.py; the names tests import from here are re-exported.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import psycopg
import pytest

from pdam import create_app
from pdam.core import tokens
from tests.factories import (  # noqa: F401 (re-exported)
    CID,
    CONTRACT_BILL,
    CONTRACT_CUSTOMER,
    CSV_HEADER,
    HOOK,
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
    url_for_database,
    wait_for,
)

#: Fixture groups of their own modules: the databases (and private servers), the network.
pytest_plugins = ["tests.fixtures.databases", "tests.fixtures.network"]
# Every app, in-process job and worker process of the suite seals with the tests' key.
os.environ["SECRET_KEYS"] = SECRET_KEYS


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
