"""Section 4.4 under real concurrency: the database decides, never Python."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

CID = "010101002004"
THREADS = 100


@pytest.fixture
def two_bills(seed_bills):
    seed_bills.simple(CID, ["202001", "202002"])


def hammer(app, requests_):
    """Send every (path, json, headers) at once from its own thread; return responses."""
    barrier = threading.Barrier(len(requests_))

    def send(args):
        path, body, headers = args
        client = app.test_client()
        barrier.wait()
        res = client.post(path, json=body, headers=headers)
        return res.status_code, res.json, dict(res.headers)

    with ThreadPoolExecutor(max_workers=len(requests_)) as pool:
        return list(pool.map(send, requests_))


def test_identical_payment_from_100_threads(app, partner_headers, two_bills, inquire, run_sql):
    _, inq = inquire(CID, partner_headers)
    body = {"inq": inq, "pid": "same-pid", "amo": 97600, "mer": "1", "per": [202001, 202002]}
    results = hammer(app, [(f"/tagihan/{CID}", body, partner_headers)] * THREADS)
    codes = Counter(code for code, _, _ in results)
    assert set(codes) <= {202, 409}, codes
    nobs = {res["data"]["nob"] for code, res, _ in results if code == 202}
    assert len(nobs) == 1
    assert run_sql("select count(*) from payment") == [(1,)]
    assert run_sql("select count(*) from procrastinate_jobs where task_name = 'posting.post_payment'") == [(1,)]
    replays = [h for code, _, h in results if code == 202 and h.get("Idempotent-Replayed") == "true"]
    assert len(replays) == codes[202] - 1


def test_same_inq_with_100_different_pids(app, partner_headers, two_bills, inquire, run_sql):
    _, inq = inquire(CID, partner_headers)
    reqs = [
        (f"/tagihan/{CID}", {"inq": inq, "pid": f"pid-{i}", "amo": 97600, "mer": "1", "per": [202001, 202002]},
         partner_headers)
        for i in range(THREADS)
    ]
    codes = Counter(code for code, _, _ in hammer(app, reqs))
    assert codes == {202: 1, 409: THREADS - 1}, codes
    assert run_sql("select count(*) from payment") == [(1,)]
    assert run_sql("select count(*) from payment_period") == [(2,)]


def test_two_inquiries_same_period_paid_concurrently(app, partner_headers, auth_for, two_bills, inquire, run_sql):
    other = auth_for("96", "BANK2")
    _, inq1 = inquire(CID, partner_headers)
    _, inq2 = inquire(CID, other)
    reqs = [
        (f"/tagihan/{CID}", {"inq": inq1, "pid": "a", "amo": 48800, "mer": "1", "per": [202001]}, partner_headers),
        (f"/tagihan/{CID}", {"inq": inq2, "pid": "b", "amo": 48800, "mer": "1", "per": [202001]}, other),
    ] * 1
    for _ in range(5):  # several rounds: both orders of arrival get exercised
        run_sql("delete from payment")
        results = hammer(app, reqs)
        assert sorted(code for code, _, _ in results) == [202, 409]
        assert run_sql("select count(*) from payment_period where period = '202001' and live") == [(1,)]


def test_many_partners_many_payments_get_distinct_nobs(app, add_partner, issue_token, seed_bills, inquire, run_sql):
    codes = [f"{i:02d}" for i in range(10, 20)]
    reqs = []
    for code in codes:
        add_partner(code, f"P{code}")
        headers = {"Authorization": f"Bearer {issue_token(code)}"}
        for j in range(5):
            cid = f"77{code}{j:04d}"
            seed_bills.simple(cid, ["202001"])
            _, inq = inquire(cid, headers)
            reqs.append((f"/tagihan/{cid}", {"inq": inq, "pid": f"p{j}", "amo": 48800, "mer": "1",
                                             "per": [202001]}, headers))
    results = hammer(app, reqs)
    assert all(code == 202 for code, _, _ in results), [r for r in results if r[0] != 202][:1]
    nobs = [res["data"]["nob"] for _, res, _ in results]
    assert len(set(nobs)) == len(nobs)
    for code in codes:
        mine = sorted(n for n in nobs if n.startswith(code))
        assert [n[-4:] for n in mine] == ["0001", "0002", "0003", "0004", "0005"]
