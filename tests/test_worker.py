"""The real job server: a worker process posts what the API recorded."""

from __future__ import annotations

from tests.conftest import wait_for
from tests.test_payment import CID, body


def test_worker_process_posts_payments(client, partner_headers, seed_bills, inquire, start_worker, run_sql):
    seed_bills.simple(CID, ["202001"])
    _, inq = inquire(CID, partner_headers)
    res = client.post(f"/tagihan/{CID}", json=body(inq, amo=48800, per=[202001]), headers=partner_headers)
    nob = res.json["data"]["nob"]
    start_worker()
    wait_for(lambda: run_sql("select status from payment")[0][0] != "created")
    st = client.get(f"/status/{CID}?nob={nob}", headers=partner_headers)
    assert st.status_code == 202 and st.json["meta"]["jumlah_tagihan"] == 48800
    assert run_sql("select paid_by from bill") == [(nob,)]
    wait_for(lambda: run_sql(
        "select status from procrastinate_jobs where task_name = 'posting.post_payment'") == [("succeeded",)])
