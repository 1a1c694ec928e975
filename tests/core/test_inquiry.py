"""Inquiry's core rules that the edges' tests do not reach: the cap on the bills shown."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from pdam.core import errors, inquiry, payments
from pdam.web import runtime
from tests.factories import CID, make_payment

NOW = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)


def test_a_cap_needs_a_reference(app, add_partner):
    add_partner("00")
    with app.app_context(), runtime.transaction() as conn, pytest.raises(ValueError, match="reference"):
        inquiry.inquire(conn, runtime.ledger_connection(), "00", CID, NOW, 900, max_bills=24)


def test_the_cap_shows_the_oldest_bills_and_saves_exactly_those(app, add_partner, seed_bills):
    add_partner("00")
    seed_bills.simple(CID, ["202001", "202002", "202003"])
    with app.app_context(), runtime.transaction() as conn:
        ledger = runtime.ledger_connection()
        shown = inquiry.inquire(conn, ledger, "00", CID, NOW, 900, reference="r-1", max_bills=2)
        assert [bill.period for bill in shown.bills] == ["202001", "202002"]
        saved = inquiry.by_reference(conn, "00", "r-1")
        assert [bill["period"] for bill in saved.snapshot["bills"]] == ["202001", "202002"]
        uncapped = inquiry.inquire(conn, ledger, "00", CID, NOW, 900, reference="r-2")
        assert len(uncapped.bills) == 3


def test_a_payment_by_reference_tells_an_unknown_customer_from_a_missing_inquiry(
    app, add_partner, seed_bills
):
    add_partner("00")
    seed_bills.simple(CID, ["202001"])
    with app.app_context(), runtime.transaction() as conn:
        ledger = runtime.ledger_connection()
        assert inquiry.customer_exists(ledger, CID) and not inquiry.customer_exists(ledger, "999999")
        with pytest.raises(errors.UnknownCustomer):
            payments.accept_inquiry(conn, "00", "999999", "r-1", 48800, "VA", NOW, lambda: ledger)
        with pytest.raises(errors.InquiryNotFound):
            payments.accept_inquiry(conn, "00", CID, "r-1", 48800, "VA", NOW, lambda: ledger)
        with pytest.raises(errors.InquiryNotFound):  # without the ledger: as before
            payments.accept_inquiry(conn, "00", "999999", "r-1", 48800, "VA", NOW)


def test_an_inquiry_reads_no_other_customers_payment_in_progress(app, add_partner, seed_bills, run_sql):
    # While the worker is behind, every payment waits as 'created'; an inquiry must still
    # cost the same: it looks at its own customer's live periods only (migration 013).
    add_partner("00")
    seed_bills.simple(CID, ["202001", "202002"])
    # Statistics taken when few payments waited (as autovacuum leaves them while a backlog
    # builds up), then a backlog of 3,000: the old join started from payment_created.
    run_sql("analyze payment, payment_period")
    run_sql(
        "insert into payment (partner_code, pid, customer_id, inquiry_token, amount, periods, merchant,"
        " pat, nob, accepted_at) select '00', 'backlog-' || n, '9' || n, md5(n::text), 48800, '{202001}',"
        " '1', upper(lpad(to_hex(n), 20, '0')), '00' || lpad(n::text, 10, '0'), %(now)s"
        " from generate_series(1, 3000) as n",
        {"now": NOW},
    )
    run_sql(
        "insert into payment_period (payment_id, customer_id, period)"
        " select id, customer_id, '202001' from payment where pid like 'backlog-%%'"
    )
    reads = text("select pg_stat_get_xact_tuples_returned('payment_created'::regclass)")
    with app.app_context(), runtime.transaction() as conn:
        ledger = runtime.ledger_connection()
        for _ in range(6):  # past PL/pgSQL's switch to a generic plan
            assert len(inquiry.inquire(conn, ledger, "00", CID, NOW, 900).bills) == 2
        assert conn.execute(reads).scalar() == 0
        # The customer's own payment in progress still hides its bills.
        make_payment(conn, "00", CID, "pid-own", NOW)
        with pytest.raises(errors.NothingToPay):
            inquiry.inquire(conn, ledger, "00", CID, NOW, 900)
