"""The sandbox over PeTi (contract 14.1): sandbox tokens from the CLI, the six test
customers and what posting does with each, bills that come back, the same wire with
``X-Sandbox: true`` (answers, errors and callbacks), each partner's sandbox its own,
``POST /sandbox/reset`` and the retention purge. Isolation from live data, route by route:
tests/peti/test_sandbox_isolation.py."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from pdam.core import errors, sandbox
from pdam.web import runtime
from tests.factories import deliver_pending, issue

ACCEPTED, CHANGED, REJECTED, BUSY, NO_BILLS, THIRTY = (f"99000000000{i}" for i in range(1, 7))


@pytest.fixture
def sandbox_headers(app, keys, add_partner):
    """``sandbox_headers(code)``: a partner with a sandbox token's Authorization header."""

    def make(code: str = "00", name: str = "BANK1") -> dict:
        try:
            add_partner(code, name)
        except errors.Conflict:  # the partner has a live token already
            pass
        return {"Authorization": f"Bearer {issue(app, keys['ES256']['private'], code, sandbox=True)}"}

    return make


def test_the_cli_issues_a_sandbox_token_and_lists_it_as_such(cli, app, add_partner):
    add_partner("00", "BANK1")
    live = cli("token", "issue", "00")
    test = cli("token", "issue", "00", "--sandbox")
    assert live.exit_code == 0 and test.exit_code == 0, (live.output, test.output)
    listed = cli("token", "list", "00").output.strip().splitlines()
    assert len(listed) == 2
    assert [line.endswith("  sandbox") for line in listed].count(True) == 1
    client = app.test_client()
    res = client.get(f"/tagihan/{ACCEPTED}", headers={"Authorization": f"Bearer {test.output.strip()}"})
    assert res.status_code == 200 and res.headers["X-Sandbox"] == "true"
    res = client.get(f"/tagihan/{ACCEPTED}", headers={"Authorization": f"Bearer {live.output.strip()}"})
    assert res.status_code == 404 and "X-Sandbox" not in res.headers


@pytest.mark.parametrize(
    ("cid", "bills", "code", "status", "paid"),
    [
        (ACCEPTED, 2, 202, "accepted", 117600),
        (CHANGED, 1, 206, "changed", 73800),
        (REJECTED, 1, 409, "rejected", 0),
        (THIRTY, 30, 202, "accepted", 30 * 58800),
    ],
)
def test_each_test_customer_posts_as_documented_and_its_bills_come_back(
    client, sandbox_headers, pay, post_queued, run_sql, cid, bills, code, status, paid
):
    headers = sandbox_headers()
    shown = client.get(f"/tagihan/{cid}", headers=headers)
    assert shown.status_code == 200 and shown.headers["X-Sandbox"] == "true"
    assert len(shown.json["tagihan"]) == bills
    res = pay.response(headers, cid, pid=f"sb-{cid}")
    assert res.status_code == 202 and res.headers["X-Sandbox"] == "true", res.json
    nob = res.json["data"]["nob"]
    assert re.fullmatch(r"00[0-9]{2}(5[1-9]|6[0-2])[0-9]{6}", nob)  # the WIB month + 50
    post_queued()
    st = client.get(f"/status/{cid}", query_string={"nob": nob}, headers=headers)
    assert (st.status_code, st.json["status"], st.json["meta"]["jumlah_tagihan"]) == (code, status, paid)
    assert st.headers["X-Sandbox"] == "true"
    again = client.get(f"/tagihan/{cid}", headers=headers)  # the same test can run again
    assert again.status_code == 200 and again.json["tagihan"] == shown.json["tagihan"]
    assert run_sql("select count(*) from bill") == [(0,)]  # the ledger was never touched


def test_the_changed_customer_shows_the_late_fee_that_rose(client, sandbox_headers, pay, post_queued):
    headers = sandbox_headers()
    data = pay(headers, CHANGED, pid="changed")
    post_queued()
    st = client.get(f"/status/{CHANGED}", query_string={"nob": data["nob"]}, headers=headers).json
    assert (st["meta"]["jumlah_bayar"], st["meta"]["jumlah_tagihan"], st["meta"]["jumlah_masalah"]) == (
        68800,
        73800,
        -5000,
    )


