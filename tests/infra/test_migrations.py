"""`db upgrade`: ordered, recorded, idempotent; the schema is what the code expects."""

from __future__ import annotations

import psycopg
import pytest

from pdam.infra import migrations, sealing
from tests.factories import SEALER

EXPECTED_TABLES = {
    "partner",
    "api_token",
    "customer",
    "bill",
    "inquiry",
    "nob_counter",
    "payment",
    "payment_period",
    "schema_migration",
    "procrastinate_jobs",
}
#: The SQL functions the queries call (sql/005_functions.sql, sql/ledger/003_pay_bills.sql).
EXPECTED_FUNCTIONS = {"next_nob_v1", "post_payment_v1", "finish_posting_v1", "pay_bills_v1"}


def schema_snapshot(url: str) -> list:
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "select table_name, column_name, data_type, is_nullable, column_default"
            " from information_schema.columns where table_schema = 'public'"
            " order by table_name, column_name"
        ).fetchall()
        constraints = conn.execute(
            "select conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
            " from pg_constraint where connamespace = 'public'::regnamespace order by 1, 2"
        ).fetchall()
        indexes = conn.execute(
            "select indexname, indexdef from pg_indexes where schemaname = 'public' order by 1"
        ).fetchall()
        functions = conn.execute(
            "select p.oid::regprocedure::text, pg_get_functiondef(p.oid) from pg_proc p"
            " where p.pronamespace = 'public'::regnamespace and p.prokind = 'f' order by 1"
        ).fetchall()
        migrations_done = conn.execute(
            "select track, name, checksum from schema_migration order by 1, 2"
        ).fetchall()
    return [columns, constraints, indexes, functions, migrations_done]


def test_upgrade_twice_changes_nothing(database_url):
    before = schema_snapshot(database_url)
    assert migrations.upgrade(database_url, sealer=SEALER) == []
    assert schema_snapshot(database_url) == before


def test_every_file_recorded_in_order(database_url):
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("select track, name from schema_migration order by applied_at, name").fetchall()
    main = [name for track, name in rows if track == "main"]
    ledger = [name for track, name in rows if track == "ledger"]
    assert main == [p.name for p in migrations.migration_files("main")]
    assert ledger == [p.name for p in migrations.migration_files("ledger")]
    assert any(track == "procrastinate" for track, _ in rows)


def test_schema_has_what_the_code_expects(database_url):
    with psycopg.connect(database_url) as conn:
        tables = {r[0] for r in conn.execute("select tablename from pg_tables where schemaname = 'public'")}
        functions = {
            r[0]
            for r in conn.execute("select proname from pg_proc where pronamespace = 'public'::regnamespace")
        }
        generated = conn.execute(
            "select is_generated from information_schema.columns"
            " where table_name = 'bill' and column_name = 'total'"
        ).fetchone()[0]
    assert EXPECTED_TABLES <= tables
    assert EXPECTED_FUNCTIONS <= functions
    assert generated == "ALWAYS"
    with psycopg.connect(database_url) as conn:
        money = conn.execute(
            "select table_name, column_name, data_type from information_schema.columns"
            " where column_name in ('water', 'admin_fee', 'admin_vat', 'late_fee', 'installment',"
            " 'total', 'amount', 'paid_total')"
        ).fetchall()
    assert money and all(t == "bigint" for _, _, t in money), money


def test_changed_migration_is_refused(database_url, tmp_path, monkeypatch):
    original = migrations.migration_files

    def edited(track):
        files = original(track)
        if track != "main":
            return files
        copy = tmp_path / files[0].name
        copy.write_text(files[0].read_text() + "\n-- edited\n")
        return [copy, *files[1:]]

    monkeypatch.setattr(migrations, "migration_files", edited)
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        migrations.upgrade(database_url, sealer=SEALER)


@pytest.mark.parametrize(
    "sql",
    [
        "insert into customer values ('12a', 'x', '', '')",
        "insert into bill (bill_no, customer_id, period, meter_start, meter_end, usage, water, admin_fee,"
        " admin_vat, late_fee, installment) values ('b1', '1', '202013', 0, 0, 0, 1, 1, 1, 1, 0)",
        "insert into bill (bill_no, customer_id, period, meter_start, meter_end, usage, water, admin_fee,"
        " admin_vat, late_fee, installment) values ('b1', '1', '202001', 0, 0, 0, -1, 1, 1, 1, 0)",
        "insert into bill (bill_no, customer_id, period, meter_start, meter_end, usage, water, admin_fee,"
        " admin_vat, late_fee, installment) values ('b2', '1', '202001', 0, 0, 0, 1, 1, 1, 1, 0)",
        "insert into bill (bill_no, customer_id, period, meter_start, meter_end, usage, water, admin_fee,"
        " admin_vat, late_fee, installment) values ('b0', '1', '202002', 0, 0, 0, 1, 1, 1, 1, 0)",
        "insert into partner (code, name, webhook_secret) values ('1', 'x', 'pdam1.' || repeat('a', 32))",
    ],
    ids=[
        "cid-digits",
        "period-format",
        "negative-amount",
        "one-bill-per-period",
        "unique-bill-no",
        "partner-code",
    ],
)
def test_money_constraints(run_sql, sql):
    run_sql("insert into customer values ('1', 'A', '', '')")
    run_sql(
        "insert into bill (bill_no, customer_id, period, meter_start, meter_end, usage, water, admin_fee,"
        " admin_vat, late_fee, installment) values ('b0', '1', '202001', 0, 0, 0, 1, 1, 1, 1, 0)"
    )
    with pytest.raises(psycopg.errors.IntegrityError):
        run_sql(sql)


def test_upgrade_takes_the_environments_keys_unless_given(database_url, monkeypatch, tmp_path):
    assert migrations.upgrade(database_url) == []  # SECRET_KEYS of the environment (the tests')
    monkeypatch.delenv("SECRET_KEYS")
    monkeypatch.setenv("SECRET_KEYS_FILE", str(tmp_path / "none"))
    with pytest.raises(sealing.SealingError, match="no SECRET_KEYS"):
        migrations.upgrade(database_url)
