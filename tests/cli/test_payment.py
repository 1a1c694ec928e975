"""``payment`` and ``webhook`` commands (pdam/cli/payment.py): requeue a payment, resend a
callback."""

from __future__ import annotations

from pdam.core import webhooks
from tests.factories import deliver_pending


def test_cli_requeue_of_a_reversed_payment_is_refused(
    app, partner_headers, pay, post_queued, seed_bills, run_sql
):
    seed_bills.simple("0101000001", ["202001"])
    data = pay(partner_headers, "0101000001", [202001], "p1")
    post_queued()
    app.test_client().delete(
        "/tagihan/0101000001", query_string={"pid": "p1", "pat": data["pat"]}, headers=partner_headers
    )
    res = app.test_cli_runner().invoke(args=["payment", "requeue", data["nob"]])
    assert res.exit_code == 1 and "already final (accepted)" in res.output
    assert run_sql("select paid_by from bill") == [(None,)]


def test_webhook_resend(partner_headers, example_bill, pay, receiver, post_queued, app, run_sql):
    nob = pay(partner_headers, x_async=receiver.url())["nob"]
    post_queued()
    assert deliver_pending(app, run_sql) == ["delivered", "delivered"]
    last_id, event_id = run_sql("select id, event_id::text from webhook_delivery order by id desc limit 1")[0]

    out = app.test_cli_runner().invoke(args=["webhook", "resend", nob])
    assert out.exit_code == 0, out.output
    assert "a new delivery of the same event" in out.output
    assert f"delivery {last_id}" in out.output and event_id in out.output
    new = run_sql(
        "select id, event, event_id::text, resend_of, status from webhook_delivery order by id desc limit 1"
    )
    assert new[0][1:] == ("accepted", event_id, last_id, "pending")
    pay_id = run_sql("select id from payment")[0][0]
    lane = webhooks.lane_of(pay_id, run_sql("select callback_url from payment")[0][0])
    assert run_sql("select lane from webhook_delivery where id = %s", (new[0][0],)) == [(lane,)]

    assert deliver_pending(app, run_sql) == ["delivered"]
    original, again = receiver.calls[1], receiver.calls[2]
    assert again["raw"] == original["raw"]
    assert again["headers"]["X-Event-Id"] == original["headers"]["X-Event-Id"] == event_id


def test_webhook_resend_fails_clearly(partner_headers, example_bill, pay, app):
    data = pay(partner_headers)  # no X-Async
    cli = app.test_cli_runner()
    unknown = cli.invoke(args=["webhook", "resend", "000000000000"])
    assert unknown.exit_code == 1 and "no payment with nob 000000000000" in unknown.output
    without = cli.invoke(args=["webhook", "resend", data["nob"]])
    assert without.exit_code == 1 and "has no X-Async callback URL" in without.output
