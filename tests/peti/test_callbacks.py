"""PeTi's callbacks (pdam/peti/callbacks.py): enqueued with the state change, and signed so
that the demo receiver (scripts/webhook_receiver.py) accepts exactly what the service signs."""

from __future__ import annotations

import importlib.util
import time

import psycopg

from pdam.core import payments, webhooks
from pdam.peti import callbacks
from pdam.web import runtime
from tests.factories import CID, ROOT

spec = importlib.util.spec_from_file_location("webhook_receiver", ROOT / "scripts" / "webhook_receiver.py")
demo_receiver = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo_receiver)


def test_receiver_verifies_the_service_signature():
    body, now = b'{"status":"accepted","code":202}', int(time.time())
    header = callbacks.signature("s3cret", now, body)  # the X-Signature value the service sends
    assert demo_receiver.verify("s3cret", header, body)
    assert not demo_receiver.verify("other", header, body)
    assert not demo_receiver.verify("s3cret", header, body + b" ")
    assert not demo_receiver.verify("s3cret", header, body, now=now + 301)  # a replay, too old
    assert not demo_receiver.verify("s3cret", "garbage", body)


def test_enqueue_is_part_of_the_callers_transaction(
    partner_headers, example_bill, pay, receiver, app, run_sql, database_url
):
    """The callback is stored, and its lane announced to the dispatchers, only when the
    caller's transaction commits (sql/022_callback_dispatcher.sql)."""
    nob = pay(partner_headers, x_async=receiver.url())["nob"]
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("listen pdam_callbacks")
        with app.app_context():
            conn = runtime.connection()
            row = payments.find(conn, "00", CID, nob=nob)
            assert webhooks.record(conn, row, "accepted", runtime.now()) is not None
            conn.rollback()  # the state change did not happen: neither did its callback
            assert list(listener.notifies(timeout=0.5)) == []
            assert run_sql("select event from webhook_delivery") == [("created",)]
            webhooks.record(conn, row, "accepted", runtime.now())
            assert list(listener.notifies(timeout=0.3)) == []  # not before the commit
            conn.commit()
        heard = [(n.channel, n.payload) for n in listener.notifies(timeout=2, stop_after=1)]
    assert heard == [("pdam_callbacks", webhooks.lane_of(row.id, receiver.url()))]
    assert run_sql("select event from webhook_delivery order by id") == [("created",), ("accepted",)]
