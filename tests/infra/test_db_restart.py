"""Contract 15.1: after a PostgreSQL restart the first request on each pooled connection is
not a 503: a connection the server closed is replaced before use (pdam/infra/db.py
``is_stale``: the web's engines and the job server's queue pool), without a round trip."""

from __future__ import annotations

import asyncio

import procrastinate
import psycopg
import pytest
import sqlalchemy as sa

import jobs
from pdam.core import partners
from pdam.infra import db
from pdam.infra.settings import sqlalchemy_url
from pdam.web import runtime
from tests.factories import CID, SEALER, bill_line, import_bills, issue

POOLED = 4


def restart(server) -> None:
    server.stop()
    server.start()


def fill_pool(engine: sa.Engine, n: int = POOLED) -> None:
    """``n`` connections in the pool, each used once."""
    conns = [engine.connect() for _ in range(n)]
    for conn in conns:
        conn.execute(sa.text("select 1"))
    for conn in conns:
        conn.close()
    assert engine.pool.checkedin() == n


def test_without_the_check_a_restart_fails_the_first_statement(private_server, private_database):
    """What the check is for: a plain pool hands out the dead connection."""
    engine = sa.create_engine(sqlalchemy_url(private_database), pool_size=POOLED)
    try:
        fill_pool(engine)
        restart(private_server)
        with pytest.raises(sa.exc.OperationalError), engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    finally:
        engine.dispose()


def test_the_engine_replaces_every_dead_connection(private_server, private_database, app):
    engine = db.make_engine(private_database, app.config, pool_size=POOLED)
    try:
        fill_pool(engine)
        restart(private_server)
        held = []
        for _ in range(POOLED + 1):  # every pooled connection, and one more
            conn = engine.connect()
            assert conn.execute(sa.text("select 1")).scalar() == 1
            held.append(conn)
        for conn in held:
            conn.close()
    finally:
        engine.dispose()


def test_requests_after_a_restart_are_answered(make_app, private_server, private_database, keys):
    app = make_app(DATABASE_URL=private_database, DB_POOL_SIZE=POOLED)
    with app.app_context(), runtime.transaction() as conn:
        partners.add(conn, "00", "BANK1", SEALER)
        import_bills(conn, bill_line(CID, "202001", 1000, 0, 0))
    headers = {"Authorization": f"Bearer {issue(app, keys['ES256']['private'], '00', days=1)}"}
    client = app.test_client()
    for _ in range(3):
        assert client.get(f"/tagihan/{CID}", headers=headers).status_code == 200
    fill_pool(app.extensions["pdam.runtime"].database.engine)
    restart(private_server)
    answers = [client.get(f"/tagihan/{CID}", headers=headers).status_code for _ in range(POOLED + 2)]
    assert answers == [200] * (POOLED + 2)
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("through", ["procrastinate", "make_pool"])
def test_the_job_servers_pool_replaces_dead_connections(private_server, private_database, app, through):
    """The worker's pool as the worker opens it (Procrastinate's connector on ``make_pool``,
    jobs.app), and ``make_pool`` alone."""

    async def run() -> list[int]:
        if through == "procrastinate":
            connector = procrastinate.PsycopgConnector(
                pool_factory=lambda **kw: jobs.make_pool(private_database, app.config, **kw),
                min_size=2,
                max_size=2,
            )
            await connector.open_async()
            pool, close = connector.pool, connector.close_async
            assert pool._check is db.check_async  # not the empty query Procrastinate asks for
        else:
            pool = jobs.make_pool(private_database, app.config, min_size=2, max_size=2, open=False)
            await pool.open(wait=True)
            close = pool.close
        try:
            async with pool.connection() as conn:
                await conn.execute("select 1")
            restart(private_server)
            got = []
            for _ in range(3):
                async with pool.connection() as conn:
                    got.append((await (await conn.execute("select 1")).fetchone())[0])
            return got
        finally:
            await close()

    assert asyncio.run(run()) == [1, 1, 1]


def test_a_live_idle_connection_is_not_stale(database_url):
    with psycopg.connect(database_url) as conn:
        conn.execute("select 1")
        assert not db.is_stale(conn)
    assert db.is_stale(conn)  # closed
