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

import sqlalchemy as sa

from . import db, errors, webhooks
from .payment import PAYMENT_COLUMNS, WIB

log = logging.getLogger(__name__)

STATUS = "reversed"
CODE = 200
MESSAGE = "payment reversed"
#: The window closes at this WIB time of the day after the payment day (H+1).
WINDOW_CLOSES = dt.time(12, 0)

LOCK = sa.text(
    f"select {PAYMENT_COLUMNS} from payment"
    " where partner_code = :partner and customer_id = :cid and pid = :pid and pat = :pat"
    " for update"
)
FREE_BILLS = sa.text(
    "update bill set paid_by = null, paid_at = null where paid_by = :nob returning period"
)
MARK_REVERSED = sa.text(
    "update payment set reversed_at = :now"
    " where id = :id and reversed_at is null and status in ('accepted', 'changed')"
    f" returning {PAYMENT_COLUMNS}"
)
RELEASE_PERIODS = sa.text("update payment_period set live = false where payment_id = :id and live")


def deadline(accepted_at: dt.datetime) -> dt.datetime:
    """12:00 WIB of the day after the WIB day the payment was accepted."""
    day = accepted_at.astimezone(WIB).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, WINDOW_CLOSES, tzinfo=WIB)


def reverse(
    conn: sa.Connection,
    ledger: sa.Connection,
    partner_code: str,
    cid: str,
    pid: str,
    pat: str,
    now: dt.datetime,
) -> dict:
    """Reverse the payment ``pid``/``pat`` of this partner and customer; return its row.

    404 unknown (or another partner's), 409 in progress or rejected, 403 past
    the window. An already reversed payment is returned as it is (idempotent),
    also after the window: it is the same answer to the same request.
    """
    row = conn.execute(
        LOCK, {"partner": partner_code, "cid": cid, "pid": pid, "pat": pat}
    ).one_or_none()
    if row is None:
        raise errors.NotFound("payment not found")
    if row.reversed_at is not None:
        return row._asdict()
    if row.status == "created":
        raise errors.Conflict("the payment is still in progress; it can be reversed once posted")
    if row.status == "rejected":
        raise errors.Conflict("the payment was rejected (paid before); there is nothing to reverse")
    until = deadline(row.accepted_at)
    if now >= until:
        raise errors.Forbidden(
            f"reversal of payment {row.nob} was allowed until {until:%Y-%m-%d %H:%M} WIB"
        )
    freed = ledger.execute(FREE_BILLS, {"nob": row.nob}).all()
    if len(freed) != len(row.paid_periods or []):
        # A retry after the ledger committed and we did not (separate ledger): nothing left.
        log.warning(
            "reversal of %s freed %d bills, it paid %d", row.nob, len(freed), len(row.paid_periods or [])
        )
    reversed_row = conn.execute(MARK_REVERSED, {"id": row.id, "now": now}).one_or_none()
    if reversed_row is None:  # impossible under the row lock; never report a wrong outcome
        raise errors.PdamError(f"payment {row.nob} changed under its lock")
    conn.execute(RELEASE_PERIODS, {"id": row.id})
    webhooks.enqueue(conn, row.id, STATUS, now)  # the `reversed` callback; none without X-Async
    return reversed_row._asdict()


def reverse_and_commit(partner_code: str, cid: str, pid: str, pat: str, now: dt.datetime) -> dict:
    """``reverse`` in the request's transaction(s): the ledger commits first, then ours."""
    with db.transaction() as conn, db.ledger_transaction() as ledger:
        return reverse(conn, ledger, partner_code, cid, pid, pat, now)
