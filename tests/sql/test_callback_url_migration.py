"""Migration 014 (sql/014_callback_url_credentials.sql): the callback URLs stored before
payments refused credentials lose them, in payment, webhook_delivery and webhook_attempt;
other URLs are left as they are. The file runs again on rows written as before it."""

from __future__ import annotations

import psycopg

from tests.factories import CID, ROOT

MIGRATION = ROOT / "sql" / "014_callback_url_credentials.sql"
BILLS = f"{CID},Nala Gareng,Jl. Merdeka 7,10R,a201901,201901,0,10,10,106233,8000,800,0,0\n"
CASES = {
    "http://user:s3cret@127.0.0.1:9/cb?x=1": "http://127.0.0.1:9/cb?x=1",
    "https://a@b:p@hooks.example:8443/p@th": "https://hooks.example:8443/p@th",
    "HTTPS://tok@hooks.example": "HTTPS://hooks.example",
    "https://hooks.example/cb?u=a@b": "https://hooks.example/cb?u=a@b",  # no user information
}


def test_migration_014_strips_credentials_from_stored_urls(
    pay, partner_headers, seed_bills, run_sql, database_url
):
    seed_bills(BILLS)
    data = pay(partner_headers, x_async="http://127.0.0.1:9/cb")
    (payment_id,) = run_sql("select id from payment where nob = %s", (data["nob"],))[0]
    (delivery_id,) = run_sql("select id from webhook_delivery where payment_id = %s", (payment_id,))[0]
    with psycopg.connect(database_url, autocommit=True) as conn:
        for before in CASES:  # written as before 014: each URL in all three places
            conn.execute("update payment set callback_url = %s where id = %s", (before, payment_id))
            conn.execute("update webhook_delivery set url = %s where id = %s", (before, delivery_id))
            attempt = conn.execute(
                "insert into webhook_attempt (delivery_id, attempted_at, url, http_status, duration_ms)"
                " values (%s, now(), %s, 500, 1) returning id",
                (delivery_id, before),
            ).fetchone()[0]
            conn.execute(MIGRATION.read_text())
            after = CASES[before]
            assert run_sql("select callback_url from payment where id = %s", (payment_id,)) == [(after,)]
            assert run_sql("select url from webhook_delivery where id = %s", (delivery_id,)) == [(after,)]
            assert run_sql("select url from webhook_attempt where id = %s", (attempt,)) == [(after,)]
    leftover = run_sql(
        "select count(*) from webhook_attempt where url ~ '^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*@'"
    )
    assert leftover == [(0,)]