def test_the_busy_ledger_customer_is_retried_soon_then_accepted(
    make_app, client, sandbox_headers, pay, post_queued, run_sql, monkeypatch
):
    import jobs
    from jobs import RetryOnType
    from pdam.infra import settings

    monkeypatch.setattr(jobs, "_runtime", None)
    jobs.configure(settings.load({}))  # the worker's start: its retry strategy reads its settings
    headers = sandbox_headers()
    data = pay(headers, BUSY, pid="busy")
    for attempt in (1, 2):
        with pytest.raises(errors.Retry) as raised:
            post_queued(attempt)
        assert raised.value.soon and "billing ledger is unreachable" in str(raised.value)
        decision = RetryOnType("POSTING_RETRY_SECONDS").get_retry_decision(exception=raised.value, job=None)
        assert decision.retry_at is not None  # in SANDBOX_RETRY_SECONDS (3 s), not POSTING's 30
        wait = (decision.retry_at - dt.datetime.now(dt.UTC)).total_seconds()
        assert 1 < wait <= 3.5
    post_queued(3)
    st = client.get(f"/status/{BUSY}", query_string={"nob": data["nob"]}, headers=headers)
    assert (st.status_code, st.json["status"]) == (202, "accepted")
    assert run_sql("select count(*) from payments_needing_attention") == [(0,)]


def test_no_bills_and_unknown_customers_are_404(client, sandbox_headers, seed_bills):
    headers = sandbox_headers()
    seed_bills.simple("010101010101", ["202001"])  # a live customer: unknown in the sandbox
    for cid, message in ((NO_BILLS, "no unpaid bills"), ("010101010101", "customer not found")):
        res = client.get(f"/tagihan/{cid}", headers=headers)
        assert res.json == {"error": 404, "message": message} and res.headers["X-Sandbox"] == "true"


def test_errors_and_replays_are_the_live_ones(client, sandbox_headers, pay):
    headers = sandbox_headers()
    first = pay.response(headers, ACCEPTED, pid="same")
    inq = first.json["data"]["inq"]
    again = pay.response(headers, ACCEPTED, pid="same", inq=inq, per=[202510, 202511], amo=117600)
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    other = pay.response(headers, ACCEPTED, pid="other", inq=inq, per=[202510, 202511], amo=117600)
    assert other.status_code == 409 and other.headers["X-Sandbox"] == "true"
    wrong = pay.response(headers, ACCEPTED, pid="wrong", inq=inq, per=[202510], amo=1)
    assert wrong.status_code == 410
    held = client.get(f"/tagihan/{ACCEPTED}", headers=headers)  # in progress: not shown
    assert held.json == {"error": 404, "message": "no unpaid bills"}
    bad = client.get("/status/12a", headers=headers)
    assert bad.status_code == 400 and bad.headers["X-Sandbox"] == "true"


def test_reversal_and_audit_work_as_live(client, sandbox_headers, pay, post_queued):
    headers = sandbox_headers()
    data = pay(headers, ACCEPTED, pid="rev")
    post_queued()
    res = client.delete(
        f"/tagihan/{ACCEPTED}", query_string={"pid": "rev", "pat": data["pat"]}, headers=headers
    )
    assert (res.status_code, res.json["status"], res.json["data"]["rev"]) == (200, "reversed", 1)
    assert res.headers["X-Sandbox"] == "true"
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date().isoformat()
    audit = client.get("/audit", query_string={"tgl": today}, headers=headers)
    assert audit.status_code == 200 and audit.headers["X-Sandbox"] == "true"
    assert [(r["nob"], r["periode"], r["rev"]) for r in audit.json["data"]] == [
        (data["nob"], "202510", 1),
        (data["nob"], "202511", 1),
    ]
    assert audit.json["data"][0]["rid"] == 1202510


def test_each_partners_sandbox_is_its_own(client, sandbox_headers, pay):
    a, b = sandbox_headers("00", "BANK1"), sandbox_headers("96", "BANK2")
    pay(a, ACCEPTED, pid="a-1")  # in progress: holds A's bills, not B's
    assert client.get(f"/tagihan/{ACCEPTED}", headers=a).status_code == 404
    data = pay(b, ACCEPTED, pid="a-1")  # the same pid and customer: B's own
    assert data["nob"].startswith("96") and data["pop"] == "96"


def test_sandbox_callbacks_say_so(make_app, sandbox_headers, pay, receiver, post_queued, run_sql):
    app = make_app(WEBHOOK_ALLOW_PRIVATE_NETWORKS=True)
    headers = sandbox_headers()
    pay(headers, ACCEPTED, pid="cb", x_async=receiver.url(), x_async_token="Bearer cb", app=app)
    post_queued()
    assert deliver_pending(app, run_sql) == ["delivered", "delivered"]
    assert [c["json"]["status"] for c in receiver.calls] == ["created", "accepted"]
    assert all(c["headers"]["X-Sandbox"] == "true" for c in receiver.calls)


