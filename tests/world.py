"""A populated service for the fuzz and security-drill suites.

Two partners (``00`` BANK1 and ``96`` BANK2) with tokens, customers with
unpaid bills, a pool of fresh customers for new inquiries, and payments of
both partners in every state (created, accepted, changed, rejected, reversed,
and accepted too long ago to reverse), all made through the domain code.

Building one takes a few dozen transactions: tests that only read it share one per
module (on ``module_app``); a test that writes builds its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from pdam.core import inquiry, partners, reversal
from pdam.web import runtime
from tests.factories import SEALER, bill_line, import_bills, issue, make_payment, sql_runner

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
    app: Any  # the Flask app on the world's database
    run_sql: Callable  # SQL on that database (tests/factories.py sql_runner)
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

    def client(self):
        return self.app.test_client()


def _bills(cid: str, periods=PERIODS) -> str:
    return "".join(bill_line(cid, p, bill_no=f"b{cid}{p}", address=f"Jl. Uji {cid[-3:]}") for p in periods)


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
            partners.add(conn, A, "BANK1", SEALER)
            partners.add(conn, B, "BANK2", SEALER)
        issued = {code: issue(app, private_key, code, now, days=2) for code in (A, B)}
        with runtime.transaction() as conn:
            import_bills(conn, "".join(_bills(c) for c in [*customers, *fixed.values(), paid_up, *fresh]))
            conn.execute(
                sa.text("update bill set paid_by = '991111110001', paid_at = now() where customer_id = :cid"),
                {"cid": paid_up},
            )

        def make(key: str, partner: str, state: str, when=now, post=True, **kwargs):
            cid = fixed[key]
            with runtime.transaction() as conn:
                row = make_payment(conn, partner, cid, f"pid-{key}", when, post=post, **kwargs)
                out[(partner, state)] = Paid(
                    partner, state, cid, row.pid, row.pat, row.nob, row.inquiry_token
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
            reversal.reverse(conn, conn, A, row.customer_id, row.pid, row.pat, now)
        make("A-old", A, "old", when=long_ago)
        make("B-created", B, "created", post=False)
        make("B-accepted", B, "accepted")
        with runtime.transaction() as conn:
            inq_b = inquiry.inquire(conn, conn, B, fixed["B-inquiry"], now, 3600)
    return World(
        app=app,
        run_sql=sql_runner(app.config["DATABASE_URL"]),
        headers={code: {"Authorization": f"Bearer {tok}"} for code, tok in issued.items()},
        tokens=issued,
        customers=customers,
        paid_up=paid_up,
        payments=out,
        inquiries={B: (fixed["B-inquiry"], inq_b.token)},
        pool=fresh,
    )
