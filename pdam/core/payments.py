"""Payment acceptance: validate against the inquiry, record, enqueue posting.

Everything happens on the caller's transaction: the payment, its periods and
its posting job commit together or not at all. The database has the last
word on duplicates (unique partner+pid, unique inq, one live payment per
bill period, unique nob); the checks here give the partner a precise answer.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ..infra import port, queue
from ..infra.port import Plan
from ..infra.sealing import Sealer
from ..infra.sql import queries
from . import errors, inquiry
from .records import Payment, Shown

WIB = ZoneInfo("Asia/Jakarta")
Q = queries("payments")


@dataclass(frozen=True)
class Callback:
    """Where and how to report this payment: a URL, a token for the receiver, the
    request's own authorization (sent when no token is given), and the protocol (the name
    an edge registered in ``events``) that renders and sends its events."""

    url: str | None = None
    token: str | None = None
    authorization: str | None = None
    protocol: str | None = None


@dataclass(frozen=True)
class PaymentRequest:
    """A partner's payment of bills it was shown by an inquiry.

    ``reference`` is the partner's own id of the payment (unique per partner): the
    same request sent again is answered with the first payment.
    """

    customer_id: str
    inquiry_token: str
    amount: int
    periods: tuple[str, ...]
    merchant: str
    reference: str
    callback: Callback = Callback()


@dataclass(frozen=True)
class Accepted:
    payment: Payment
    replayed: bool
    #: What the inquiry it paid showed, when asked for and still known.
    shown: Shown | None = None


def wib_day(when: dt.datetime) -> dt.date:
    return when.astimezone(WIB).date()


def _numbers_used_up(partner_code: str, day: dt.date) -> errors.Unavailable:
    return errors.Unavailable(
        f"receipt numbers of partner {partner_code} for {day:%Y-%m-%d} (WIB) are used up;"
        " no payment can be recorded until the next day"
    )


def new_pat() -> str:
    return secrets.token_hex(10).upper()


def same_request(payment: Payment, req: PaymentRequest) -> bool:
    """Whether ``payment`` was recorded for this very request (a retry)."""
    return (
        payment.customer_id == req.customer_id
        and payment.inquiry_token == req.inquiry_token
        and payment.amount == req.amount
        and sorted(payment.periods) == sorted(req.periods)
        and payment.merchant == req.merchant
    )


@port.plan
def accept(
    db: port.Db,
    partner_code: str,
    req: PaymentRequest,
    now: dt.datetime,
    sealer: Sealer | None = None,
    sandbox: bool = False,
) -> Plan[Accepted]:
    """Record ``req`` and enqueue its posting, or say precisely why not (contract order).
    A callback's token and the request's authorization are stored sealed by ``sealer``
    (required when the request has a callback). ``sandbox``: the partner's sandbox (its
    inquiries and payments only, a sandbox nob, its own bill periods)."""
    periods = sorted(req.periods)
    side = {"sandbox": sandbox, "scope": partner_code if sandbox else ""}
    check = yield port.one(
        Q["checks"],
        {
            **side,
            "partner": partner_code,
            "pid": req.reference,
            "inq": req.inquiry_token,
            "cid": req.customer_id,
            "periods": periods,
            "now": now,
        },
    )

    # 1. The partner's reference: an idempotent replay or a conflict, before any inquiry check.
    if check.existing_id is not None:
        existing = Payment.from_row(
            (yield port.one(Q["by_pid"], {"partner": partner_code, "sandbox": sandbox, "pid": req.reference}))
        )
        if same_request(existing, req):
            return Accepted(existing, replayed=True)
        raise errors.ReferenceReused(f"pid {req.reference} was already used for another payment")

    # 2. The inquiry: known, alive and this partner's.
    if check.inq_customer is None:
        raise errors.InquiryNotFound("inquiry token unknown or expired")

    # 3. The payment must match what the inquiry showed.
    if check.inq_customer != req.customer_id:
        raise errors.Mismatch("the inquiry was made for another customer")
    shown = {bill["period"]: bill["total"] for bill in check.inq_snapshot["bills"]}
    unknown = [p for p in req.periods if p not in shown]
    if unknown:
        raise errors.Mismatch(f"periods not in the inquiry: {', '.join(unknown)}")
    expected = sum(shown[p] for p in req.periods)
    if req.amount != expected:
        raise errors.Mismatch(f"amo does not match the bills of the inquiry (expected {expected})")

    # 4. Other duplicates: the inquiry already paid, or a period already being paid.
    if check.inq_nob:
        raise errors.AlreadyPaid("this inquiry already has a payment")
    if check.taken:
        raise errors.AlreadyPaid(f"periods already paid or being paid: {', '.join(check.taken)}")

    # 5. Record with its receipt number and periods, and enqueue: one transaction.
    day = wib_day(now)
    callback = req.callback
    token = authorization = None
    if callback.url and (callback.token or callback.authorization):
        if sealer is None:
            raise ValueError("a payment with a callback needs a sealer for its credentials")
        token, authorization = (
            sealer.seal_optional(callback.token),
            sealer.seal_optional(callback.authorization),
        )
    recorded = yield port.one(
        Q["record"],
        {
            **side,
            "partner": partner_code,
            "day": day,
            "pid": req.reference,
            "cid": req.customer_id,
            "inq": req.inquiry_token,
            "amount": req.amount,
            "periods": periods,
            "merchant": req.merchant,
            "pat": new_pat(),
            "now": now,
            "callback_url": callback.url,
            "callback_protocol": callback.protocol if callback.url else None,
            "callback_token": token,
            "authorization": authorization,
        },
    )
    if recorded is None:
        raise _numbers_used_up(partner_code, day)
    payment = Payment.from_row(recorded)
    yield port.defer(
        queue.POST_PAYMENT, queue=queue.POSTING_QUEUE, payment_id=payment.id, callback=bool(callback.url)
    )
    return Accepted(payment, replayed=False)


@port.plan
def accept_inquiry(
    db: port.Db,
    partner_code: str,
    customer_id: str,
    reference: str,
    amount: int,
    merchant: str,
    now: dt.datetime,
    ledger: Callable[[], object] | None = None,
    sandbox: bool = False,
) -> Plan[Accepted]:
    """Pay every bill of the partner's live inquiry bound to ``reference``, recorded with
    ``reference`` as the payment's own (one transaction with its posting job, as ``accept``).

    The same reference again for the same customer and amount is the first payment
    (``replayed``), also after the inquiry expired; with another customer or amount it
    is ReferenceReused. No live inquiry with that reference: InquiryNotFound, or, given
    ``ledger`` (what gives the billing ledger's connection, asked only then),
    UnknownCustomer when the customer does not exist at all. The answer carries what the
    inquiry showed (``shown``).
    """
    existing = yield port.one(
        Q["by_pid_shown"], {"partner": partner_code, "sandbox": sandbox, "pid": reference}
    )
    if existing is not None:
        payment = Payment.from_row(existing)
        if payment.customer_id == customer_id and payment.amount == amount:
            return Accepted(payment, replayed=True, shown=Shown.from_snapshot(existing.shown))
        raise errors.ReferenceReused(f"reference {reference} was already used for another payment")
    bound = yield from inquiry.by_reference.plan(db, partner_code, reference, sandbox)
    if bound is None or bound.expires_at <= now:
        if sandbox or ledger is not None:  # the sandbox's test customers live with us
            where = None if sandbox or ledger is None else ledger()
            if not (yield from inquiry.knows_customer(where, customer_id, sandbox)):
                raise errors.UnknownCustomer("customer not found")
        raise errors.InquiryNotFound(f"no live inquiry with reference {reference}")
    if bound.customer_id != customer_id:
        raise errors.ReferenceReused(f"reference {reference} was used for an inquiry of another customer")
    req = PaymentRequest(
        customer_id=customer_id,
        inquiry_token=bound.token,
        amount=amount,
        periods=tuple(bill["period"] for bill in bound.snapshot["bills"]),
        merchant=merchant,
        reference=reference,
    )
    result = yield from accept.plan(db, partner_code, req, now, sandbox=sandbox)
    return Accepted(result.payment, result.replayed, shown=Shown.from_snapshot(bound.snapshot))


@port.plan
def find(
    db: port.Db,
    partner_code: str,
    cid: str,
    *,
    nob: str | None = None,
    reference: str | None = None,
    pat: str | None = None,
    inquiry_token: str | None = None,
    sandbox: bool = False,
) -> Plan[Payment]:
    """One payment of this partner and customer, by nob or reference (+pat or +inquiry
    token); else NotFound.

    Another partner's payment is indistinguishable from one that does not exist.
    """
    row = yield port.one(
        Q["find"],
        {
            "partner": partner_code,
            "sandbox": sandbox,
            "cid": cid,
            "nob": nob,
            "pid": reference,
            "pat": pat,
            "inq": inquiry_token,
        },
    )
    if row is None:
        raise errors.NotFound("payment not found")
    return Payment.from_row(row)


@port.plan
def find_shown(
    db: port.Db, partner_code: str, cid: str, reference: str, sandbox: bool = False
) -> Plan[tuple[Payment, Shown | None]]:
    """This partner's payment ``reference`` of this customer, and what its inquiry showed
    (None when that snapshot is gone); else NotFound, as ``find``."""
    params = {"partner": partner_code, "sandbox": sandbox, "cid": cid, "pid": reference}
    row = yield port.one(Q["find_shown"], params)
    if row is None:
        raise errors.NotFound("payment not found")
    return Payment.from_row(row), Shown.from_snapshot(row.shown)
