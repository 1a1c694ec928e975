"""A SNAP payment and a PeTi payment racing for the same bill: exactly one wins."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from .conftest import CID, PAYMENT, compact

ROUNDS = 6


def test_snap_and_peti_race_for_one_bill(app, bank, bills, auth_for, run_sql):
    peti_headers = auth_for("96", "BANK2")
    for round_ in range(ROUNDS):  # several rounds: both orders of arrival get exercised
        run_sql("delete from payment")
        ref = f"race-{round_}"
        assert bank.inquiry(ref=ref).status_code == 200
        client = app.test_client()
        inq = client.get(f"/tagihan/{CID}", headers=peti_headers)
        assert inq.status_code == 200, inq.json
        snap_body = compact(
            {**bank.va(), "paymentRequestId": ref, "paidAmount": {"value": "177600.00", "currency": "IDR"}}
        )
        snap_headers = bank.headers(PAYMENT, snap_body)
        peti_body = {
            "inq": inq.headers["X-Cross-Site"],
            "pid": ref,
            "amo": 88800,
            "mer": "1",
            "per": [202005],
        }
        barrier = threading.Barrier(2)

        def snap():
            c = app.test_client()
            barrier.wait()
            return c.post(PAYMENT, data=snap_body, headers=snap_headers)

        def peti():
            c = app.test_client()
            barrier.wait()
            return c.post(f"/tagihan/{CID}", json=peti_body, headers=peti_headers)

        with ThreadPoolExecutor(max_workers=2) as pool:
            snap_res, peti_res = (f.result() for f in [pool.submit(snap), pool.submit(peti)])
        outcome = (snap_res.json["responseCode"], peti_res.status_code)
        assert outcome in {("2002500", 409), ("4042514", 202)}, (outcome, snap_res.json, peti_res.json)
        assert run_sql("select count(*) from payment") == [(1,)]
        assert run_sql("select count(*) from payment_period where period = '202005' and live") == [(1,)]
