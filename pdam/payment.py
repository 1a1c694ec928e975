"""Payment acceptance: validate against the inquiry, record, enqueue posting.

Everything happens on the caller's transaction: the payment, its periods and
its posting job commit together or not at all. The database has the last
word on duplicates (unique partner+pid, unique inq, one live payment per
bill period, unique nob); the checks here give the partner a precise answer.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from . import errors, queue

WIB = ZoneInfo("Asia/Jakarta")
POST_TASK = "posting.post_payment"

PAYMENT_COLUMNS = (
    "id, partner_code, pid, customer_id, inquiry_token, amount, periods, merchant, pat, nob,"
    " accepted_at, status, posted_at, paid_total, paid_periods, problem_periods, reversed_at,"
    " stuck_at, stuck_reason, callback_url, callback_token, request_authorization,"
    " (floor(extract(epoch from accepted_at) * 1000))::bigint as pts"
)

BY_PID = sa.text(f"select {PAYMENT_COLUMNS} from payment where partner_code = :partner and pid = :pid")

# Everything the checks need, in one round trip: a payment already made with this
# pid, the live inquiry of this partner, whether the inquiry is already paid and
# which of the periods are already paid or being paid.
CHECKS = sa.text(
    "select (select id from payment where partner_code = :partner and pid = :pid) as existing_id,"
    " i.customer_id as inq_customer, i.snapshot as inq_snapshot,"
    " (select nob from payment where inquiry_token = :inq) as inq_nob,"
    " array(select period from payment_period where customer_id = :cid"
    "       and period = any(:periods) and live order by period) as taken"
    " from (values (1)) as one left join inquiry i"
    "   on i.token = :inq and i.partner_code = :partner and i.expires_at > :now"
)

# The next receipt number of a partner's WIB day. The counter row stays locked until
# the transaction ends, so numbers are never shared (a rollback leaves a gap, never a
# duplicate); no row when the day's 9,999 numbers are used up.
NOB = (
    "nob as (insert into nob_counter (partner_code, day, last_value) values (:partner, :day, 1)"
    " on conflict (partner_code, day) do update set last_value = nob_counter.last_value + 1"
    "   where nob_counter.last_value < 9999"
    " returning cast(:partner as text) || to_char(day, 'YYMMDD') || lpad(last_value::text, 4, '0') as nob)"
)
ALLOCATE_NOB = sa.text(f"with {NOB} select nob from nob")

# The payment, its receipt number and its periods in one statement. The counter row
# is locked last, so it is held only for the job insert and the commit that follow.
RECORD = sa.text(
    f"with {NOB},"
    " p as (insert into payment (partner_code, pid, customer_id, inquiry_token, amount, periods,"
    "   merchant, pat, nob, accepted_at, callback_url, callback_token, request_authorization)"
    "   select :partner, :pid, :cid, :inq, :amo, :periods, :mer, :pat, nob.nob, :now,"
    "   :callback_url, :callback_token, :auth from nob"
    f"   returning {PAYMENT_COLUMNS}),"
    " pp as (insert into payment_period (payment_id, customer_id, period)"
    "   select p.id, :cid, unnest(cast(:periods as text[])) from p)"
    " select * from p"
)


@dataclass(frozen=True)
class Callback:
    """Where and how to report this payment (X-Async, X-Async-Token, Authorization)."""

    url: str | None = None
    token: str | None = None
    authorization: str | None = None


@dataclass(frozen=True)
class Accepted:
    payment: dict
    replayed: bool


def _wib_day(when: dt.datetime) -> dt.date:
    return when.astimezone(WIB).date()


def _numbers_used_up(partner_code: str, day: dt.date) -> errors.ServiceUnavailable:
    return errors.ServiceUnavailable(
        f"receipt numbers of partner {partner_code} for {day:%Y-%m-%d} (WIB) are used up;"
        " no payment can be recorded until the next day"
    )


def allocate_nob(conn: sa.Connection, partner_code: str, when: dt.datetime) -> str:
    """The next receipt number on its own: partner code + WIB ``YYMMDD`` + the
    partner's daily sequence, from the same ``NOB`` statement ``accept`` records with."""
    day = _wib_day(when)
    nob = conn.execute(ALLOCATE_NOB, {"partner": partner_code, "day": day}).scalar()
    if nob is None:
        raise _numbers_used_up(partner_code, day)
    return nob


