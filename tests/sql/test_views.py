"""Contract section 10: the operator views (sql/004_operator_views.sql) agree with the routes."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from pdam.core import posting, reconciliation, webhooks
from pdam.peti import schemas
from pdam.web import runtime
from tests.factories import H, run_delivery, run_posting

#: Every app of this module runs on the test clock, which starts at H (day H, 10:00 WIB).
pytestmark = pytest.mark.usefixtures("clock")
DAY = dt.date(2020, 8, 26)
VIEWS = ("reconciliation", "daily_recap", "payments_needing_attention")
#: The report's columns, in order: what the core's query selects (sql/queries/reconciliation.sql).
#: The view's columns the rows statement reads (``<column> as <record field>``), in order.
COLUMNS = tuple(
    name.split()[0]
    for name in re.search(r"select\s+(.*?)\s+from\s", reconciliation.Q["rows"].text, re.S).group(1).split(",")
)


@pytest.fixture
def day_of_payments(client, partner_headers, auth_for, seed_bills, pay, post_queued, run_sql, clock):
    """Partner 00 on day H: accepted, changed, rejected, reversed, in progress; partner 96: one accepted.
    Partner 00 also pays on H+1."""
    other = auth_for("96", "BANK2")
    for n in range(1, 8):
        seed_bills.simple(f"010100000{n}", ["202001", "202002"], water=40000 + n)
    made = {
        "ok": pay(partner_headers, "0101000001", [202001, 202002], "ok"),
        "changed": pay(partner_headers, "0101000002", [202001, 202002], "changed"),
        "rejected": pay(partner_headers, "0101000003", [202001], "rejected"),
        "reversed": pay(partner_headers, "0101000004", [202001], "reversed"),
        "other": pay(other, "0101000005", [202001], "other"),
    }
    run_sql(
        "update bill set paid_by = '992001010001', paid_at = now()"
        " where (customer_id, period) in (('0101000002', '202002'), ('0101000003', '202001'))"
    )
    post_queued()
    res = client.delete(
        "/tagihan/0101000004",
        query_string={"pid": "reversed", "pat": made["reversed"]["pat"]},
        headers=partner_headers,
    )
    assert res.status_code == 200
    clock.at = H + dt.timedelta(days=1)
    made["next-day"] = pay(partner_headers, "0101000007", [202001], "next-day")
    post_queued()
    clock.at = H + dt.timedelta(hours=1)
    made["in-progress"] = pay(partner_headers, "0101000006", [202001], "in-progress")  # never posted
    return made


def view_rows(run_sql, pop, day):
    cols = ", ".join(COLUMNS)
    rows = run_sql(
        f"select {cols} from reconciliation where pop = %s and tanggal = %s order by no", (pop, day)
    )
    return [dict(zip(COLUMNS, row, strict=False)) for row in rows]


def test_reconciliation_view_is_what_get_audit_returns(
    client, partner_headers, auth_for, day_of_payments, run_sql
):
    other = auth_for("97", "BANK3")  # a partner without payments
    for headers, pop in ((partner_headers, "00"), (other, "97")):
        for day in (DAY, DAY + dt.timedelta(days=1), DAY - dt.timedelta(days=1)):
            route = client.get(
                "/audit", query_string={"tgl": day.isoformat(), "limit": 0}, headers=headers
            ).json
            assert route["data"] == view_rows(run_sql, pop, day), (pop, day)
            assert route["meta"]["total"] == len(route["data"])
    rows = view_rows(run_sql, "00", DAY)
    assert [(r["pid"], r["periode"], r["rev"]) for r in rows] == [
        ("ok", "202001", 0),
        ("ok", "202002", 0),
        ("changed", "202001", 0),
        ("reversed", "202001", 1),
    ]
    assert [r["pid"] for r in view_rows(run_sql, "96", DAY)] == ["other"]


def test_reconciliation_view_columns(run_sql):
    cols = [
        c
        for (c,) in run_sql(
            "select column_name from information_schema.columns"
            " where table_name = 'reconciliation' order by ordinal_position"
        )
    ]
    assert cols[:2] == ["tanggal", "pop"] and tuple(cols[2 : 2 + len(COLUMNS)]) == COLUMNS
    assert tuple(schemas.AuditRow().fields) == COLUMNS


def test_daily_recap(client, partner_headers, day_of_payments, run_sql):
    cols = (
        "tanggal",
        "pop",
        "mitra",
        "transaksi",
        "accepted",
        "changed",
        "rejected",
        "in_progress",
        "jumlah_bayar",
        "lembar",
        "jumlah",
        "reversals",
        "lembar_reversed",
        "jumlah_reversed",
    )
    rows = [
        dict(zip(cols, r, strict=False))
        for r in run_sql(f"select {', '.join(cols)} from daily_recap order by tanggal, pop")
    ]
    bill = 48800
    assert rows == [
        {
            "tanggal": DAY,
            "pop": "00",
            "mitra": "BANK1",
            "transaksi": 5,
            "accepted": 2,
            "changed": 1,
            "rejected": 1,
            "in_progress": 1,
            # amo: ok 2 bills, changed 2, rejected 1, reversed 1, in progress 1 (water 40000 + n)
            "jumlah_bayar": 2 * bill + 2 + 2 * bill + 4 + bill + 3 + bill + 4 + bill + 6,
            "lembar": 3,
            "jumlah": 2 * bill + 2 + bill + 2,
            "reversals": 1,
            "lembar_reversed": 1,
            "jumlah_reversed": bill + 4,
        },
        {
            "tanggal": DAY,
            "pop": "96",
            "mitra": "BANK2",
            "transaksi": 1,
            "accepted": 1,
            "changed": 0,
            "rejected": 0,
            "in_progress": 0,
            "jumlah_bayar": bill + 5,
            "lembar": 1,
            "jumlah": bill + 5,
            "reversals": 0,
            "lembar_reversed": 0,
            "jumlah_reversed": 0,
        },
        {
            "tanggal": DAY + dt.timedelta(days=1),
            "pop": "00",
            "mitra": "BANK1",
            "transaksi": 1,
            "accepted": 1,
            "changed": 0,
            "rejected": 0,
            "in_progress": 0,
            "jumlah_bayar": bill + 7,
            "lembar": 1,
            "jumlah": bill + 7,
            "reversals": 0,
            "lembar_reversed": 0,
            "jumlah_reversed": 0,
        },
    ]
    # The recap adds up to the reconciliation report of the same partner and day.
    report = client.get(
        "/audit", query_string={"tgl": DAY.isoformat(), "limit": 0}, headers=partner_headers
    ).json
    total = lambda r: r["air"] + r["administrasi"] + r["ppn_administrasi"] + r["denda"] + r["angsuran"]  # noqa: E731
    assert sum(total(r) for r in report["data"] if r["rev"] == 0) == rows[0]["jumlah"]
    assert sum(1 for r in report["data"] if r["rev"] == 0) == rows[0]["lembar"]
    assert sum(total(r) for r in report["data"] if r["rev"] == 1) == rows[0]["jumlah_reversed"]


def test_payments_needing_attention(app, make_app, partner_headers, pay, day_of_payments, run_sql):
    # Webhook failed: the receiver is unreachable and the one attempt allowed is used up.
    pay(
        partner_headers,
        "0101000005",
        [202002],
        "hooked",
        extra_headers={"X-Async": "http://127.0.0.1:9/hook"},
    )
    (hooked_id, delivery_id) = run_sql("select payment_id, id from webhook_delivery where event = 'created'")[
        0
    ]
    assert run_posting(app, hooked_id, 1) == "accepted"
    with pytest.raises(webhooks.DeliveryFailed):
        run_delivery(make_app(WEBHOOK_MAX_ATTEMPTS=1), delivery_id)
    # Stuck: posting gave up on the in-progress payment.
    (payment_id,) = run_sql("select id from payment where pid = 'in-progress'")[0]
    with app.app_context(), runtime.transaction() as conn:
        assert posting.flag_stuck(conn, payment_id, "attempt 20: OperationalError: ledger down", 20, H)
    # Slow: recorded 11 minutes ago and still not posted (not flagged yet); fresh: 2 minutes, no problem yet.
    slow_nob = pay(partner_headers, "0101000007", [202002], "slow")["nob"]
    pay(partner_headers, "0101000006", [202002], "fresh")
    run_sql("update payment set accepted_at = now() - interval '11 minutes' where pid = 'slow'")
    run_sql("update payment set accepted_at = now() - interval '2 minutes' where pid = 'fresh'")
    rows = run_sql(
        "select reason, pid, status, rev, jumlah_bayar, jumlah_tagihan, periode_masalah, detail, action"
        " from payments_needing_attention order by pid, reason"
    )
    by = {(r[0], r[1]): r for r in rows}
    assert sorted(by) == [
        ("changed", "changed"),
        ("rejected", "rejected"),
        ("slow", "slow"),
        ("stuck", "in-progress"),
        ("webhook failed", "hooked"),
    ]
    assert by[("changed", "changed")][2:7] == ("changed", 0, 2 * 48800 + 4, 48802, ["202002"])
    assert "not paid: 202002" in by[("changed", "changed")][7]
    assert by[("rejected", "rejected")][2] == "rejected" and "202001" in by[("rejected", "rejected")][7]
    stuck = by[("stuck", "in-progress")]
    assert stuck[2] == "created" and "ledger down" in stuck[7] and "payment requeue" in stuck[8]
    slow = by[("slow", "slow")]
    assert slow[2] == "created" and slow[8].endswith(f"payment requeue {slow_nob}")
    hook = by[("webhook failed", "hooked")]
    assert (
        hook[7].startswith("created to http://127.0.0.1:9/hook after 1 attempts: ")
        and "webhook resend" in hook[8]
    )


def test_views_are_documented(run_sql):
    for view in VIEWS:
        (comment,) = run_sql("select obj_description(%s::regclass, 'pg_class')", (view,))[0]
        assert comment and len(comment) > 40, view
    undocumented = run_sql(
        "select c.column_name from information_schema.columns c"
        " where c.table_name = 'daily_recap'"
        " and col_description('daily_recap'::regclass, c.ordinal_position) is null"
    )
    assert undocumented == []


#: The start-of-day queries docs/operators.md gives operators (kept runnable here).
START_OF_DAY = [
    "select * from daily_recap where tanggal = (now() at time zone 'Asia/Jakarta')::date - 1 order by pop",
    "select reason, tanggal, pop, nob, pid, nopel, status, detail, action from payments_needing_attention"
    " where tanggal >= (now() at time zone 'Asia/Jakarta')::date - 7 or reason in ('stuck', 'slow')"
    " order by reason, since",
    "select pop, count(*) as lembar, sum(jumlah) as jumlah from reconciliation"
    " where tanggal = (now() at time zone 'Asia/Jakarta')::date - 1 and rev = 0 group by pop order by pop",
    "select * from reconciliation where pop = '00' and tanggal = '2020-08-26' order by no",
]


@pytest.mark.parametrize("sql", START_OF_DAY)
def test_start_of_day_queries_run(day_of_payments, run_sql, sql):
    assert isinstance(run_sql(sql), list)


def test_a_period_awaits_posting_exactly_while_its_payment_is_created(day_of_payments, run_sql):
    # shown_bills_v1 (migration 013) reads "in progress" off the period alone: live and
    # paid null. Posting's outcomes (accepted, changed, rejected) and a reversal all leave
    # no period so marked, and a payment still created has all of its periods so.
    rows = run_sql(
        "select p.status, p.reversed_at is not null, count(*) filter (where pp.live and pp.paid is null),"
        " count(*) from payment p join payment_period pp on pp.payment_id = p.id"
        " group by 1, 2 order by 1, 2"
    )
    assert [tuple(r) for r in rows] == [
        ("accepted", False, 0, 4),
        ("accepted", True, 0, 1),
        ("changed", False, 0, 2),
        ("created", False, 1, 1),
        ("rejected", False, 0, 1),
    ]