def test_reset_empties_the_callers_sandbox_only(client, app, sandbox_headers, pay, post_queued, run_sql):
    a, b = sandbox_headers("00", "BANK1"), sandbox_headers("96", "BANK2")
    mine = pay(a, ACCEPTED, pid="r-1", x_async="http://127.0.0.1:9/hook")
    pay(b, ACCEPTED, pid="r-1")
    post_queued()
    res = client.post("/sandbox/reset", headers=a)
    assert (res.status_code, res.data, res.headers["X-Sandbox"]) == (204, b"", "true")
    assert run_sql("select partner_code from payment") == [("96",)]
    assert run_sql("select count(*) from inquiry where partner_code = '00'") == [(0,)]
    assert run_sql("select count(*) from webhook_delivery") == [(0,)]
    st = client.get(f"/status/{ACCEPTED}", query_string={"nob": mine["nob"]}, headers=a)
    assert st.status_code == 404


def test_reset_with_a_live_token_is_404(client, partner_headers, sandbox_headers, pay):
    data = pay(sandbox_headers(), ACCEPTED, pid="keep")
    res = client.post("/sandbox/reset", headers=partner_headers)
    assert res.json == {"error": 404, "message": "Not Found"} and "X-Sandbox" not in res.headers
    assert client.get("/nothing", headers=partner_headers).json == res.json  # as an unknown route
    assert data["nob"]


def test_the_maintenance_task_purges_old_sandbox_rows_only(
    app, sandbox_headers, partner_headers, seed_bills, pay, run_sql
):
    import jobs
    from jobs import maintenance
    from tests.factories import run_job

    pay(sandbox_headers(), ACCEPTED, pid="old")
    pay(sandbox_headers(), THIRTY, pid="new")
    seed_bills.simple("010101010101", ["202001"])
    pay(partner_headers, "010101010101", pid="live-old")
    run_sql("update payment set accepted_at = accepted_at - interval '31 days' where pid like '%old'")
    run_sql("update inquiry set created_at = created_at - interval '31 days'")
    assert app.config["SANDBOX_RETENTION_DAYS"] == 30
    assert run_job(app, maintenance.purge_old_sandbox) == 1  # the task the job server runs every hour
    assert sorted(run_sql("select pid from payment")) == [("live-old",), ("new",)]
    assert any(task.name == "maintenance.purge_sandbox" for task, *_ in _periodic(jobs.app))
    with app.app_context(), runtime.transaction() as conn:  # nothing older left
        assert sandbox.purge(conn, dt.datetime.now(dt.UTC), 30) == 0


def _periodic(app):
    return [(p.task,) for p in app.periodic_registry.periodic_tasks.values()]


def test_the_documents_list_the_test_customers_as_the_database_has_them(app, run_sql):
    import pdam

    doc = pdam.openapi_document()
    (tag,) = [t for t in doc["tags"] if t["name"] == "sandbox"]
    for customer in sandbox.CUSTOMERS:
        assert f"| `{customer.cid}` | {customer.bills} |" in tag["description"]
        (count,) = run_sql(
            "select jsonb_array_length(unpaid) from sandbox_customer_bills_v1(%s)", (customer.cid,)
        )[0]
        assert count == customer.bills, customer
    assert run_sql("select count(*) from sandbox_customer_bills_v1('990000000007')") == [(0,)]
    assert {"/sandbox/reset", "/callbacks", "/callbacks/{event_id}/resend"} <= set(doc["paths"])
    links = doc["paths"]["/tagihan/{cid}"]["post"]["responses"]["202"]["links"]
    assert links["callbacks"]["operationRef"] == "#/paths/~1callbacks/get"


def test_concurrent_sandbox_payments_of_one_bill_make_one_payment(app, sandbox_headers, run_sql):
    """Two inquiries of the same test bill, paid at once: the database (one live payment per
    customer, period and sandbox) lets one through, the other is 409, as live."""
    from tests.factories import race

    headers = sandbox_headers()
    client = app.test_client()
    shown = [client.get(f"/tagihan/{CHANGED}", headers=headers) for _ in range(2)]
    bodies = [
        {"inq": s.headers["X-Cross-Site"], "pid": f"race-{n}", "amo": 68800, "mer": "1", "per": [202511]}
        for n, s in enumerate(shown)
    ]
    results = race(
        [lambda b=b: app.test_client().post(f"/tagihan/{CHANGED}", json=b, headers=headers) for b in bodies]
    )
    assert sorted(r.status_code for r in results) == [202, 409]
    assert run_sql("select count(*) from payment where sandbox") == [(1,)]
