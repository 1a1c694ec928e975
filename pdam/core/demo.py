"""The demo partner's data made new again (``demo reset``): plans on the port; the caller commits.

Only for the demo partner of ``make run`` (code and name given by the caller, checked here):
its payments, their periods, callbacks, inquiries and SNAP answers are deleted and the bills they paid are
unpaid again, so the README's walk-through starts over. Refused while a payment is still
being posted or a callback is waiting: the job server would meet rows that are gone.
"""

from __future__ import annotations

from ..infra import port
from ..infra.port import Plan
from ..infra.sql import queries
from . import errors
from .partners import get as get_partner

Q = queries("demo")


@port.plan
def paid_receipts(db: port.Db, code: str, name: str) -> Plan[list[str]]:
    """The receipt numbers (nob) of the demo partner's payments; refused unless all are final."""
    partner = yield from get_partner.plan(db, code)
    if partner.name != name:
        raise errors.NotAllowed(f"partner {code} is {partner.name!r}, not the demo partner {name!r}")
    rows = yield port.fetch(Q["payments"], {"code": code})
    busy = [row.nob for row in rows if row.status == "created" or row.callback_pending]
    if busy:
        raise errors.Conflict(
            f"payments still being posted or called back: {', '.join(busy)}; try again shortly"
        )
    return [row.nob for row in rows]


@port.plan
def unpay_bills(db: port.Db, nobs: list[str]) -> Plan[int]:
    """Make the bills these receipts paid unpaid again (in the ledger); return how many."""
    if not nobs:
        return 0
    return (yield port.count(Q["unpay_bills"], {"nobs": nobs}))


@port.plan
def delete_payments(db: port.Db, code: str) -> Plan[int]:
    """Delete the partner's payments (periods, callbacks, attempts), inquiries and the SNAP
    answers kept for its X-EXTERNAL-IDs (they name those payments); return how many payments."""
    row = yield port.one(Q["delete_payments"], {"code": code})
    yield port.count(Q["delete_inquiries"], {"code": code})
    yield port.count(Q["delete_snap_answers"], {"code": code})
    return row.n
