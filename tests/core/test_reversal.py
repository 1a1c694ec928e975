"""Reversal (pdam/core/reversal.py, contract section 8): DELETE /tagihan/<cid>?pid=&pat=,
its window with the test clock, with one database and with a separate ledger."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from pdam.core import reversal
from pdam.web import runtime
from tests.factories import CID, WIB, H, race, run_posting

#: Every app of this module runs on the test clock, which starts at H (day H, 10:00 WIB).
pytestmark = pytest.mark.usefixtures("clock")
NEXT_NOON = dt.datetime(2020, 8, 27, 12, 0, tzinfo=WIB)


@pytest.fixture
def two_bills(seed_bills):
    seed_bills.simple(CID, ["202001", "202002"])  # 48,800 each


@pytest.fixture
def posted(partner_headers, two_bills, pay, post_queued):
    """An accepted payment of both bills, made on day H at 10:00 WIB."""
    data = pay(partner_headers)
    assert post_queued() == ["accepted"]
    return data


def reverse(client, headers, cid=CID, **query):
    return client.delete(f"/tagihan/{cid}", query_string=query, headers=headers)


def ledger(run_sql):
    return run_sql("select period, paid_by, paid_at is not null from bill order by period")


def test_reversal_frees_the_bills(client, partner_headers, posted, clock, run_sql):
    clock.at = H + dt.timedelta(hours=2)
    res = reverse(client, partner_headers, pid=posted["pid"], pat=posted["pat"])
    assert res.status_code == 200, res.json
    assert list(res.json) == ["status", "code", "message", "data", "meta"]
    assert res.json == {
        "status": "reversed",
        "code": 200,
        "message": "payment reversed",
        "data": {
            **{k: posted[k] for k in ("cid", "pid", "pat", "pop", "mer", "inq", "pts")},
            "rev": 1,
            "nob": posted["nob"],
        },
        "meta": {
            "jumlah_tagihan": 97600,
            "jumlah_bayar": 97600,
            "jumlah_masalah": 0,
            "lembar_tagihan": 2,
            "lembar_bayar": 2,
            "lembar_masalah": 0,
            "periode_tagihan": [202001, 202002],
            "periode_bayar": [202001, 202002],
            "periode_masalah": None,
        },
    }
    assert ledger(run_sql) == [("202001", None, False), ("202002", None, False)]
    assert run_sql("select status, reversed_at from payment") == [("accepted", clock.at)]
    # The amounts it paid stay recorded (reconciliation shows them with rev = 1), no longer live.
    assert run_sql("select period, paid, live, water from payment_period order by period") == [
        ("202001", True, False, 40000),
        ("202002", True, False, 40000),
    ]
    # GET /status keeps the posting outcome and shows rev = 1.
    st = client.get(f"/status/{CID}", query_string={"nob": posted["nob"]}, headers=partner_headers)
    assert st.status_code == 202 and st.json["status"] == "accepted" and st.json["data"]["rev"] == 1


def test_reversing_a_changed_payment_frees_only_its_own_bills(
    client, partner_headers, two_bills, pay, post_queued, run_sql
):
    data = pay(partner_headers)
    run_sql(
        "update bill set paid_by = '992001010001', paid_at = now() where period = '202001'"
    )  # at the counter
    assert post_queued() == ["changed"]
    res = reverse(client, partner_headers, pid=data["pid"], pat=data["pat"])
    assert res.status_code == 200, res.json
    assert res.json["status"] == "reversed" and res.json["data"]["rev"] == 1
    assert res.json["meta"]["periode_masalah"] == [202001] and res.json["meta"]["periode_tagihan"] == [202002]
    assert ledger(run_sql) == [("202001", "992001010001", True), ("202002", None, False)]


@pytest.mark.parametrize(
    "when, allowed",
    [
        (H + dt.timedelta(minutes=1), True),  # right after acceptance
        (dt.datetime(2020, 8, 26, 23, 59, tzinfo=WIB), True),  # H, end of day
        (dt.datetime(2020, 8, 27, 11, 59, 59, tzinfo=WIB), True),  # H+1 11:59:59
        (NEXT_NOON - dt.timedelta(microseconds=1), True),
        (NEXT_NOON, False),  # H+1 12:00: closed
        (dt.datetime(2020, 8, 27, 12, 0, 1, tzinfo=WIB), False),
        (dt.datetime(2020, 8, 28, 9, 0, tzinfo=WIB), False),  # H+2
    ],
    ids=["H+1min", "H-23:59", "H+1-11:59:59", "H+1-just-before-noon", "H+1-12:00", "H+1-12:00:01", "H+2"],
)
def test_window(client, partner_headers, posted, clock, run_sql, when, allowed):
    clock.at = when
    res = reverse(client, partner_headers, pid=posted["pid"], pat=posted["pat"])
    if allowed:
        assert res.status_code == 200, res.json
        assert ledger(run_sql) == [("202001", None, False), ("202002", None, False)]
    else:
        assert res.json == {
            "error": 403,
            "message": f"reversal of payment {posted['nob']} was allowed until 2020-08-27 12:00 WIB",
        }
        assert ledger(run_sql) == [("202001", posted["nob"], True), ("202002", posted["nob"], True)]
        assert run_sql("select reversed_at from payment") == [(None,)]
        assert run_sql("select count(*) from payment_period where live") == [(2,)]


def test_window_counts_wib_days_not_utc_days(client, partner_headers, two_bills, pay, post_queued, clock):
    # 00:30 WIB on 26 August is still 25 August in UTC: the payment day is the 26th (WIB).
    clock.at = dt.datetime(2020, 8, 26, 0, 30, tzinfo=WIB)
    data = pay(partner_headers)
    assert post_queued() == ["accepted"]
    clock.at = dt.datetime(2020, 8, 27, 4, 59, tzinfo=dt.UTC)  # 11:59 WIB on the 27th
    assert reverse(client, partner_headers, pid=data["pid"], pat=data["pat"]).status_code == 200


def test_window_closed_message_from_late_evening_payment(
    client, partner_headers, two_bills, pay, post_queued, clock
):
    clock.at = dt.datetime(2020, 8, 26, 23, 50, tzinfo=WIB)  # 16:50 UTC
    data = pay(partner_headers)
    post_queued()
    clock.at = dt.datetime(2020, 8, 27, 12, 0, tzinfo=WIB)
    res = reverse(client, partner_headers, pid=data["pid"], pat=data["pat"])
    assert res.status_code == 403 and "until 2020-08-27 12:00 WIB" in res.json["message"]


def test_reversing_again_answers_the_same(client, partner_headers, posted, clock, run_sql):
    first = reverse(client, partner_headers, pid=posted["pid"], pat=posted["pat"])
    assert first.status_code == 200
    reversed_at = run_sql("select reversed_at from payment")
    clock.at = H + dt.timedelta(hours=1)
    again = reverse(client, partner_headers, pid=posted["pid"], pat=posted["pat"])
    assert again.status_code == 200 and again.json == first.json
    # Also after the window closed: it is the answer to the same request, nothing changes.
    clock.at = H + dt.timedelta(days=5)
    late = reverse(client, partner_headers, pid=posted["pid"], pat=posted["pat"])
    assert late.status_code == 200 and late.json == first.json
    assert run_sql("select reversed_at from payment") == reversed_at


def test_reversal_takes_pat_in_either_case(client, partner_headers, posted, run_sql):
    res = reverse(client, partner_headers, pid=posted["pid"], pat=posted["pat"].lower())
    assert res.status_code == 200 and res.json["data"]["pat"] == posted["pat"]
    assert run_sql("select reversed_at is not null from payment") == [(True,)]


def test_unknown_payment_is_404(client, partner_headers, posted, run_sql):
    for query in ({"pid": "nope", "pat": posted["pat"]}, {"pid": posted["pid"], "pat": "F" * 20}):
        res = reverse(client, partner_headers, **query)
        assert res.json == {"error": 404, "message": "payment not found"}, query
    other_cid = reverse(client, partner_headers, cid="0101", pid=posted["pid"], pat=posted["pat"])
    assert other_cid.json == {"error": 404, "message": "payment not found"}
    assert run_sql("select reversed_at from payment") == [(None,)]


def test_payment_of_another_partner_is_404(client, partner_headers, auth_for, posted, run_sql):
    res = reverse(client, auth_for("96", "BANK2"), pid=posted["pid"], pat=posted["pat"])
    assert res.json == {"error": 404, "message": "payment not found"}
    assert run_sql("select reversed_at from payment") == [(None,)]
    assert ledger(run_sql)[0][1] == posted["nob"]


def test_payment_in_progress_is_409(client, partner_headers, two_bills, pay, run_sql):
    data = pay(partner_headers)
    res = reverse(client, partner_headers, pid=data["pid"], pat=data["pat"])
    assert res.json == {
        "error": 409,
        "message": "the payment is still in progress; it can be reversed once posted",
    }
    assert run_sql("select status, reversed_at from payment") == [("created", None)]


def test_rejected_payment_is_409(client, partner_headers, two_bills, pay, post_queued, run_sql):
    data = pay(partner_headers)
    run_sql("update bill set paid_by = '992001010001', paid_at = now()")
    assert post_queued() == ["rejected"]
    res = reverse(client, partner_headers, pid=data["pid"], pat=data["pat"])
    assert res.json == {
        "error": 409,
        "message": "the payment was rejected (paid before); there is nothing to reverse",
    }
    assert ledger(run_sql) == [("202001", "992001010001", True), ("202002", "992001010001", True)]


@pytest.mark.parametrize(
    "cid, query, field",
    [
        (CID, {"pat": "A" * 20}, "pid"),
        (CID, {"pid": "evid-123456"}, "pat"),
        (CID, {}, "pid"),
        (CID, {"pid": "", "pat": "A" * 20}, "pid"),
        (CID, {"pid": "x" * 51, "pat": "A" * 20}, "pid"),
        (CID, {"pid": "evid\x00", "pat": "A" * 20}, "pid"),
        (CID, {"pid": "evid-123456", "pat": "A" * 19}, "pat"),
        (CID, {"pid": "evid-123456", "pat": "G" * 20}, "pat"),
        ("12ab", {"pid": "evid-123456", "pat": "A" * 20}, "cid"),
    ],
)
def test_bad_query_is_400(client, partner_headers, posted, run_sql, cid, query, field):
    res = reverse(client, partner_headers, cid=cid, **query)
    assert res.status_code == 400 and res.json["error"] == 400
    assert field in res.json["errors"]
    assert run_sql("select reversed_at from payment") == [(None,)]


def test_without_token_is_401(client, posted):
    assert reverse(client, {}, pid=posted["pid"], pat=posted["pat"]).status_code == 401


def test_freed_bill_can_be_paid_again(
    client, partner_headers, posted, inquire, post_queued, run_sql, clock, pay
):
    clock.at = H + dt.timedelta(hours=3)
    assert reverse(client, partner_headers, pid=posted["pid"], pat=posted["pat"]).status_code == 200
    shown, _ = inquire(CID, partner_headers)
    assert [b["periode"] for b in shown["tagihan"]] == ["202001", "202002"]
    again = pay(partner_headers, pid="evid-2")
    assert again["nob"] != posted["nob"]
    # The old payment's job runs again too (its row stays): it is final and changes nothing.
    assert post_queued() == ["accepted", "accepted"]
    assert ledger(run_sql) == [("202001", again["nob"], True), ("202002", again["nob"], True)]
    assert run_sql("select pid, status, reversed_at is not null from payment order by id") == [
        ("evid-123456", "accepted", True),
        ("evid-2", "accepted", False),
    ]
    st = client.get(f"/status/{CID}", query_string={"pid": "evid-2"}, headers=partner_headers)
    assert st.status_code == 202 and st.json["data"]["rev"] == 0
    # The reversed payment keeps its rows (not live), the new one holds the bills.
    assert run_sql(
        "select p.pid, pp.period, pp.live from payment_period pp join payment p on p.id = pp.payment_id"
        " order by p.id, pp.period"
    ) == [
        ("evid-123456", "202001", False),
        ("evid-123456", "202002", False),
        ("evid-2", "202001", True),
        ("evid-2", "202002", True),
    ]
    # Reversing the old one again changes nothing: the guarded ledger update only frees its own nob.
    assert reverse(client, partner_headers, pid=posted["pid"], pat=posted["pat"]).status_code == 200
    assert ledger(run_sql) == [("202001", again["nob"], True), ("202002", again["nob"], True)]


def test_concurrent_reversals_reverse_once(app, partner_headers, posted, run_sql):
    def work():
        res = reverse(app.test_client(), partner_headers, pid=posted["pid"], pat=posted["pat"])
        return res.status_code, res.json["data"]["rev"]

    assert race([work] * 6) == [(200, 1)] * 6
    assert run_sql("select count(*) from payment where reversed_at is not null") == [(1,)]
    assert ledger(run_sql) == [("202001", None, False), ("202002", None, False)]


def test_reversed_callback_is_queued_for_x_async(
    client, partner_headers, two_bills, pay, post_queued, run_sql
):
    data = pay(partner_headers, extra_headers={"X-Async": "http://127.0.0.1:9/hook"})
    post_queued()
    before = run_sql("select event from webhook_delivery order by id")
    assert reverse(client, partner_headers, pid=data["pid"], pat=data["pat"]).status_code == 200
    after = run_sql("select id, event, url, body from webhook_delivery order by id")
    assert [(event, url) for _, event, url, _ in after[len(before) :]] == [
        ("reversed", "http://127.0.0.1:9/hook")
    ]
    delivery_id, _, _, sent = after[-1]
    assert (sent["status"], sent["code"], sent["data"]["nob"]) == ("reversed", 200, data["nob"])
    # in the payment's lane, behind its other callbacks, for the dispatcher to send
    lane = run_sql("select lane from webhook_delivery where id = %s", (delivery_id,))[0][0]
    assert run_sql("select status from webhook_delivery where lane = %s order by id", (lane,))[-1] == (
        "pending",
    )


def test_no_callback_without_x_async(client, partner_headers, posted, run_sql):
    assert reverse(client, partner_headers, pid=posted["pid"], pat=posted["pat"]).status_code == 200
    assert run_sql("select count(*) from webhook_delivery where event = 'reversed'") == [(0,)]


# -- a separate ledger database (BILLING_DATABASE_URL) ------------------------------


def split_ledger(app):
    with psycopg.connect(app.ledger_url) as conn:
        return conn.execute("select period, paid_by from bill order by period").fetchall()


@pytest.fixture
def split_posted(split_app, partner_headers, pay, run_sql):
    """An accepted payment of both bills of the separate ledger."""
    data = pay(partner_headers, app=split_app)
    (payment_id,) = run_sql("select id from payment")[0]
    assert run_posting(split_app, payment_id, 1) == "accepted"
    return data


def test_separate_ledger_reversal(split_app, split_posted, partner_headers, run_sql):
    data = split_posted
    assert split_ledger(split_app) == [("202001", data["nob"]), ("202002", data["nob"])]
    res = reverse(split_app.test_client(), partner_headers, pid=data["pid"], pat=data["pat"])
    assert res.status_code == 200 and res.json["data"]["rev"] == 1
    assert split_ledger(split_app) == [("202001", None), ("202002", None)]
    assert run_sql("select count(*) from payment where reversed_at is not null") == [(1,)]


def test_separate_ledger_crash_between_commits_then_retry(
    split_app, split_posted, partner_headers, clock, run_sql
):
    data = split_posted
    with split_app.app_context():
        conn, led = runtime.connection(), runtime.ledger_connection()
        reversal.reverse(conn, led, "00", CID, data["pid"], data["pat"], clock())
        led.commit()  # the ledger committed ...
        conn.rollback()  # ... and the process died before the payments database did
    assert split_ledger(split_app) == [("202001", None), ("202002", None)]
    assert run_sql("select reversed_at, (select count(*) from payment_period where live) from payment") == [
        (None, 2)
    ]
    # The partner retries: the reversal completes; nothing else in the ledger is touched.
    res = reverse(split_app.test_client(), partner_headers, pid=data["pid"], pat=data["pat"])
    assert res.status_code == 200 and res.json["status"] == "reversed" and res.json["data"]["rev"] == 1
    assert run_sql(
        "select reversed_at is not null, (select count(*) from payment_period where live) from payment"
    ) == [(True, 0)]
    assert split_ledger(split_app) == [("202001", None), ("202002", None)]
