"""A populated service for the fuzz and security-drill suites.

Two partners (``00`` BANK1 and ``96`` BANK2) with tokens, customers with
unpaid bills, a pool of fresh customers for new inquiries, and payments of
both partners in every state (created, accepted, changed, rejected, reversed,
and accepted too long ago to reverse), all made through the domain code.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from pdam.core import billing, inquiry, partners, payments, posting, reversal, tokens
from pdam.web import runtime
from tests.conftest import CSV_HEADER, ISSUER

PERIODS = ("202001", "202002", "202003")
A, B = "00", "96"


@dataclass(frozen=True)
class Paid:
    """A payment as a partner knows it."""

    partner: str
    state: str
    cid: str
    pid: str
    pat: str
    nob: str
    inq: str


@dataclass
class World:
    headers: dict[str, dict]  # partner code -> Authorization headers
    tokens: dict[str, str]
    customers: list[str]  # customers with unpaid bills (read-only use)
    paid_up: str  # a customer whose bills are all paid
    payments: dict[tuple[str, str], Paid]  # (partner, state) -> payment
    inquiries: dict[str, tuple[str, str]]  # partner -> (cid, inq token) of an open inquiry
    pool: list[str] = field(default_factory=list)  # fresh customers, each with PERIODS unpaid

    def fresh_customer(self) -> str:
        return self.pool.pop()

    def own(self, partner: str) -> list[Paid]:
        return [p for (code, _), p in self.payments.items() if code == partner]


def _bills(cid: str, periods=PERIODS, water: int = 40000) -> str:
    return "".join(
        f"{cid},Pelanggan {cid},Jl. Uji {cid[-3:]},10R - Rumah Tangga,"
        f"b{cid}{p},{p},10,20,10,{water},8000,800,0,0\n"
        for p in periods
    )


def _pay(conn, partner: str, cid: str, pid: str, now: dt.datetime, before_posting=None, post=True) -> dict:
    inq = inquiry.inquire(conn, conn, partner, cid, now, 900)
    req = payments.PaymentRequest(
        customer_id=cid,
        inquiry_token=inq.token,
        reference=pid,
        merchant="1",
        periods=tuple(b["period"] for b in inq.bills),
        amount=sum(b["total"] for b in inq.bills),
    )
    row = payments.accept(conn, partner, req, now).payment
    if before_posting:
        before_posting(conn)
    if post:
        posting.post(conn, conn, row["id"], now)
    return row


def build(app, private_key: str, pool: int = 0) -> World:
    """Populate the app's (empty, migrated) database; ``pool`` fresh customers for new payments."""
    with app.app_context():
        now = runtime.now()
    long_ago = now - dt.timedelta(days=3)
    customers = [f"01010101{i:04d}" for i in range(1, 4)]
    fixed = {
        name: f"02020202{i:04d}"
        for i, name in enumerate(
            [
                "A-created",
                "A-accepted",
                "A-changed",
                "A-rejected",
                "A-reversed",
                "A-old",
                "B-created",
                "B-accepted",
                "B-inquiry",
            ],
            start=1,
        )
    }
    paid_up = "030303030303"
    fresh = [f"9{i:011d}" for i in range(pool)]
    out: dict[tuple[str, str], Paid] = {}
    with app.app_context():
        with runtime.transaction() as conn:
            partners.add(conn, A, "BANK1")
            partners.add(conn, B, "BANK2")
            issued = {
                code: tokens.issue(
                    conn,
                    code=code,
                    private_key=private_key,
                    algorithm="ES256",
                    issuer=ISSUER,
                    now=now.replace(microsecond=0),
                    expires=now.replace(microsecond=0) + dt.timedelta(days=2),
                )
                for code in (A, B)
            }
            lines = "".join(_bills(c) for c in [*customers, *fixed.values(), paid_up, *fresh])
            billing.import_rows(conn, list(billing.parse_csv(io.StringIO(CSV_HEADER + lines))))
            conn.execute(
                sa.text("update bill set paid_by = '991111110001', paid_at = now() where customer_id = :cid"),
                {"cid": paid_up},
            )

        def make(key: str, partner: str, state: str, when=now, **kwargs):
            cid = fixed[key]
            with runtime.transaction() as conn:
                row = _pay(conn, partner, cid, f"pid-{key}", when, **kwargs)
                out[(partner, state)] = Paid(
                    partner, state, cid, row["pid"], row["pat"], row["nob"], row["inquiry_token"]
                )
                return row

        make("A-created", A, "created", post=False)
        make("A-accepted", A, "accepted")
        make(
            "A-changed",
            A,
            "changed",
            before_posting=lambda c: c.execute(
                sa.text("update bill set late_fee = 5000 where customer_id = :cid and period = :p"),
                {"cid": fixed["A-changed"], "p": PERIODS[0]},
            ),
        )
        make(
            "A-rejected",
            A,
            "rejected",
            before_posting=lambda c: c.execute(
                sa.text("update bill set paid_by = '991111110002', paid_at = now() where customer_id = :cid"),
                {"cid": fixed["A-rejected"]},
            ),
        )
        row = make("A-reversed", A, "reversed")
        with runtime.transaction() as conn:
            reversal.reverse(conn, conn, A, row["customer_id"], row["pid"], row["pat"], now)
        make("A-old", A, "old", when=long_ago)
        make("B-created", B, "created", post=False)
        make("B-accepted", B, "accepted")
        with runtime.transaction() as conn:
            inq_b = inquiry.inquire(conn, conn, B, fixed["B-inquiry"], now, 3600)
    return World(
        headers={code: {"Authorization": f"Bearer {tok}"} for code, tok in issued.items()},
        tokens=issued,
        customers=customers,
        paid_up=paid_up,
        payments=out,
        inquiries={B: (fixed["B-inquiry"], inq_b.token)},
        pool=fresh,
    )


def private_key_of(app) -> str:
    return Path(app.config["JWT_PRIVATE_KEY_FILE"]).read_text()
