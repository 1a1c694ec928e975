"""The sandbox kept apart by the schema (sql/015_sandbox.sql), not only by the code: a nob's
form is tied to its side, the ledger takes live nobs only, the live operator views and the
metrics leave sandbox payments out (the sandbox's /audit reads a view of its own)."""

from __future__ import annotations

import psycopg
import pytest

from tests.factories import issue
from tests.web.test_metrics import TOKEN, scrape, value

CHANGED, REJECTED = "990000000002", "990000000003"


@pytest.fixture
def sandbox_day(app, keys, partner_headers, pay, post_queued, seed_bills):
    """Partner 00: a live accepted payment; in its sandbox a changed and a rejected one."""
    sandbox = {"Authorization": f"Bearer {issue(app, keys['ES256']['private'], '00', sandbox=True)}"}
    seed_bills.simple("010101010101", ["202001"])
    live = pay(partner_headers, "010101010101", pid="live")
    made = [
        pay(sandbox, cid, pid=f"sb-{cid}", x_async="http://127.0.0.1:9/cb") for cid in (CHANGED, REJECTED)
    ]
    post_queued()
    return live, made


def test_a_nobs_form_is_tied_to_its_side(run_sql, sandbox_day):
    live, (changed, _) = sandbox_day
    for nob, sandbox in ((live["nob"], True), (changed["nob"], False)):
        with pytest.raises(psycopg.errors.CheckViolation, match="payment_nob_side"):
            run_sql("update payment set sandbox = %s where nob = %s", (sandbox, nob))
    # Month + 50: the sandbox's nob of today can never be a live nob of any day.
    assert int(changed["nob"][4:6]) == int(live["nob"][4:6]) + 50


def test_the_ledger_takes_live_nobs_only(run_sql, sandbox_day):
    _, (changed, _) = sandbox_day
    with pytest.raises(psycopg.errors.CheckViolation, match="bill_paid_by_live"):
        run_sql("update bill set paid_by = %s, paid_at = now()", (changed["nob"],))


def test_the_live_views_leave_the_sandbox_out(run_sql, sandbox_day):
    live, made = sandbox_day
    sandbox_nobs = {m["nob"] for m in made}
    for view in ("reconciliation", "payments_needing_attention"):
        nobs = {row[0] for row in run_sql(f"select nob from {view}")}  # noqa: S608 (fixed names)
        assert nobs.isdisjoint(sandbox_nobs), view
    assert {row[0] for row in run_sql("select nob from reconciliation")} == {live["nob"]}
    assert run_sql("select transaksi, accepted, changed, rejected from daily_recap") == [(1, 1, 0, 0)]
    # The sandbox's /audit view has the changed payment's row (a rejected one paid nothing).
    assert {row[0] for row in run_sql("select nob from sandbox_reconciliation")} == {made[0]["nob"]}


def test_the_metrics_leave_the_sandbox_out(make_app, sandbox_day, keys):
    app = make_app(METRICS_TOKEN=TOKEN)
    samples = scrape(app.test_client())
    counts = {
        s: value(samples, "pdam_payments", status=s) for s in ("created", "accepted", "changed", "rejected")
    }
    assert counts == {"created": 0, "accepted": 1, "changed": 0, "rejected": 0}
    assert value(samples, "pdam_payments_needing_attention", reason="changed") == 0
    assert value(samples, "pdam_payments_needing_attention", reason="rejected") == 0
    assert value(samples, "pdam_webhook_deliveries", status="pending") == 0  # 4 sandbox ones wait
    # Sandbox requests are not counted with the live ones.
    client = app.test_client()
    sandbox = {"Authorization": f"Bearer {issue(app, keys['ES256']['private'], '00', sandbox=True)}"}
    before = value(
        scrape(client), "pdam_http_requests_total", route="/tagihan/<cid>", method="GET", status="200"
    )
    assert client.get(f"/tagihan/{CHANGED}", headers=sandbox).status_code == 200
    after = value(
        scrape(client), "pdam_http_requests_total", route="/tagihan/<cid>", method="GET", status="200"
    )
    assert after == before
