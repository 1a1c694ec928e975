"""The sandbox (contract 14.1): sandbox credentials work on the same tables as live ones,
on rows marked ``sandbox`` (sql/015_sandbox.sql says what keeps the two apart); here is
what only the sandbox has: a partner's reset, and the purge of old sandbox rows.

The fixed test customers and what posting does with each are SQL functions
(``sandbox_customer_bills_v1``, ``sandbox_pay_bills_v1``), listed in ``CUSTOMERS`` for the
documents.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..infra import port
from ..infra.port import Plan
from ..infra.sql import queries

Q = queries("sandbox")


@dataclass(frozen=True)
class TestCustomer:
    cid: str
    bills: int
    outcome: str


#: The sandbox's test customers (contract 14.1), as sandbox_customer_bills_v1 and
#: sandbox_pay_bills_v1 define them: the same for every partner, each partner's payments
#: its own; their bills come back after each final payment.
CUSTOMERS = (
    TestCustomer("990000000001", 2, "`accepted` (202)"),
    TestCustomer("990000000002", 1, "`changed` (206): the late fee rose by 5,000 after the inquiry"),
    TestCustomer("990000000003", 1, "`rejected` (409): paid before by another channel"),
    TestCustomer(
        "990000000004",
        1,
        "the ledger is unreachable for the first two attempts (retried `SANDBOX_RETRY_SECONDS`, "
        "3 s, apart), then `accepted`",
    ),
    TestCustomer("990000000005", 0, "inquiry 404: no unpaid bills"),
    TestCustomer("990000000006", 30, "`accepted` (202); SNAP shows and pays the oldest 24, as live"),
)


def _delete(partner_code: str | None, before: dt.datetime | None) -> Plan[int]:
    params = {"partner": partner_code, "before": before}
    for name in ("delete_attempts", "delete_deliveries"):
        yield port.count(Q[name], params)
    payments = yield port.count(Q["delete_payments"], params)
    yield port.count(Q["delete_inquiries"], params)
    yield port.count(Q["delete_external_ids"], params)
    return payments


@port.plan
def reset(db: port.Db, partner_code: str) -> Plan[int]:
    """Delete the partner's sandbox inquiries, payments and callbacks, and the answers kept for
    its sandbox SNAP client's X-EXTERNAL-IDs (in the caller's transaction); return the number
    of payments deleted. Live rows are never touched: every
    statement is restricted to ``sandbox`` rows."""
    return (yield from _delete(partner_code, None))


@port.plan
def purge(db: port.Db, now: dt.datetime, days: int) -> Plan[int]:
    """Delete every partner's sandbox rows older than ``days`` days (SANDBOX_RETENTION_DAYS);
    return the number of payments deleted."""
    return (yield from _delete(None, now - dt.timedelta(days=days)))