def new_pat() -> str:
    return secrets.token_hex(10).upper()


def _same_request(payment, cid: str, req: dict) -> bool:
    return (
        payment.customer_id == cid
        and payment.inquiry_token == req["inq"]
        and payment.amount == req["amo"]
        and sorted(payment.periods) == sorted(req["per"])
        and payment.merchant == req["mer"]
    )


def accept(
    conn: sa.Connection,
    partner_code: str,
    cid: str,
    req: dict,
    callback: Callback,
    now: dt.datetime,
) -> Accepted:
    """Record a payment for ``req`` (a loaded PaymentRequest) and enqueue its posting."""
    periods = sorted(req["per"])
    check = conn.execute(
        CHECKS,
        {"partner": partner_code, "pid": req["pid"], "inq": req["inq"], "cid": cid, "periods": periods,
         "now": now},
    ).one()

    # 1. The partner's pid: an idempotent replay or a conflict, before any inq check.
    if check.existing_id is not None:
        existing = conn.execute(BY_PID, {"partner": partner_code, "pid": req["pid"]}).one()
        if _same_request(existing, cid, req):
            return Accepted(existing._asdict(), replayed=True)
        raise errors.Conflict(f"pid {req['pid']} was already used for another payment")

    # 2. The inquiry: known, alive and this partner's.
    if check.inq_customer is None:
        raise errors.NotFound("inquiry token unknown or expired")

    # 3. The payment must match what the inquiry showed.
    if check.inq_customer != cid:
        raise errors.Gone("the inquiry was made for another customer")
    shown = {bill["period"]: bill["total"] for bill in check.inq_snapshot["bills"]}
    unknown = [p for p in req["per"] if p not in shown]
    if unknown:
        raise errors.Gone(f"periods not in the inquiry: {', '.join(unknown)}")
    expected = sum(shown[p] for p in req["per"])
    if req["amo"] != expected:
        raise errors.Gone(f"amo does not match the bills of the inquiry (expected {expected})")

    # 4. Other duplicates: the inquiry already paid, or a period already being paid.
    if check.inq_nob:
        raise errors.Conflict("this inquiry already has a payment")
    if check.taken:
        raise errors.Conflict(f"periods already paid or being paid: {', '.join(check.taken)}")

    # 5. Record with its receipt number and periods, and enqueue: one transaction.
    day = _wib_day(now)
    payment = conn.execute(
        RECORD,
        {
            "partner": partner_code,
            "day": day,
            "pid": req["pid"],
            "cid": cid,
            "inq": req["inq"],
            "amo": req["amo"],
            "periods": periods,
            "mer": req["mer"],
            "pat": new_pat(),
            "now": now,
            "callback_url": callback.url,
            "callback_token": callback.token,
            "auth": callback.authorization if callback.url else None,
        },
    ).one_or_none()
    if payment is None:
        raise _numbers_used_up(partner_code, day)
    queue.defer(conn, POST_TASK, queue=queue.POSTING_QUEUE, payment_id=payment.id)
    if callback.url:
        from . import webhooks  # the `created` callback, in this same transaction

        webhooks.enqueue(conn, payment.id, "created", now)
    return Accepted(payment._asdict(), replayed=False)


def find(
    conn: sa.Connection,
    partner_code: str,
    cid: str,
    *,
    nob: str | None = None,
    pid: str | None = None,
    pat: str | None = None,
    inq: str | None = None,
) -> dict:
    """One payment of this partner and customer, by nob or pid (+pat or +inq); else 404.

    Another partner's payment is indistinguishable from one that does not exist.
    """
    row = conn.execute(
        sa.text(
            f"select {PAYMENT_COLUMNS} from payment"
            " where partner_code = :partner and customer_id = :cid"
            " and (cast(:nob as text) is null or nob = :nob)"
            " and (cast(:pid as text) is null or pid = :pid)"
            " and (cast(:pat as text) is null or pat = :pat)"
            " and (cast(:inq as text) is null or inquiry_token = :inq)"
        ),
        {"partner": partner_code, "cid": cid, "nob": nob, "pid": pid, "pat": pat, "inq": inq},
    ).one_or_none()
    if row is None:
        raise errors.NotFound("payment not found")
    return row._asdict()
