"""The request's runtime (pdam/web/runtime.py) when a database goes away: 503 JSON at once,
and back by itself when it returns (the whole-route drill is in
tests/peti/test_security_drills.py)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from pdam.core import partners
from pdam.web import runtime
from tests.factories import CID, SEALER, bill_line, import_bills, issue


def test_inquiry_answers_503_while_ledger_down(split_app, partner_headers, ledger_server):
    ledger_server.stop()
    try:
        res = split_app.test_client().get(f"/tagihan/{CID}", headers=partner_headers)
        assert res.status_code == 503 and res.json["error"] == 503
    finally:
        ledger_server.start()
    assert split_app.test_client().get(f"/tagihan/{CID}", headers=partner_headers).status_code == 200


@pytest.mark.slow
def test_postgres_restart_under_api_load(make_app, private_server, private_database, keys):
    """503 JSON during the outage, normal answers within seconds after, no payment lost or doubled."""
    url = private_database
    app = make_app(DATABASE_URL=url, DB_CONNECT_TIMEOUT=1)
    customers = [f"7{i:011d}" for i in range(400)]
    with app.app_context(), runtime.transaction() as conn:
        partners.add(conn, "00", "BANK1", SEALER)
        import_bills(conn, "".join(bill_line(c, "202001", 1000, 0, 0, bill_no=f"z{c}") for c in customers))
    headers = {"Authorization": f"Bearer {issue(app, keys['ES256']['private'], '00', days=1)}"}
    stop = threading.Event()
    outcomes: list[tuple[float, int, str]] = []
    accepted: dict[str, str] = {}
    lock = threading.Lock()

    def client_loop(worker: int):
        client = app.test_client()
        for cid in customers[worker::8]:
            if stop.is_set():
                return
            inq = None
            while inq is None and not stop.is_set():
                res = client.get(f"/tagihan/{cid}", headers=headers)
                with lock:
                    outcomes.append((time.monotonic(), res.status_code, res.content_type))
                if res.status_code == 200:
                    inq = res.headers["X-Cross-Site"]
                else:
                    assert res.status_code == 503 and res.json["error"] == 503, res.data
                    time.sleep(0.05)
            pid = f"pid-{cid}"
            while inq and not stop.is_set():  # a partner retries with the same pid until it has an answer
                res = client.post(
                    f"/tagihan/{cid}",
                    json={"inq": inq, "pid": pid, "amo": 1000, "mer": "1", "per": [202001]},
                    headers=headers,
                )
                with lock:
                    outcomes.append((time.monotonic(), res.status_code, res.content_type))
                if res.status_code == 202:
                    with lock:
                        assert accepted.setdefault(pid, res.json["data"]["nob"]) == res.json["data"]["nob"]
                    break
                assert res.status_code == 503 and res.json["error"] == 503, res.data
                time.sleep(0.05)

    threads = [threading.Thread(target=client_loop, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    time.sleep(1)  # under load
    private_server.stop()
    down_at = time.monotonic()
    time.sleep(2)  # long enough for every client to meet the outage
    private_server.start()
    up_at = time.monotonic()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    codes = {code for _, code, _ in outcomes}
    assert codes <= {200, 202, 503}, codes
    assert all(ct == "application/json" for _, _, ct in outcomes)
    assert any(code == 503 for t, code, _ in outcomes if down_at <= t <= up_at)
    # The first answer after the outage began (a client may get it between the server's
    # being ready and ``up_at``: on a quiet machine it can be the last one there is).
    first_ok_after = min(t for t, code, _ in outcomes if t > down_at and code in (200, 202))
    assert first_ok_after - up_at < 10
    assert len(accepted) == len(customers)
    with psycopg.connect(url) as conn:
        rows = conn.execute("select pid, nob from payment").fetchall()
    assert dict(rows) == accepted  # none lost, none doubled
