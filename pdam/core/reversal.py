"""Reversal: undoing an applied payment within its window (contract section 8).

One guarded transition: under the payment's row lock, an ``accepted`` or
``changed`` payment that is not reversed yet gets ``reversed_at``, its bill
periods stop being live (so a new payment can take them), and the ledger's
bills paid by its nob become unpaid again (``... where paid_by = <nob>``).
The amounts it paid stay in ``payment_period`` so reconciliation shows the
rows with ``rev = 1``.

With a separate ledger database the caller commits the ledger first (as
posting does): a crash between the two commits leaves the payment not yet
reversed, and the retry's guarded ledger update simply finds nothing left to
free, so it completes the reversal without touching any other payment's bill.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from ..infra import port
from ..infra.port import Plan
from ..infra.sql import queries
from . import errors, states
from .payments import WIB
from .records import Payment

log = logging.getLogger(__name__)
Q = queries("reversal")
#: The window closes at this WIB time of the day after the payment day (H+1).
WINDOW_CLOSES = dt.time(12, 0)


@dataclass(frozen=True)
class Reversed:
    payment: Payment  # reversed
    replayed: bool  # reversed by an earlier request: the same answer again


def deadline(accepted_at: dt.datetime) -> dt.datetime:
    """12:00 WIB of the day after the WIB day the payment was accepted."""
    day = accepted_at.astimezone(WIB).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, WINDOW_CLOSES, tzinfo=WIB)


@port.plan
def reverse(
    db: port.Db,
    ledger,
    partner_code: str,
    cid: str,
    reference: str,
    pat: str,
    now: dt.datetime,
    sandbox: bool = False,
) -> Plan[Reversed]:
    """Reverse the payment ``reference``/``pat`` of this partner and customer.

    NotFound when unknown (or another partner's), Conflict while in progress or
    when rejected, NotAllowed past the window. An already reversed payment is
    answered as it is (idempotent), also after the window: it is the same answer
    to the same request.
    """
    params = {"partner": partner_code, "sandbox": sandbox, "cid": cid, "pid": reference, "pat": pat}
    row = yield port.one(Q["lock"], params)
    if row is None:
        raise errors.NotFound("payment not found")
    if row.reversed_at is not None:
        return Reversed(Payment.from_row(row), replayed=True)
    if row.status == states.CREATED:
        raise errors.Conflict("the payment is still in progress; it can be reversed once posted")
    if row.status == states.REJECTED:
        raise errors.Conflict("the payment was rejected (paid before); there is nothing to reverse")
    until = deadline(row.accepted_at)
    if now >= until:
        raise errors.NotAllowed(f"reversal of payment {row.nob} was allowed until {until:%Y-%m-%d %H:%M} WIB")
    # The sandbox never touches the ledger: its test customers' bills are back already.
    freed = [] if row.sandbox else (yield port.fetch(Q["free_bills"], {"nob": row.nob}, on=ledger))
    if not row.sandbox and len(freed) != len(row.paid_periods or []):
        # A retry after the ledger committed and we did not (separate ledger): nothing left.
        log.warning(
            "reversal of %s freed %d bills, it paid %d", row.nob, len(freed), len(row.paid_periods or [])
        )
    reversed_row = yield port.one(Q["mark_reversed"], {"id": row.id, "now": now})
    if reversed_row is None:  # impossible under the row lock; never report a wrong outcome
        raise errors.PdamError(f"payment {row.nob} changed under its lock")
    yield port.count(Q["release_periods"], {"id": row.id})
    return Reversed(Payment.from_row(reversed_row), replayed=False)
