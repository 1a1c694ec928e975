"""Reconciliation: one row per bill a partner's payments paid on a WIB day.

The rows come from the ``reconciliation`` view (sql/004_operator_views.sql),
so the report partners download and the one operators query are the same.
Amounts are the ones recorded at posting (``payment_period``), so the report
does not need the billing ledger, which may be another database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import sqlalchemy as sa

from ..infra import port
from ..infra.port import Plan
from ..infra.sql import queries
from .payments import WIB
from .records import ReconciliationLine

Q = queries("reconciliation")
#: Rows fetched per round trip when streaming (server-side cursor).
STREAM_BATCH = 1000


def default_day(now: dt.datetime) -> dt.date:
    """Yesterday, WIB."""
    return now.astimezone(WIB).date() - dt.timedelta(days=1)


def _name(sandbox: bool, name: str) -> str:
    """The sandbox reads its own view (``sandbox_reconciliation``), never the live one."""
    return f"sandbox_{name}" if sandbox else name


def _params(partner_code: str, day: dt.date, page: int, limit: int) -> dict:
    """``limit`` 0 means every row (SQL ``limit null``); pages start at 1."""
    return {"partner": partner_code, "day": day, "limit": limit or None, "offset": (page - 1) * limit}


@port.plan
def count(db: port.Db, partner_code: str, day: dt.date, sandbox: bool = False) -> Plan[int]:
    return (yield port.scalar(Q[_name(sandbox, "count")], {"partner": partner_code, "day": day}))


@port.plan
def rows(
    db: port.Db, partner_code: str, day: dt.date, page: int, limit: int, sandbox: bool = False
) -> Plan[list[ReconciliationLine]]:
    """One page of the partner's lines of ``day`` (every line when ``limit`` is 0; the
    sandbox's lines with ``sandbox``)."""
    found = yield port.fetch(Q[_name(sandbox, "rows")], _params(partner_code, day, page, limit))
    return [ReconciliationLine.from_row(row) for row in found]


@port.plan
def lines(
    db: port.Db,
    partner_code: str,
    day: dt.date,
    page: int,
    limit: int,
    batch: int | None = None,
    sandbox: bool = False,
) -> Plan[Iterator[ReconciliationLine]]:
    """The same lines as ``rows``, read ``batch`` at a time from a server-side cursor while
    the caller iterates (on the plan's connection, which it holds meanwhile)."""
    params = _params(partner_code, day, page, limit)
    query = Q[_name(sandbox, "rows")]
    return (yield port.stream(query, params, ReconciliationLine.from_row, batch or STREAM_BATCH))


def stream(
    engine: sa.Engine,
    partner_code: str,
    day: dt.date,
    page: int,
    limit: int,
    batch: int | None = None,
    sandbox: bool = False,
) -> Iterator[ReconciliationLine]:
    """``lines`` on a connection of their own (held only while the consumer iterates;
    closing the generator returns it), so a large report never sits in memory at once."""
    with engine.connect() as conn:
        yield from lines(conn, partner_code, day, page, limit, batch, sandbox)
