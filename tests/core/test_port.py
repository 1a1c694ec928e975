"""The core without HTTP, on its port (pdam/infra/port.py): the same functions run on a
SQLAlchemy connection and on an async psycopg connection, return records (no secret among
their fields), and render callbacks through the protocols the edges register
(pdam/core/events.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import json

import psycopg
import pytest
import sqlalchemy as sa

import pdam
from pdam.core import events, inquiry, partners, payments, posting, records, reversal, webhooks
from pdam.infra import port, settings
from pdam.infra.runtime import Runtime
from tests.factories import CID, SEALER, bill_line, import_bills

HOOK = "http://127.0.0.1:9/hook"
SECRETS = {"webhook_secret", "client_secret", "callback_token", "request_authorization"}
NOW = dt.datetime(2026, 1, 5, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def rt(app_config):
    pdam.load_edges()  # PeTi's callbacks, as the job server loads them at start
    runtime = Runtime({**settings.load(), **app_config})
    with runtime.database.engine.begin() as conn:
        partners.add(conn, "00", "BANK1", SEALER)
        import_bills(conn, bill_line(CID, "202001") + bill_line(CID, "202002"))
    yield runtime
    runtime.dispose()


def request_for(shown: inquiry.Inquiry, protocol: str | None = "peti") -> payments.PaymentRequest:
    return payments.PaymentRequest(
        customer_id=CID,
        inquiry_token=shown.token,
        amount=sum(bill.total for bill in shown.bills),
        periods=tuple(bill.period for bill in shown.bills),
        merchant="1",
        reference="pid-1",
        callback=payments.Callback(url=HOOK, token="Bearer t", protocol=protocol),
    )


def deliveries(rt) -> list[tuple]:
    with psycopg.connect(rt.database.url) as conn:
        return conn.execute("select event, body from webhook_delivery order by id").fetchall()


def test_records_hold_no_secret():
    for record in (records.Payment, records.Partner, records.PartnerListing):
        assert not SECRETS & {f.name for f in dataclasses.fields(record)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        records.Partner("00", "BANK1", True, NOW).name = "other"  # type: ignore[misc]


def test_the_core_on_a_sqlalchemy_connection(rt):
    with rt.database.engine.connect() as conn:
        shown = inquiry.inquire(conn, conn, "00", CID, NOW, 900)
        accepted = payments.accept(conn, "00", request_for(shown), NOW, SEALER)
        assert isinstance(accepted.payment, records.Payment) and not accepted.replayed
        assert webhooks.record(conn, accepted.payment, "created", NOW) is not None
        conn.commit()
        assert partners.get(conn, "00") == records.Partner(
            "00", "BANK1", True, partners.get(conn, "00").created_at
        )
        result = posting.settle(conn, conn, accepted.payment.id, NOW)
        conn.commit()
    assert result.status == "accepted" and result.payment.paid_total == accepted.payment.amount
    assert [event for event, _ in deliveries(rt)] == ["created", "accepted"]
    with rt.database.engine.connect() as conn:
        again = payments.find(conn, "00", CID, nob=accepted.payment.nob)
        assert again == result.payment  # the same record, read again
        undone = reversal.reverse(conn, conn, "00", CID, "pid-1", again.pat, NOW + dt.timedelta(hours=1))
        conn.commit()
    assert undone.payment.reversed_at is not None and not undone.replayed


def test_the_same_functions_on_an_async_psycopg_connection(rt):
    async def scenario():
        async with await psycopg.AsyncConnection.connect(rt.database.url) as conn:
            shown = await inquiry.inquire.aio(conn, conn, "00", CID, NOW, 900)  # a statement alone
            async with conn.transaction():  # recorded and queued in one transaction
                accepted = await payments.accept.aio(conn, "00", request_for(shown), NOW, SEALER)
                await webhooks.record.aio(conn, accepted.payment, "created", NOW)
            posted = await posting.settle.aio(conn, None, accepted.payment.id, NOW)
            await conn.commit()
            again = await posting.settle.aio(conn, None, accepted.payment.id, NOW)  # changes nothing
            await conn.commit()
            return accepted, posted, again

    accepted, posted, again = asyncio.run(scenario())
    assert isinstance(accepted.payment, records.Payment) and accepted.payment.callback_protocol == "peti"
    assert posted.status == "accepted" and isinstance(posted.payment, records.Payment)
    assert again.payment is None and again.status == "accepted"
    (created, created_body), (final, final_body) = deliveries(rt)
    assert (created, final) == ("created", "accepted")
    assert final_body == json.loads(json.dumps(events.protocol("peti").body(posted.payment, "accepted")))
    with psycopg.connect(rt.database.url) as conn:
        jobs = conn.execute("select task_name from procrastinate_jobs order by id").fetchall()
    assert jobs == [("posting.post_payment",)]  # the callbacks are no jobs: the dispatcher sends them


def test_a_plan_is_one_generator_for_both_drivers():
    """``@port.plan`` keeps the function written once (``.plan``) and picks the driver
    by the connection it is given."""
    assert posting.post.plan.__name__ == "post"
    assert isinstance(port.port(object()), port.SyncDb)


def test_an_unregistered_protocol_is_a_clear_error(rt, monkeypatch):
    with pytest.raises(events.UnknownProtocol, match="'carrier-pigeon'"):
        events.protocol("carrier-pigeon")
    with rt.database.engine.connect() as conn:
        shown = inquiry.inquire(conn, conn, "00", CID, NOW, 900)
        accepted = payments.accept(conn, "00", request_for(shown, protocol="carrier-pigeon"), NOW, SEALER)
        with pytest.raises(events.UnknownProtocol):
            webhooks.record(conn, accepted.payment, "created", NOW)
        conn.rollback()


def test_the_registered_protocol_renders_the_body(rt, monkeypatch):
    class Loud:
        def body(self, payment, event):
            return {"EVENT": event.upper(), "NOB": payment.nob}

    monkeypatch.setitem(events._registry, "loud", Loud())
    with rt.database.engine.connect() as conn:
        shown = inquiry.inquire(conn, conn, "00", CID, NOW, 900)
        accepted = payments.accept(conn, "00", request_for(shown, protocol="loud"), NOW, SEALER)
        webhooks.record(conn, accepted.payment, "created", NOW)
        conn.commit()
    assert deliveries(rt) == [("created", {"EVENT": "CREATED", "NOB": accepted.payment.nob})]


def test_bills_are_imported_with_copy_on_either_driver(rt):
    """``billing.import_rows`` (COPY into a staging table, then upserts) on the async driver
    too, with progress reported by chunk."""
    from pdam.core import billing
    from tests.factories import CSV_HEADER

    lines = "".join(bill_line(f"7{i:011d}", "202003") for i in range(5))
    rows = billing.parse_csv(io.StringIO(CSV_HEADER + lines))
    told = []

    async def scenario():
        async with await psycopg.AsyncConnection.connect(rt.database.url) as conn:
            async with conn.transaction():
                await billing.stage_rows.aio(conn, rows, progress=told.append)
                return await billing.apply_staged.aio(conn, len(rows))

    result = asyncio.run(scenario())
    assert (result.bills, result.inserted, sum(told)) == (5, 5, 5)
    with rt.database.engine.connect() as conn:
        again = billing.import_rows(conn, rows)
        conn.commit()
    assert (again.inserted, again.updated) == (0, 5)


# -- a failed step goes back into the plan, as the core's error; typed entry points ----------


@port.plan
def _guarded(db, statement: str):
    """A plan with a ``try`` around a ``yield``: it sees the failed step's error there."""
    try:
        yield port.one(sa.text(statement))
    except port.Transient as exc:
        return ("transient", type(exc.__cause__).__name__)
    except port.Permanent as exc:
        return ("permanent", type(exc.__cause__).__name__)
    return ("done", None)


