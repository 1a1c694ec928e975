"""Least-privilege roles (sql/roles.sql): the service acts as pdam_app (rows only: no DDL, no
TRUNCATE), operators as pdam_operator (read everything but a secret, write nothing)."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa

from pdam.infra import migrations
from tests.factories import SEALER, wait_for


def _as(url: str, role: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, options=f"-c role={role}")


def test_the_app_connects_as_the_application_role(app):
    from pdam.web import runtime

    with app.app_context():
        row = runtime.connection().execute(sa.text("select current_user")).one()
    assert row[0] == "pdam_app"


@pytest.mark.parametrize(
    "statement",
    [
        "drop table payment",
        "drop table procrastinate_jobs",
        "drop view daily_recap",
        "alter table payment add column x int",
        "alter table partner drop constraint partner_webhook_secret_sealed",
        "alter table payment disable trigger payment_status_count",
        "create index on payment (pid)",
        "create table x (a int)",
        "create function f() returns int language sql as 'select 1'",
        "truncate payment",
        "truncate procrastinate_jobs",
        "truncate bill",
        "drop function next_nob_v1",
        "delete from schema_migration",
        "alter table payment owner to pdam_app",
        "create schema other",
    ],
)
def test_the_application_role_cannot_change_the_schema(database_url, statement):
    with _as(database_url, "pdam_app") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_web_and_worker_write_as_the_application_role(
    app, partner_headers, example_bill, pay, start_worker, run_sql, receiver
):
    """Every change to a payment (the web's insert, the worker's posting) and every job
    taken, recorded by a trigger with the role that made it."""
    run_sql(
        "create table who (what text, role text);"
        " grant insert on who to pdam_app;"
        " create function who() returns trigger language plpgsql as $$ begin"
        " insert into who values (tg_table_name || ' ' || tg_op, current_user); return null; end $$;"
        " create trigger who after insert or update on payment for each row execute function who();"
        " create trigger who after update on procrastinate_jobs for each row execute function who()"
    )
    nob = pay(partner_headers, x_async=receiver.url())["nob"]
    start_worker()
    wait_for(lambda: len(receiver.calls) == 2, timeout=30)
    assert run_sql("select status from payment where nob = %s", (nob,)) == [("accepted",)]
    done = run_sql("select what, role from who")
    assert {"payment INSERT", "payment UPDATE", "procrastinate_jobs UPDATE"} <= {what for what, _ in done}
    assert {role for _, role in done} == {"pdam_app"}


SECRET_COLUMNS = [
    "partner.webhook_secret",
    "snap_client.client_secret",
    "payment.callback_token",
    "payment.request_authorization",
    "snap_access_token.token_hash",
    "secret_canary.sealed",
]


@pytest.mark.parametrize("column", SECRET_COLUMNS)
def test_the_operator_reads_no_secret_column(database_url, column):
    table, name = column.split(".")
    with _as(database_url, "pdam_operator") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f"select {name} from {table}")


@pytest.mark.parametrize(
    "statement",
    [
        "update payment set status = 'rejected'",
        "delete from payment",
        "insert into partner (code, name, webhook_secret) values ('55', 'X', 'pdam1.' || repeat('x', 40))",
        "update bill set water = 0",
        "select take_rate_token_v1('00', 1)",
        "delete from procrastinate_jobs",
        "truncate webhook_delivery",
        "create table x (a int)",
    ],
)
def test_the_operator_writes_nothing(database_url, statement):
    with _as(database_url, "pdam_operator") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_the_operator_reads_the_views_and_every_other_column_but_never_a_secret(
    app, cli, partner_headers, example_bill, pay, database_url, run_sql, receiver
):
    from tests.factories import deliver_pending

    pay(partner_headers, x_async=receiver.url(), x_async_token="Bearer callback-token-xyz")
    deliver_pending(app, run_sql)
    secret = cli("partner", "secret", "00").output.strip()
    sealed = [
        v for row in run_sql("select webhook_secret, callback_token from partner, payment") for v in row
    ]
    assert [SEALER.open(v) for v in sealed] == [secret, "Bearer callback-token-xyz"]
    token = partner_headers["Authorization"].split()[1]

    seen = {}
    with _as(database_url, "pdam_operator") as conn:
        for view in ("daily_recap", "reconciliation", "payments_needing_attention"):
            conn.execute(f"select * from {view}").fetchall()
        readable = conn.execute(
            "select c.relname, a.attname from pg_class c join pg_attribute a on a.attrelid = c.oid"
            " where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'v', 'm')"
            " and a.attnum > 0 and not a.attisdropped and has_column_privilege(c.oid, a.attnum, 'select')"
            " order by 1, 2"
        ).fetchall()
        for table, column in readable:
            seen[f"{table}.{column}"] = conn.execute(f'select "{column}"::text from "{table}"').fetchall()
    assert not set(SECRET_COLUMNS) & set(seen)
    assert {"payment.nob", "payment.callback_url", "partner.code", "daily_recap.jumlah_bayar"} <= set(seen)
    text = repr(seen)
    assert "pdam1." not in text
    for value in (secret, "callback-token-xyz", token, *sealed):
        assert value not in text


def test_roles_cover_a_table_a_later_migration_adds(database_url, run_sql):
    run_sql("create table later (id int primary key, note text)")
    migrations.apply_roles(database_url)
    with _as(database_url, "pdam_app") as conn:
        conn.execute("insert into later values (1, 'x')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("truncate later")
    with _as(database_url, "pdam_operator") as conn:
        assert conn.execute("select note from later").fetchall() == [("x",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from later")
