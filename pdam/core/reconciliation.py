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
) -> Plan[list[dict]]:
    """One page of the partner's rows of ``day`` (every row when ``limit`` is 0): the
    report's lines (the columns of ``reconciliation_v1``), as dicts."""
    return [
        row._asdict()
        for row in (yield port.fetch(Q[_name(sandbox, "rows")], _params(partner_code, day, page, limit)))
    ]


def stream(
    engine: sa.Engine,
    partner_code: str,
    day: dt.date,
    page: int,
    limit: int,
    batch: int | None = None,
    sandbox: bool = False,
) -> Iterator[dict]:
    """The same rows as ``rows``, fetched ``batch`` at a time from a server-side cursor on a
    connection of their own (held only while the consumer iterates; closing the generator
    returns it), so a large report never sits in memory at once."""
    with engine.connect() as conn:
        params = _params(partner_code, day, page, limit)
        with conn.execution_options(stream_results=True).execute(Q[_name(sandbox, "rows")], params) as result:
            for chunk in result.partitions(batch or STREAM_BATCH):
                for row in chunk:
                    yield row._asdict()