def test_a_failed_step_is_thrown_into_the_plan_translated(rt):
    with rt.database.engine.connect() as conn:
        assert _guarded(conn, "select 1 / 0") == ("permanent", "DivisionByZero")
        conn.rollback()
        conn.exec_driver_sql("set local statement_timeout = 50")
        assert _guarded(conn, "select pg_sleep(1)") == ("transient", "QueryCanceled")
        conn.rollback()
        assert _guarded(conn, "select 1") == ("done", None)


def test_an_uncaught_failed_step_leaves_the_plan_as_the_cores_error(rt):
    from pdam.core import errors

    @port.plan
    def unguarded(db):
        statement = sa.text("insert into partner (code, name, webhook_secret) values ('00', 'X', :secret)")
        yield port.one(statement, {"secret": SEALER.seal("x")})

    with rt.database.engine.connect() as conn:
        with pytest.raises(errors.IntegrityViolation) as raised:
            unguarded(conn)
        assert isinstance(raised.value.__cause__, psycopg.errors.UniqueViolation)
        conn.rollback()


def test_the_async_entry_point_is_awaited_and_the_sync_one_refuses_an_async_connection(rt):
    async def scenario():
        async with await psycopg.AsyncConnection.connect(rt.database.url) as conn:
            with pytest.raises(TypeError, match=r"await _guarded\.aio"):
                _guarded(conn, "select 1")
            failed = await _guarded.aio(conn, "select 1 / 0")
            await conn.rollback()
            return failed, await _guarded.aio(conn, "select 1")

    assert asyncio.run(scenario()) == (("permanent", "DivisionByZero"), ("done", None))
