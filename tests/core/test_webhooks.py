"""Webhook deliveries (pdam/core/webhooks.py): what the domain records; delivery itself is
tests/jobs/test_webhooks.py's."""

from __future__ import annotations

from pdam.core import webhooks
from pdam.web import runtime
from tests.factories import deliver_pending


def test_give_up_marks_a_pending_delivery_failed(partner_headers, example_bill, pay, receiver, app, run_sql):
    """For a delivery job abandoned outside ``deliver`` (stalled-job recovery)."""
    pay(partner_headers, x_async=receiver.url())
    delivery_id = run_sql("select id from webhook_delivery")[0][0]
    with app.app_context(), runtime.transaction() as conn:
        assert webhooks.give_up(conn, delivery_id, "worker died during delivery too often", runtime.now())
    with app.app_context(), runtime.transaction() as conn:
        assert not webhooks.give_up(conn, delivery_id, "again", runtime.now())  # only a pending one
    ((status, error),) = run_sql("select status, last_error from webhook_delivery")
    assert status == "failed" and error.startswith("worker died during delivery too often")
    assert deliver_pending(app, run_sql) == [] and receiver.calls == []
