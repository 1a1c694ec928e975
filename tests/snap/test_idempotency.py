"""X-EXTERNAL-ID (one answer per client per WIB day, byte for byte) and payment
idempotency by paymentRequestId, also under concurrency."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from .conftest import CID, INQUIRY, PAYMENT, PSID, STATUS, compact

THREADS = 50


def test_identical_request_gets_the_first_answer_byte_for_byte(bank, bills, run_sql):
    first = bank.inquiry(ref="r-1", headers={"X-EXTERNAL-ID": "e-1"})
    assert first.status_code == 200
    # Change the customer's bills: a new inquiry would show them, the replay does not.
    run_sql("update bill set late_fee = late_fee + 1")
    again = bank.inquiry(ref="r-1", headers={"X-EXTERNAL-ID": "e-1"})
    assert (again.status_code, again.data) == (200, first.data)
    assert run_sql("select count(*) from inquiry") == [(1,)]


def test_an_error_answer_is_replayed_too(bank, bills, run_sql):
    first = bank.pay(ref="no-inquiry", headers={"X-EXTERNAL-ID": "e-2"})
    assert first.json["responseCode"] == "4042519"
    bank.inquiry(ref="no-inquiry")  # now there would be an inquiry to pay
    again = bank.pay(ref="no-inquiry", headers={"X-EXTERNAL-ID": "e-2"})
    assert (again.status_code, again.data) == (404, first.data)
    assert run_sql("select count(*) from payment") == [(0,)]


def test_identity_is_method_path_and_minified_body(bank, bills):
    body = {**bank.va(), "inquiryRequestId": "r-1"}
    first = bank.post(INQUIRY, body, **{"X-EXTERNAL-ID": "e-3"})
    pretty = json.dumps(body, indent=4).encode()
    again = bank.post(INQUIRY, raw=pretty, minified=compact(body), **{"X-EXTERNAL-ID": "e-3"})
    assert (again.status_code, again.data) == (200, first.data)
    # The same body on another path is another request.
    other = bank.post(STATUS, {**bank.va(), "paymentRequestId": "r-1"}, **{"X-EXTERNAL-ID": "e-3"})
    assert other.json["responseCode"] == "4092600"
    # A space inside a string is a difference.
    spaced = bank.post(INQUIRY, {**body, "inquiryRequestId": "r-1 "}, **{"X-EXTERNAL-ID": "e-3"})
    assert spaced.json["responseCode"] == "4092400"


def test_external_id_is_per_client(bank, bills, make_bank, seed_bills):
    other = make_bank("96", "bank-two", "55555")
    assert bank.inquiry(headers={"X-EXTERNAL-ID": "same"}).status_code == 200
    va = {"partnerServiceId": "   55555", "customerNo": CID, "virtualAccountNo": "   55555" + CID}
    res = other.post(INQUIRY, {**va, "inquiryRequestId": "x"}, **{"X-EXTERNAL-ID": "same"})
    assert res.json["responseCode"] == "2002400"


def test_external_id_is_per_wib_day(make_app, make_bank, bills, clock, run_sql):
    app = make_app(CLOCK=clock)
    bank = make_bank(app_=app, clock=clock)
    clock.at = clock.at.replace(hour=23, minute=58)  # WIB
    assert bank.inquiry(ref="r-1", headers={"X-EXTERNAL-ID": "daily"}).status_code == 200
    assert bank.inquiry(ref="r-2", headers={"X-EXTERNAL-ID": "daily"}).json["responseCode"] == "4092400"
    clock.at += dt.timedelta(minutes=3)  # 00:01 WIB the next day
    res = bank.inquiry(ref="r-2", headers={"X-EXTERNAL-ID": "daily"})
    assert res.json["responseCode"] == "2002400"
    assert run_sql("select day from snap_external_id order by day") == [
        (dt.date(2020, 8, 26),),
        (dt.date(2020, 8, 27),),
    ]


def test_old_external_ids_are_purged_with_a_new_token(make_app, make_bank, bills, clock, run_sql):
    app = make_app(CLOCK=clock)
    bank = make_bank(app_=app, clock=clock)
    bank.inquiry(ref="r-1")
    clock.at += dt.timedelta(days=1)
    bank._token = None
    bank.inquiry(ref="r-2")
    assert run_sql("select count(*) from snap_external_id") == [(2,)]  # yesterday's stays
    clock.at += dt.timedelta(days=1)
    bank._token = None
    bank.inquiry(ref="r-3")
    assert run_sql("select day from snap_external_id order by day") == [
        (dt.date(2020, 8, 27),),
        (dt.date(2020, 8, 28),),
    ]
    assert run_sql("select count(*) from snap_access_token") == [(1,)]  # the expired ones went


def test_retry_with_a_new_external_id_is_the_same_payment(bank, bills, run_sql):
    bank.inquiry(ref="r-1")
    first = bank.pay(ref="r-1")
    retry = bank.pay(ref="r-1", flagAdvise="Y")
    again = bank.pay(ref="r-1", flagAdvise="N", channelCode=6011)
    assert first.status_code == retry.status_code == again.status_code == 200
    assert retry.json == first.json == again.json
    assert run_sql("select count(*) from payment") == [(1,)]
    assert run_sql("select count(*) from procrastinate_jobs where task_name = 'posting.post_payment'") == [
        (1,)
    ]


def test_retry_after_the_inquiry_expired_and_was_purged(make_app, make_bank, bills, clock, run_sql):
    from pdam.core import inquiry
    from pdam.web import runtime

    app = make_app(CLOCK=clock)
    bank = make_bank(app_=app, clock=clock)
    bank.inquiry(ref="r-1")
    first = bank.pay(ref="r-1")
    clock.at += dt.timedelta(hours=1)
    bank._token = None
    with app.app_context(), runtime.transaction() as conn:
        inquiry.purge_expired(conn, clock.at)
    # The paid inquiry's snapshot is kept: the retry's answer still lists the bills.
    retry = bank.pay(ref="r-1", flagAdvise="Y")
    assert retry.json == first.json
    assert run_sql("select count(*) from inquiry") == [(1,)]


def hammer(app, requests_):
    """Send every (path, body, headers) at once from its own thread."""
    barrier = threading.Barrier(len(requests_))

    def send(args):
        path, body, headers = args
        client = app.test_client()
        barrier.wait()
        res = client.post(path, data=body, headers=headers)
        return res.status_code, res.data

    with ThreadPoolExecutor(max_workers=len(requests_)) as pool:
        return list(pool.map(send, requests_))


def _payment(bank, external_id=None):
    body = compact(
        {**bank.va(), "paymentRequestId": "r-1", "paidAmount": {"value": "177600.00", "currency": "IDR"}}
    )
    headers = bank.headers(PAYMENT, body, **({"X-EXTERNAL-ID": external_id} if external_id else {}))
    return PAYMENT, body, headers


def test_50_identical_payments_at_once_make_one_payment(app, bank, bills, run_sql):
    bank.inquiry(ref="r-1")
    results = hammer(app, [_payment(bank) for _ in range(THREADS)])  # each with its own X-EXTERNAL-ID
    assert Counter(code for code, _ in results) == {200: THREADS}, [r for r in results if r[0] != 200][:1]
    bodies = {data for _, data in results}
    assert len(bodies) == 1  # the same answer, the same nob
    nob = json.loads(bodies.pop())["virtualAccountData"]["additionalInfo"]["nob"]
    assert run_sql("select nob from payment") == [(nob,)]
    assert run_sql("select count(*) from procrastinate_jobs where task_name = 'posting.post_payment'") == [
        (1,)
    ]
    assert run_sql("select count(*) from snap_external_id") == [(THREADS + 1,)]


def test_50_requests_with_one_external_id_get_one_answer(app, bank, bills, run_sql):
    bank.inquiry(ref="r-1")
    request = _payment(bank, external_id="one-id")
    results = hammer(app, [request] * THREADS)
    assert {code for code, _ in results} == {200}
    assert len({data for _, data in results}) == 1
    assert run_sql("select count(*) from payment") == [(1,)]
    assert run_sql("select count(*) from snap_external_id where external_id = 'one-id'") == [(1,)]


def test_50_inquiries_with_one_reference_make_one_inquiry(app, bank, bills, run_sql):
    reqs = []
    for _ in range(THREADS):
        body = compact({**bank.va(), "inquiryRequestId": "same-ref"})
        reqs.append((INQUIRY, body, bank.headers(INQUIRY, body)))
    results = hammer(app, reqs)
    assert {code for code, _ in results} == {200}
    assert len({data for _, data in results}) == 1
    assert run_sql("select count(*) from inquiry") == [(1,)]


def test_same_inquiry_reference_while_it_lives(make_app, make_bank, bills, clock, run_sql):
    app = make_app(CLOCK=clock)
    bank = make_bank(app_=app, clock=clock)
    first = bank.inquiry(ref="r-1")
    run_sql("update bill set late_fee = late_fee + 100 where period = '202005'")
    clock.at += dt.timedelta(seconds=899)
    again = bank.inquiry(ref="r-1")
    assert again.json == first.json  # the same bills while it lives
    clock.at += dt.timedelta(seconds=1)
    bank._token = None
    renewed = bank.inquiry(ref="r-1")
    assert renewed.json["virtualAccountData"]["totalAmount"]["value"] == "177700.00"
    assert run_sql("select count(*), min(reference) from inquiry") == [(1, "r-1")]
    # A renewed inquiry is paid at its new total.
    assert bank.pay(ref="r-1", amount="177700.00").json["responseCode"] == "2002500"


def test_paid_reference_cannot_be_inquired_again_after_expiry(make_app, make_bank, bills, seed_bills, clock):
    app = make_app(CLOCK=clock)
    bank = make_bank(app_=app, clock=clock)
    bank.inquiry(ref="r-1")
    assert bank.pay(ref="r-1").status_code == 200
    seed_bills.simple(CID, ["202007"])  # a new bill: the customer has something to pay again
    clock.at += dt.timedelta(seconds=900)
    bank._token = None
    assert bank.inquiry(ref="r-1").json["responseCode"] == "4042414"
    assert bank.inquiry(ref="r-2").json["virtualAccountData"]["billDetails"][0]["billShortName"] == "202007"


def test_status_shows_the_va_as_asked(bank, bills):
    bank.inquiry(ref="r-1")
    bank.pay(ref="r-1")
    data = bank.status(ref="r-1").json["virtualAccountData"]
    assert (data["partnerServiceId"], data["customerNo"], data["virtualAccountNo"]) == (PSID, CID, PSID + CID)


def test_a_retry_after_posting_rejected_it_is_still_the_first_answer(bank, bills, post_queued, run_sql):
    """The payment route answers what was recorded; the status route says what happened since."""
    bank.inquiry(ref="r-1")
    first = bank.pay(ref="r-1")
    run_sql("update bill set paid_by = '992001010001', paid_at = now()")
    post_queued()
    retry = bank.pay(ref="r-1", flagAdvise="Y")
    assert retry.json == first.json and retry.json["virtualAccountData"]["paymentFlagStatus"] == "00"
    assert bank.status(ref="r-1").json["virtualAccountData"]["paymentFlagStatus"] == "01"
