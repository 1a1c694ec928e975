"""Inquiry's core rules that the edges' tests do not reach: the cap on the bills shown."""

from __future__ import annotations

import datetime as dt

import pytest

from pdam.core import errors, inquiry, payments
from pdam.web import runtime
from tests.factories import CID

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
