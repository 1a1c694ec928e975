"""Payments (pdam/core/payments.py): section 4.4 under real concurrency (the database
decides, never Python), and receipt numbers (nob): format and uniqueness over many
allocations."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdam.core import payments
from pdam.web import runtime
from tests.factories import CID, race

THREADS = 100
UTC = dt.UTC
PARTNERS = ["00", "01", "96"]
START = dt.datetime(2020, 8, 25, 16, 0, tzinfo=UTC)  # 23:00 WIB: WIB days differ from UTC days


@pytest.fixture
def two_bills(seed_bills):
    seed_bills.simple(CID, ["202001", "202002"])


def hammer(app, requests_):
    """Send every (path, json, headers) at once, each from its own thread; return responses."""

    def sender(path, body, headers):
        def send():
            res = app.test_client().post(path, json=body, headers=headers)
            return res.status_code, res.json, dict(res.headers)

        return send

    return race([sender(*r) for r in requests_])


def test_identical_payment_from_100_threads(app, partner_headers, two_bills, inquire, run_sql):
    _, inq = inquire(CID, partner_headers)
    body = {"inq": inq, "pid": "same-pid", "amo": 97600, "mer": "1", "per": [202001, 202002]}
    results = hammer(app, [(f"/tagihan/{CID}", body, partner_headers)] * THREADS)
    codes = Counter(code for code, _, _ in results)
    assert set(codes) <= {202, 409}, codes
    nobs = {res["data"]["nob"] for code, res, _ in results if code == 202}
    assert len(nobs) == 1
    assert run_sql("select count(*) from payment") == [(1,)]
    assert run_sql("select count(*) from procrastinate_jobs where task_name = 'posting.post_payment'") == [
        (1,)
    ]
    replays = [h for code, _, h in results if code == 202 and h.get("Idempotent-Replayed") == "true"]
    assert len(replays) == codes[202] - 1


def test_same_inq_with_100_different_pids(app, partner_headers, two_bills, inquire, run_sql):
    _, inq = inquire(CID, partner_headers)
    reqs = [
        (
            f"/tagihan/{CID}",
            {"inq": inq, "pid": f"pid-{i}", "amo": 97600, "mer": "1", "per": [202001, 202002]},
            partner_headers,
        )
        for i in range(THREADS)
    ]
    codes = Counter(code for code, _, _ in hammer(app, reqs))
    assert codes == {202: 1, 409: THREADS - 1}, codes
    assert run_sql("select count(*) from payment") == [(1,)]
    assert run_sql("select count(*) from payment_period") == [(2,)]


def test_two_inquiries_same_period_paid_concurrently(
    app, partner_headers, auth_for, two_bills, inquire, run_sql
):
    other = auth_for("96", "BANK2")
    _, inq1 = inquire(CID, partner_headers)
    _, inq2 = inquire(CID, other)
    reqs = [
        (
            f"/tagihan/{CID}",
            {"inq": inq1, "pid": "a", "amo": 48800, "mer": "1", "per": [202001]},
            partner_headers,
        ),
        (f"/tagihan/{CID}", {"inq": inq2, "pid": "b", "amo": 48800, "mer": "1", "per": [202001]}, other),
    ] * 1
    for _ in range(5):  # several rounds: both orders of arrival get exercised
        run_sql("delete from payment")
        results = hammer(app, reqs)
        assert sorted(code for code, _, _ in results) == [202, 409]
        assert run_sql("select count(*) from payment_period where period = '202001' and live") == [(1,)]


def test_many_partners_many_payments_get_distinct_nobs(
    app, add_partner, issue_token, seed_bills, inquire, run_sql
):
    codes = [f"{i:02d}" for i in range(10, 20)]
    reqs = []
    for code in codes:
        add_partner(code, f"P{code}")
        headers = {"Authorization": f"Bearer {issue_token(code)}"}
        for j in range(5):
            cid = f"77{code}{j:04d}"
            seed_bills.simple(cid, ["202001"])
            _, inq = inquire(cid, headers)
            reqs.append(
                (
                    f"/tagihan/{cid}",
                    {"inq": inq, "pid": f"p{j}", "amo": 48800, "mer": "1", "per": [202001]},
                    headers,
                )
            )
    results = hammer(app, reqs)
    assert all(code == 202 for code, _, _ in results), [r for r in results if r[0] != 202][:1]
    nobs = [res["data"]["nob"] for _, res, _ in results]
    assert len(set(nobs)) == len(nobs)
    for code in codes:
        mine = sorted(n for n in nobs if n.startswith(code))
        assert [n[-4:] for n in mine] == ["0001", "0002", "0003", "0004", "0005"]


# -- receipt numbers (nob) -------------------------------------------------------------------


def allocate_nob(conn, partner_code: str, when: dt.datetime) -> str:
    """The next receipt number alone: the function the payment's record statement calls, for
    the WIB day of ``when`` as ``accept`` computes it."""
    day = payments.wib_day(when)
    return conn.execute(sa.text("select next_nob_v1(:p, :d)"), {"p": partner_code, "d": day}).scalar()


def test_wib_day_decides_the_date(app, add_partner):
    add_partner("00")
    with app.app_context(), runtime.transaction() as conn:
        # 2020-08-25 17:30 UTC is 2020-08-26 00:30 WIB.
        assert allocate_nob(conn, "00", dt.datetime(2020, 8, 25, 17, 30, tzinfo=UTC)) == "002008260001"
        assert allocate_nob(conn, "00", dt.datetime(2020, 8, 25, 16, 59, tzinfo=UTC)) == "002008250001"
        assert allocate_nob(conn, "00", dt.datetime(2020, 8, 26, 16, 59, tzinfo=UTC)) == "002008260002"


def test_rolled_back_allocation_leaves_a_gap_not_a_duplicate(app, add_partner):
    add_partner("00")
    when = START
    with app.app_context():
        conn = runtime.connection()
        assert allocate_nob(conn, "00", when).endswith("0001")
        conn.rollback()
        with runtime.transaction() as conn:
            first = allocate_nob(conn, "00", when)
        with runtime.transaction() as conn:
            second = allocate_nob(conn, "00", when)
    assert first != second and {first[-4:], second[-4:]} == {"0001", "0002"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    allocations=st.lists(
        st.tuples(st.sampled_from(PARTNERS), st.integers(min_value=0, max_value=3 * 24 * 60)),
        min_size=1,
        max_size=60,
    )
)
def test_nobs_are_well_formed_unique_and_sequential(app, add_partner, run_sql, allocations):
    run_sql("delete from nob_counter")
    if not run_sql("select count(*) from partner")[0][0]:
        for code in PARTNERS:
            add_partner(code)
    seen: dict[tuple[str, str], list[int]] = {}
    with app.app_context(), runtime.transaction() as conn:
        for code, minutes in allocations:
            when = START + dt.timedelta(minutes=minutes)
            nob = allocate_nob(conn, code, when)
            assert re.fullmatch(r"[0-9]{12}", nob)
            assert nob[:2] == code
            assert nob[2:8] == (when + dt.timedelta(hours=7)).strftime("%y%m%d")
            seen.setdefault((code, nob[2:8]), []).append(int(nob[8:]))
    for numbers in seen.values():
        assert numbers == list(range(1, len(numbers) + 1))
