"""Statements run straight on psycopg under a SQLAlchemy connection (the core's sync port,
pdam/infra/port.py ``SyncDb``: ``fetch``, and ``alone``: a statement as a transaction of its
own): in the caller's transaction, or in one of their own."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa

from pdam.infra import db, port, settings

ADD = sa.text(
    "insert into partner (code, name, webhook_secret) values (:code, :name, 'pdam1.' || repeat('s', 32)) returning code, name"
)
COUNT = sa.text("select count(*) as n from partner where code = :code")


@pytest.fixture
def engine(app):
    return app.extensions["pdam.runtime"].database.engine


def rows(conn, statement, params):
    return port.SyncDb(conn).do(port.fetch(statement, params))


def rows_alone(conn, statement, params):
    return port.SyncDb(conn).do(port.fetch(statement, params, alone=True))


def execute_alone(conn, statement, params):
    return port.SyncDb(conn).do(port.one(statement, params, alone=True))


def partners(run_sql, code: str) -> int:
    return run_sql("select count(*) from partner where code = %s", (code,))[0][0]


def test_rows_run_in_the_callers_transaction_and_begin_it(engine, run_sql):
    with engine.connect() as conn:
        assert not conn.in_transaction()
        assert rows(conn, ADD, {"code": "01", "name": "A"}) == [("01", "A")]
        assert conn.in_transaction()  # so the caller's commit covers it
        assert partners(run_sql, "01") == 0  # not committed yet
        conn.commit()
    assert partners(run_sql, "01") == 1


def test_rows_roll_back_with_the_callers_transaction(engine, run_sql):
    with engine.connect() as conn:
        rows(conn, ADD, {"code": "02", "name": "B"})
        conn.rollback()
        assert rows(conn, COUNT, {"code": "02"})[0].n == 0
    assert partners(run_sql, "02") == 0


def test_rows_alone_commit_on_their_own_before_a_transaction(engine, run_sql):
    with engine.connect() as conn:
        row = execute_alone(conn, ADD, {"code": "03", "name": "C"})
        assert (row.code, row.name) == ("03", "C")
        assert not conn.in_transaction()
        assert partners(run_sql, "03") == 1  # committed already
        conn.execute(sa.text("select 1"))  # then a transaction that fails
        conn.rollback()
    assert partners(run_sql, "03") == 1


def test_rows_alone_join_a_transaction_that_is_open(engine, run_sql):
    with engine.connect() as conn:
        conn.execute(sa.text("select 1"))
        rows_alone(conn, ADD, {"code": "04", "name": "D"})
        conn.rollback()
    assert partners(run_sql, "04") == 0


def _on_async(app, steps):
    """``steps(db)`` on an async psycopg connection in autocommit (as the job server's pool
    hands them out: ``jobs.make_pool``); returns what it returned and the connection's
    autocommit and transaction state after it."""
    import asyncio

    url = app.extensions["pdam.runtime"].database.url

    async def scenario():
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            out = await steps(port.AsyncDb(conn))
            return out, conn.autocommit, conn.info.transaction_status.name

    return asyncio.run(scenario())


def test_on_an_autocommit_connection_a_plans_statements_begin_its_transaction(app, run_sql):
    """Not ``alone``: the first statement begins a transaction, as on a connection out of
    autocommit; the caller ends it (here: rolls it back, and nothing stays)."""

    async def steps(db):
        await db.do(port.fetch(ADD, {"code": "06", "name": "F"}))
        await db.do(port.fetch(ADD, {"code": "07", "name": "G"}))
        await db.conn.rollback()

    assert _on_async(app, steps) == (None, False, "IDLE")
    assert partners(run_sql, "06") == partners(run_sql, "07") == 0


def test_on_an_autocommit_connection_a_job_deferred_is_in_the_plans_transaction(app, run_sql):
    from pdam.infra import queue

    async def steps(db):
        await db.do(port.defer(queue.POST_PAYMENT, queue=queue.POSTING_QUEUE, payment_id=1))
        await db.conn.rollback()

    jobs_before = run_sql("select count(*) from procrastinate_jobs")
    assert _on_async(app, steps) == (None, False, "IDLE")
    assert run_sql("select count(*) from procrastinate_jobs") == jobs_before


def test_on_an_autocommit_connection_a_statement_alone_commits_alone(app, run_sql):
    async def steps(db):
        return (await db.do(port.one(ADD, {"code": "08", "name": "H"}, alone=True))).code

    assert _on_async(app, steps) == ("08", True, "IDLE")  # nothing left open, still autocommit
    assert partners(run_sql, "08") == 1


def test_no_row_is_none_and_the_connection_stays_usable(engine):
    with engine.connect() as conn:
        assert (
            execute_alone(conn, sa.text("select code from partner where code = :code"), {"code": "99"})
            is None
        )
        assert execute_alone(conn, COUNT, {"code": "99"}).n == 0
        assert not db.driver_connection(conn).autocommit  # back as SQLAlchemy left it


def test_a_unique_violation_is_an_integrity_error_and_leaves_the_connection_usable(engine):
    with engine.connect() as conn:
        execute_alone(conn, ADD, {"code": "05", "name": "E"})
        with pytest.raises(psycopg.errors.IntegrityError) as raised:
            execute_alone(conn, ADD, {"code": "05", "name": "E"})
        assert isinstance(raised.value, psycopg.errors.UniqueViolation)
        assert isinstance(port.translated(raised.value), port.IntegrityViolation)
        assert execute_alone(conn, COUNT, {"code": "05"}).n == 1
        with pytest.raises(psycopg.errors.IntegrityError):
            rows(conn, ADD, {"code": "05", "name": "E"})
        conn.rollback()
        assert rows(conn, COUNT, {"code": "05"})[0].n == 1


def test_a_lost_connection_is_transient_and_the_pool_replaces_it_quietly(engine, run_sql, caplog):
    with engine.connect() as conn:
        pid = execute_alone(conn, sa.text("select pg_backend_pid() as pid"), {}).pid
        run_sql("select pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError) as raised:
            rows(conn, COUNT, {"code": "06"})
        assert port.is_transient(raised.value)
        conn.rollback()
    with engine.connect() as conn:  # a working connection again
        assert execute_alone(conn, COUNT, {"code": "06"}).n == 0
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text


def test_a_url_listing_several_hosts_takes_sqlalchemys_multi_host_form():
    assert settings.sqlalchemy_url(
        "postgresql://app:p%40ss@10.0.0.1:5432,10.0.0.2:5433/pdam?target_session_attrs=read-write"
    ) == (
        "postgresql+psycopg://app:p%40ss@/pdam?host=10.0.0.1:5432&host=10.0.0.2:5433&target_session_attrs=read-write"
    )
    assert (
        settings.sqlalchemy_url("postgres://db1,db2/pdam") == "postgresql+psycopg:///pdam?host=db1&host=db2"
    )
    # one host: unchanged but for the driver
    assert (
        settings.sqlalchemy_url("postgres://u@h:5/d?sslmode=require")
        == "postgresql+psycopg://u@h:5/d?sslmode=require"
    )


def test_an_engine_on_a_url_listing_a_dead_host_first_connects_to_the_next(private_server):
    """The primary gone (nothing listens on its port): libpq tries the next host of the list."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    url = (
        f"postgresql://postgres@127.0.0.1:{dead},127.0.0.1:{private_server.port}/postgres"
        "?target_session_attrs=read-write"
    )
    # A bare server (no migrations, so no pdam_app role to take): the login's own role.
    engine = db.make_engine(url, settings.load({"DATABASE_ROLE": ""}))
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select inet_server_port()")).scalar() == private_server.port
    finally:
        engine.dispose()
