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

import sqlalchemy as sa

from ..infra import db, queue
from ..infra.sealing import Sealer
from ..infra.sql import queries
from . import errors, inquiry

WIB = ZoneInfo("Asia/Jakarta")
Q = queries("payments")


@dataclass(frozen=True)
class Callback:
    """Where and how to report this payment: a URL, a token for the receiver, and the
    request's own authorization (sent when no token is given)."""

    url: str | None = None
    token: str | None = None
    authorization: str | None = None


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
    payment: dict  # the payment's row
    replayed: bool
    #: What the inquiry it paid showed (``{"customer", "bills"}``), when asked for and still known.
    shown: dict | None = None


def wib_day(when: dt.datetime) -> dt.date:
    return when.astimezone(WIB).date()


def _numbers_used_up(partner_code: str, day: dt.date) -> errors.Unavailable:
    return errors.Unavailable(
        f"receipt numbers of partner {partner_code} for {day:%Y-%m-%d} (WIB) are used up;"
        " no payment can be recorded until the next day"
    )


def new_pat() -> str:
    return secrets.token_hex(10).upper()


def same_request(payment: sa.Row, req: PaymentRequest) -> bool:
    """Whether ``payment`` was recorded for this very request (a retry)."""
    return (
        payment.customer_id == req.customer_id
        and payment.inquiry_token == req.inquiry_token
        and payment.amount == req.amount
        and sorted(payment.periods) == sorted(req.periods)
        and payment.merchant == req.merchant
    )


def accept(
    conn: sa.Connection,
    partner_code: str,
    req: PaymentRequest,
    now: dt.datetime,
    sealer: Sealer | None = None,
) -> Accepted:
    """Record ``req`` and enqueue its posting, or say precisely why not (contract order).
    A callback's token and the request's authorization are stored sealed by ``sealer``
    (required when the request has a callback)."""
    periods = sorted(req.periods)
    (check,) = db.rows(
        conn,
        Q["checks"],
        {
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
        existing = conn.execute(Q["by_pid"], {"partner": partner_code, "pid": req.reference}).one()
        if same_request(existing, req):
            return Accepted(existing._asdict(), replayed=True)
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
    recorded = db.rows(
        conn,
        Q["record"],
        {
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
            "callback_token": token,
            "authorization": authorization,
        },
    )
    if not recorded:
        raise _numbers_used_up(partner_code, day)
    payment = recorded[0]._asdict()
    queue.defer(conn, queue.POST_PAYMENT, queue=queue.POSTING_QUEUE, payment_id=payment["id"])
    return Accepted(payment, replayed=False)


def accept_inquiry(
    conn: sa.Connection,
    partner_code: str,
    customer_id: str,
    reference: str,
    amount: int,
    merchant: str,
    now: dt.datetime,
    ledger: Callable[[], sa.Connection] | None = None,
) -> Accepted:
    """Pay every bill of the partner's live inquiry bound to ``reference``, recorded with
    ``reference`` as the payment's own (one transaction with its posting job, as ``accept``).

    The same reference again for the same customer and amount is the first payment
    (``replayed``), also after the inquiry expired; with another customer or amount it
    is ReferenceReused. No live inquiry with that reference: InquiryNotFound, or, given
    ``ledger`` (what gives the billing ledger's connection, asked only then),
    UnknownCustomer when the customer does not exist at all. The answer carries what the
    inquiry showed (``shown``).
    """
    existing = conn.execute(Q["by_pid_shown"], {"partner": partner_code, "pid": reference}).one_or_none()
    if existing is not None:
        payment = existing._asdict()
        shown = payment.pop("shown")
        if payment["customer_id"] == customer_id and payment["amount"] == amount:
            return Accepted(payment, replayed=True, shown=shown)
        raise errors.ReferenceReused(f"reference {reference} was already used for another payment")
    bound = inquiry.by_reference(conn, partner_code, reference)
    if bound is None or bound.expires_at <= now:
        if ledger is not None and not inquiry.customer_exists(ledger(), customer_id):
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
    result = accept(conn, partner_code, req, now)
    return Accepted(result.payment, result.replayed, shown=bound.snapshot)


def find(
    conn: sa.Connection,
    partner_code: str,
    cid: str,
    *,
    nob: str | None = None,
    reference: str | None = None,
    pat: str | None = None,
    inquiry_token: str | None = None,
) -> dict:
    """One payment of this partner and customer, by nob or reference (+pat or +inquiry
    token); else NotFound.

    Another partner's payment is indistinguishable from one that does not exist.
    """
    row = conn.execute(
        Q["find"],
        {"partner": partner_code, "cid": cid, "nob": nob, "pid": reference, "pat": pat, "inq": inquiry_token},
    ).one_or_none()
    if row is None:
        raise errors.NotFound("payment not found")
    return row._asdict()


def find_shown(conn: sa.Connection, partner_code: str, cid: str, reference: str) -> tuple[dict, dict | None]:
    """This partner's payment ``reference`` of this customer, and what its inquiry showed
    (``{"customer", "bills"}``; None when that snapshot is gone); else NotFound, as ``find``."""
    row = conn.execute(Q["find_shown"], {"partner": partner_code, "cid": cid, "pid": reference}).one_or_none()
    if row is None:
        raise errors.NotFound("payment not found")
    payment = row._asdict()
    return payment, payment.pop("shown")
